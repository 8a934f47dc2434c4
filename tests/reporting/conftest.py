"""Fixtures of the reporting tests: the service from its composition root, and the March
history (tests/reporting/march.py) stored and projected once per module where the tests
only read it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pytest
import pytest_asyncio

from eventkit.db import create_pool
from eventkit.identity import Role
from eventkit.settings import Settings
from eventkit.store import EventStore, RecordedEvent
from services.reporting.bootstrap import Reporting, bootstrap
from services.reporting.rebuild_result import RebuildResult
from services.reporting.settings import ReportingSettings
from tests.conftest import TEMPLATE
from tests.intake.intake_support import publish
from tests.reporting.history import interleaved, local, store_history
from tests.reporting.march import march_history
from tests.staff_support import staff_events

STAFF = [
    ("admin_demo", Role.DISTRICT_ADMIN),
    ("au", Role.AUDITOR),
    ("hl", Role.HOTLINE),
    ("sp", Role.SPOKESPERSON),
]
"""The March district's people its history does not list: accounts, a spokesperson."""
OTHERS = [("admin_other", Role.DISTRICT_ADMIN), ("au", Role.AUDITOR)]

NOW = local(4, 20, 10)
"""When the March tests look at their district: every event of the history is past."""


def fixed_clock(moment: datetime = NOW) -> Callable[[], datetime]:
    return lambda: moment


@pytest.fixture
def reporting_settings(settings: Settings) -> ReportingSettings:
    return ReportingSettings(**settings.model_dump(), reporting_consume=False)


@pytest.fixture
async def service(
    reporting_settings: ReportingSettings, pool: asyncpg.Pool
) -> AsyncIterator[Reporting]:
    """Reporting with nothing in the background: the tests hand it the events."""
    async with bootstrap(
        reporting_settings, pool=pool, clock=fixed_clock(), background=False
    ) as reporting:
        yield reporting


async def project(service: Reporting, events: list[RecordedEvent]) -> None:
    """Hand ``events`` to the consumer, as Kafka would deliver them."""
    for event in events:
        await service.consumer.apply(event.envelope())


async def rebuild_while_consuming(
    service: Reporting, events: list[RecordedEvent], *, seed: int
) -> RebuildResult:
    """Project the first half of ``events`` (interleaved), then rebuild while the
    consumer goes on with the second half; the rebuild's result."""
    mixed = interleaved(events, seed=seed)
    half = len(mixed) // 2
    await project(service, mixed[:half])

    async def consume_the_rest() -> None:
        for n, event in enumerate(mixed[half:]):
            await service.consumer.apply(event.envelope())
            if n % 25 == 0:
                await asyncio.sleep(0)

    consuming = asyncio.create_task(consume_the_rest())
    result = await service.rebuild.run()
    await consuming
    return result


@dataclass
class Loaded:
    """A database of its own with the March history stored and projected."""

    url: str
    settings: ReportingSettings
    pool: asyncpg.Pool
    store: EventStore
    service: Reporting
    events: list[RecordedEvent]


def _with_db(url: str, database: str) -> str:
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def loaded_march(pg_admin_url: str) -> AsyncIterator[Loaded]:
    """The March history in a database of its own, projected by the live consumer in an
    order a consumer of several topics may meet (directory, cases and opinions mixed)."""
    name = "r_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    url = _with_db(pg_admin_url, name)
    settings = ReportingSettings(
        database_url=url,
        kafka_bootstrap="127.0.0.1:9",
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        reporting_consume=False,
    )
    # Reporting runs as its own role (it may read the store, never append); the history
    # is written as the services that own its streams would, through the runtime role.
    pool = await create_pool(url, role=settings.database_role, max_size=8)
    writer = await create_pool(url, role=Settings().database_role, max_size=4)
    try:
        store = EventStore(writer)
        async with bootstrap(settings, pool=pool, clock=fixed_clock(), background=False) as svc:
            events = await store_history(store, url, march_history().ordered())
            await project(svc, interleaved(events, seed=7))
            # The people the tests' tokens name are staff the directory lists (liaison
            # officers, supervisors, representatives) or hold accounts (invited in
            # routing, published on the directory topic like the directory).
            await publish(store, svc.consumer, staff_events("demo", STAFF, station="dh_home"))
            await publish(store, svc.consumer, staff_events("other", OTHERS, station="ot_home"))
            yield Loaded(url, settings, pool, store, svc, events)
    finally:
        await writer.close()
        await pool.close()
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def march(pg_admin_url: str) -> AsyncIterator[Loaded]:
    """The March history, loaded once for the module (its tests only read it)."""
    async with loaded_march(pg_admin_url) as loaded:
        yield loaded
