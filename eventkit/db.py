"""Connections to PostgreSQL and the numbered SQL migrations.

Migrations are plain SQL files named ``NNNN_name.sql`` in a package's ``migrations``
folder. ``migrate`` applies the ones not yet recorded in ``minqing_meta.migrations``,
each in its own transaction, under an advisory lock so that two processes starting at
once do not both apply them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from eventkit.json_bytes import dumps_text
from eventkit.logging import get_logger

log = get_logger(__name__)

Conn = asyncpg.Connection | PoolConnectionProxy
"""A connection of its own or one borrowed from a pool: both do the same."""

_MIGRATION_LOCK = 0x6D696E71  # "minq"


DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, no socket file: the server is not there
    TimeoutError,  # no connection could be had in time
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.InterfaceError,  # e.g. "connection is closed"
    asyncpg.exceptions.OperatorInterventionError,  # 57: admin shutdown, crash
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
)
"""Exception classes that may mean the database cannot be reached (see
:func:`is_database_unavailable`)."""


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database cannot be reached now, as
    opposed to a query that is wrong: the caller may answer "try again later"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.InterfaceError):
            # Most interface errors are bugs (an operation already in progress); only a
            # connection lost under us is the database's absence.
            if "closed" in str(current):
                return True
        elif isinstance(current, DATABASE_ERRORS):
            return True
        current = current.__cause__ or current.__context__
    return False


DISTRICT_SETTING: Final = "minqing.district"
"""The PostgreSQL setting that names the district a transaction works for: the tables'
row-level security policies (``minqing_meta.in_scope``) show and accept only its rows."""

ALL_DISTRICTS: Final = "*"
"""The scope of work that is about every district by nature (the relay, audits,
rebuilds, sweeps over all districts). Declared explicitly, so that it can be reviewed."""


async def scope(conn: Conn, district_id: str) -> None:
    """Declare the district the rest of the current transaction works for.

    Transaction-local: it ends with the transaction, so a pooled connection never carries
    one request's district into the next (the pools do not reset sessions). Outside a
    transaction it would end with its own statement: call it inside one.
    """
    if not district_id:
        raise ValueError("a district scope needs a district id")
    await conn.execute("SELECT set_config('minqing.district', $1, true)", district_id)


@asynccontextmanager
async def scoped(conn: Conn, district_id: str) -> AsyncIterator[Conn]:
    """``conn`` in a transaction scoped to ``district_id``: its own, or a savepoint of the
    caller's (whose transaction then keeps the scope after the block: a scope lasts as
    long as the transaction)."""
    async with conn.transaction():
        await scope(conn, district_id)
        yield conn


@asynccontextmanager
async def begun_scoped(
    conn: Conn, district_id: str, settings: Mapping[str, str] | None = None
) -> AsyncIterator[Conn]:
    """``conn`` in a transaction of its own scoped to ``district_id``, like
    :func:`scoped`, but BEGIN, the scope and any other transaction-local ``settings``
    sent in one round trip instead of two or more (a short transaction on the hot path
    pays a round trip per statement: intake's submissions).

    Started by SQL, not by ``conn.transaction()``: inside it asyncpg refuses
    ``conn.transaction()`` (savepoints), so it is for code that needs none. In a
    transaction already, it falls back to :func:`scoped` (a savepoint) and sets
    ``settings`` one by one."""
    if not district_id:
        raise ValueError("a district scope needs a district id")
    wanted = {DISTRICT_SETTING: district_id, **(settings or {})}
    if conn.is_in_transaction():
        async with scoped(conn, district_id):
            for name, value in wanted.items():
                await conn.execute("SELECT set_config($1, $2, true)", name, value)
            yield conn
        return
    # The simple query protocol takes no parameters: the values go in as literals.
    calls = ", ".join(f"set_config({_literal(k)}, {_literal(v)}, true)" for k, v in wanted.items())
    await conn.execute(f"BEGIN; SELECT {calls}")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(Exception):  # a lost connection ends its transaction too
            await conn.execute("ROLLBACK")
        raise
    # A deferred check failing at the commit raises here, the transaction rolled back.
    await conn.execute("COMMIT")


def _literal(value: str) -> str:
    """``value`` as an SQL string literal (an escape string: the same whatever
    ``standard_conforming_strings`` says)."""
    if "\x00" in value:
        raise ValueError("a setting cannot hold a NUL character")
    return "E'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@asynccontextmanager
async def district_transaction(pool: asyncpg.Pool, district_id: str) -> AsyncIterator[Conn]:
    """A pooled connection in a transaction scoped to ``district_id``."""
    async with pool.acquire() as conn, scoped(conn, district_id):
        yield conn


GENERIC_PLANS: Final = {"plan_cache_mode": "force_generic_plan"}
"""The transaction-local setting that makes prepared statements use their generic plan,
made once per connection, instead of a custom plan made at every call."""


async def use_generic_plans(conn: Conn) -> None:
    """For the rest of ``conn``'s transaction, its statements use their generic plans
    (:data:`GENERIC_PLANS`): for a query the server would otherwise plan afresh at every
    call although its plan does not depend on the values."""
    for name, value in GENERIC_PLANS.items():
        await conn.execute("SELECT set_config($1, $2, true)", name, value)


@asynccontextmanager
async def reading(pool: asyncpg.Pool, district_id: str) -> AsyncIterator[Conn]:
    """A pooled connection in a transaction scoped to ``district_id`` begun in one round
    trip (:func:`begun_scoped`): for reads that need no savepoint, such as the store's
    reads of its own (the relay reads the store's tail this way, batch after batch).

    Its statements use their generic plans (``plan_cache_mode``): the store's reads are
    index look-ups whose plan does not depend on the values, yet the server judged each
    one's custom plan cheaper and planned the relay's read of the tail afresh at every
    call (planning took three times as long as running it)."""
    async with pool.acquire() as conn, begun_scoped(conn, district_id, GENERIC_PLANS):
        yield conn


async def _init_connection(conn: asyncpg.Connection, role: str | None) -> None:
    # jsonb comes back as Python objects, and goes in from them (written by orjson).
    await conn.set_type_codec(
        "jsonb", encoder=dumps_text, decoder=json.loads, schema="pg_catalog", format="text"
    )
    if role:
        await conn.execute(f"SET ROLE {_quote_ident(role)}")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_pool(
    url: str, *, role: str | None = None, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections decode jsonb and, when ``role`` is given, run as that role."""

    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn, role)

    async def keep_session(conn: asyncpg.Connection) -> None:
        # asyncpg's default reset (UNLISTEN, RESET ALL, unlock, CLOSE ALL) costs a round
        # trip per release. Pooled connections keep no session state: no LISTEN, no
        # session-level lock, no cursor (those live on dedicated connections). asyncpg
        # still rolls back a transaction left open before calling this.
        return None

    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=init,
        reset=keep_session,
        command_timeout=60,
    )
    assert pool is not None
    return pool


