"""What every service runs on: its pool, store and clock, its consumers and background
tasks, opened and closed together; and the HTTP server around it.

A service's composition root (``services/<name>/bootstrap.py``) opens a :class:`Runtime`
with :func:`open_runtime`, builds its parts on it, and starts what runs in the
background; leaving the ``async with`` stops all of it in the reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import uvicorn
from fastapi import FastAPI

from eventkit.clock import Clock, utc_now
from eventkit.consumer import Consumer, run_consumers
from eventkit.db import create_pool
from eventkit.http.app import ReadyCheck
from eventkit.keys import DevelopmentSecretsRefused, refuse_development_secrets
from eventkit.local import database_url
from eventkit.logging import configure_logging, get_logger
from eventkit.settings import Settings
from eventkit.store import EventStore

log = get_logger(__name__)

STOP_TIMEOUT = 20.0
"""Seconds a background task gets to finish once asked to stop."""

Task = Callable[[asyncio.Event], Awaitable[None]]
"""Background work: runs until the event is set, then returns."""


@dataclass(repr=False)
class Runtime:
    """What a running service holds; opened by :func:`open_runtime`, never at import."""

    settings: Settings
    pool: asyncpg.Pool
    store: EventStore
    clock: Clock = utc_now
    consumers: list[Consumer] = field(default_factory=list)
    consumers_ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start_consumers(self, consumers: list[Consumer]) -> None:
        """Consume with ``consumers`` on one broker until the runtime closes."""
        self.consumers = consumers
        self.start(
            "consumers",
            lambda stop: run_consumers(
                self.settings, consumers, stop, started=self.consumers_ready
            ),
        )

    def start(self, name: str, work: Task) -> None:
        """Run ``work(stop)`` in the background until the runtime closes."""

        async def supervised() -> None:
            try:
                await work(self.stop)
            except Exception:
                log.exception("background task failed", task=name)
                raise

        self._tasks.append(asyncio.create_task(supervised(), name=name))

    async def database_ready(self) -> bool:
        """Whether the database answers."""
        return bool(await self.pool.fetchval("SELECT true"))

    async def consumers_joined(self) -> bool:
        """Whether the consumers run (true for a service that consumes nothing)."""
        return not self.consumers or self.consumers_ready.is_set()

    def ready_checks(self) -> dict[str, ReadyCheck]:
        """The checks every service's ``/readyz`` runs."""
        return {"database": self.database_ready, "consumers": self.consumers_joined}

    async def close(self) -> None:
        """Stop the background tasks (consumers last commit what they applied)."""
        self.stop.set()
        for task in reversed(self._tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, STOP_TIMEOUT)
        self._tasks.clear()


@dataclass(repr=False)
class RunningService:
    """The base of a service's running parts (``Routing``, ``Intake``): its runtime, and
    what every part reaches through it."""

    runtime: Runtime

    @property
    def pool(self) -> asyncpg.Pool:
        """The database pool."""
        return self.runtime.pool

    @property
    def store(self) -> EventStore:
        """The event store."""
        return self.runtime.store

    @property
    def clock(self) -> Clock:
        """The clock every decision is given the time by."""
        return self.runtime.clock

    def ready_checks(self) -> dict[str, ReadyCheck]:
        """What ``/readyz`` checks (a service adds its own)."""
        return self.runtime.ready_checks()


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    pool_size: int | None = None,
) -> AsyncIterator[Runtime]:
    """A :class:`Runtime` on ``pool`` (or on a pool of its own, closed on exit).

    The database is ``MINQING_DATABASE_URL`` or the running local stack's.
    """
    owned = pool is None
    if pool is None:
        pool = await create_pool(
            database_url(settings),
            role=settings.database_role,
            max_size=pool_size or settings.database_pool_max,
        )
    runtime = Runtime(settings=settings, pool=pool, store=EventStore(pool), clock=clock)
    try:
        yield runtime
    finally:
        await runtime.close()
        if owned:
            await pool.close()


def check_development_secrets(settings: Settings, host: str) -> None:
    """Refuse (:class:`DevelopmentSecretsRefused`) a development secret in a process that
    looks deployed: listening beyond loopback, given a database of its own outside the
    local stack, or reached by residents at an address that is not this machine's."""
    refuse_development_secrets(
        host,
        settings.development_secrets(),
        database_url=settings.database_url,
        public_base_url=settings.public_base_url,
        local_stack=settings.local_stack,
    )


def serve(app: FastAPI, settings: Settings, *, port: int, host: str | None = None) -> None:
    """Run ``app`` with uvicorn until SIGINT or SIGTERM, on ``settings.http_host``."""
    host = host or settings.http_host
    configure_logging(settings.log_level, settings.log_format)
    try:
        check_development_secrets(settings, host)
    except DevelopmentSecretsRefused as refused:
        log.error("refusing to start", reason=str(refused), settings=refused.settings_names)
        raise SystemExit(str(refused)) from None
    # httptools' parser (C) rather than h11's (pure Python): the HTTP parsing is a large
    # share of a small request's CPU (residents' submissions, staff pages); uvloop's
    # event loop, as every Minqing process (eventkit.loop).
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="uvloop",
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    for name in settings.development_secrets():
        log.warning(
            "development secret in use: set it before going live",
            setting=f"MINQING_{name.upper()}",
        )
    log.info("listening", url=f"http://{host}:{port}/")
    uvicorn.Server(config).run()
