"""Running a service: its pool, its store, its consumers and its HTTP server in one process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg
import uvicorn
from fastapi import FastAPI

from eventkit.consumer import Consumer, run_consumers
from eventkit.db import create_pool
from eventkit.logging import configure_logging, get_logger
from eventkit.settings import Settings
from eventkit.store import EventStore

log = get_logger(__name__)


@dataclass
class Runtime:
    """What a running service holds; built in the app's lifespan, never at import."""

    settings: Settings
    pool: asyncpg.Pool
    store: EventStore
    consumers: list[Consumer] = field(default_factory=list)
    consumers_ready: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def service_runtime(
    settings: Settings,
    consumers: Callable[[Runtime], list[Consumer]] | None = None,
) -> AsyncIterator[Runtime]:
    """Open the pool, start the consumers in the background; close all on exit."""
    if not settings.database_url:
        raise RuntimeError("MINQING_DATABASE_URL is not set")
    pool = await create_pool(
        settings.database_url, role=settings.database_role, max_size=settings.database_pool_max
    )
    runtime = Runtime(settings=settings, pool=pool, store=EventStore(pool))
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        if consumers is not None:
            runtime.consumers = consumers(runtime)
            task = asyncio.create_task(
                run_consumers(settings, runtime.consumers, stop, started=runtime.consumers_ready)
            )
        else:
            runtime.consumers_ready.set()
        yield runtime
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
        await pool.close()


def serve(app: FastAPI, settings: Settings, *, port: int, host: str | None = None) -> None:
    """Run ``app`` with uvicorn until SIGINT or SIGTERM, on ``settings.http_host``."""
    host = host or settings.http_host
    configure_logging(settings.log_level, settings.log_format)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    for name in settings.development_secrets():
        log.warning(
            "development secret in use: set it before going live",
            setting=f"MINQING_{name.upper()}",
        )
    log.info("listening", url=f"http://{host}:{port}/")
    uvicorn.Server(config).run()
