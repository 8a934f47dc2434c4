"""What a test reads to check the services' work, read as an operator would: across
districts, declared.

The tables holding a district's data have row-level security (issue 14): a query on the
runtime role's pool that declares no district sees no row. The services declare theirs;
a test looking at what they wrote, whatever the district, declares every district
(``eventkit.db.ALL_DISTRICTS``) through :func:`every_district`, one transaction per
query, so that the services under test never inherit a scope from the test.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from eventkit.db import ALL_DISTRICTS, Conn, district_transaction


class EveryDistrict:
    """A pool's ``fetch``, ``fetchval``, ``fetchrow``, ``execute`` and ``acquire``, each in
    a transaction of its own scoped to every district."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def acquire(self) -> AbstractAsyncContextManager[Conn]:
        """A connection in a transaction scoped to every district."""
        return district_transaction(self._pool, ALL_DISTRICTS)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return list(await conn.fetch(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.acquire() as conn:
            return str(await conn.execute(query, *args))


def every_district(pool: asyncpg.Pool) -> EveryDistrict:
    """``pool``'s queries in transactions scoped to every district (see the module)."""
    return EveryDistrict(pool)
