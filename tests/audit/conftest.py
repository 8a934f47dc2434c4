"""Fixtures of the audit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from eventkit.audit.sealing import Sealer
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction
from eventkit.store import EventStore


@pytest.fixture
def sealer(store: EventStore) -> Sealer:
    return Sealer(store)


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection of the test's pool (the runtime role), reading every district as an
    audit does: in a transaction scoped to all of them (row-level security). Only for
    reading: a write through it would hold the horizon until the test ends."""
    async with district_transaction(pool, ALL_DISTRICTS) as connection:
        yield connection
