"""Fixtures of the audit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from eventkit.audit.sealing import Sealer
from eventkit.db import Conn
from eventkit.store import EventStore


@pytest.fixture
def sealer(store: EventStore) -> Sealer:
    return Sealer(store)


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection of the test's pool (the runtime role: it reads everything)."""
    async with pool.acquire() as connection:
        yield connection
