"""Session-wide real parts: one embedded PostgreSQL and one Tansu broker per test run.

Each test gets its own database (a copy of a migrated template) and its own topic
prefix, so tests never see each other's events.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import asyncpg
import pytest

from eventkit.db import create_pool, migrate
from eventkit.local import Broker, EmbeddedPostgres
from eventkit.loop import new_event_loop
from eventkit.loop import run as run_loop
from eventkit.settings import Settings
from eventkit.store import EventStore
from minqing.system import migration_packages

TEMPLATE = "minqing_template"


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test and fixture runs on the loop Minqing runs on (uvloop's)."""
    return {"uvloop": new_event_loop}


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="minqing-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url(workdir: Path) -> Iterator[str]:
    """The superuser URL of the session's embedded PostgreSQL, with a migrated template."""
    server = EmbeddedPostgres(workdir / "pg")
    url = server.start()

    async def prepare() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await conn.close()
        await migrate(_with_db(url, TEMPLATE), migration_packages())

    run_loop(prepare())
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(workdir: Path) -> Iterator[str]:
    """The bootstrap address of the session's Tansu broker."""
    broker = Broker(port=None, log_path=workdir / "tansu.log")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def _with_db(url: str, database: str) -> str:
    # The embedded server's URL is postgresql://postgres:@/postgres?host=<socket dir>
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


@pytest.fixture
async def database_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own (superuser URL)."""
    name = "t_" + uuid.uuid4().hex[:16]
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await conn.close()
    yield _with_db(pg_admin_url, name)
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own to the test's database as the superuser: the owner of the
    tables, not subject to the district policies (to set up, look or hold locks aside)."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Settings:
    """Settings pointing at this test's database and its own topic names."""
    return Settings(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        kafka_partitions=3,
        relay_poll_interval=0.2,
        consumer_backoff=0.01,
        consumer_max_attempts=3,
    )


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool running as the restricted runtime role, like the services."""
    assert settings.database_url
    pool = await create_pool(settings.database_url, role=settings.database_role, max_size=12)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool)