async def connect(url: str, *, role: str | None = None) -> asyncpg.Connection:
    """One connection, set up like the pool's."""
    conn = await asyncpg.connect(url)
    await _init_connection(conn, role)
    return conn


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file of one package."""

    package: str
    name: str
    sql: str

    @property
    def id(self) -> str:
        return f"{self.package}/{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(packages: list[str]) -> list[Migration]:
    """Every migration of the given packages, in package order then number order."""
    found: list[Migration] = []
    for package in packages:
        folder = importlib.resources.files(package).joinpath("migrations")
        if not folder.is_dir():
            continue
        files = sorted(
            (f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
        )
        found.extend(Migration(package, f.name, f.read_text(encoding="utf-8")) for f in files)
    return found


class MigrationChanged(RuntimeError):
    """An applied migration's file was edited afterwards: migrations are immutable."""


async def migrate(url: str, packages: list[str]) -> list[str]:
    """Apply the migrations not applied yet; return the ids applied now."""
    conn = await asyncpg.connect(url)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS minqing_meta;
            CREATE TABLE IF NOT EXISTS minqing_meta.migrations (
                id text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """
        )
        rows = await conn.fetch("SELECT id, checksum FROM minqing_meta.migrations")
        done = {r["id"]: r["checksum"] for r in rows}
        for migration in discover(packages):
            if migration.id in done:
                if done[migration.id] != migration.checksum:
                    raise MigrationChanged(
                        f"migration {migration.id} was changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO minqing_meta.migrations (id, checksum) VALUES ($1, $2)",
                    migration.id,
                    migration.checksum,
                )
            log.info("migration applied", migration=migration.id)
            applied_now.append(migration.id)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
    return applied_now
