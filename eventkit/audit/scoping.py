"""The row-level security scope of the audit's reads.

An audit is about the record as a whole: a district's chains and seals, or every
district's, a case's matter wherever it was transferred. The audit functions take a
connection from their caller (the ``minqing audit`` commands, the relay's sealer, tests)
and declare the scope they read in themselves, so that no caller can forget it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventkit.db import ALL_DISTRICTS, Conn, scope


@asynccontextmanager
async def audit_scope(conn: Conn, district_id: str | None) -> AsyncIterator[Conn]:
    """``conn`` in a transaction scoped to ``district_id``, or to every district when
    None (``ALL_DISTRICTS``: an audit of the whole store, or of a matter that went from
    one district to another).

    Inside a transaction of the caller's this is a savepoint, and the scope it declares
    stays with the caller's transaction after it (a scope is transaction-local).
    """
    async with conn.transaction():
        await scope(conn, district_id or ALL_DISTRICTS)
        yield conn
