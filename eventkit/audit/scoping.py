"""The row-level security scope of the audit's reads.

An audit is about the record as a whole: a district's chains and seals, or every
district's, a case's matter wherever it was transferred. The audit functions take a
connection from their caller (the ``minqing audit`` commands, the relay's sealer, tests)
and declare the scope they read in themselves, so that no caller can forget it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from eventkit.db import ALL_DISTRICTS, Conn, scoped


def audit_scope(conn: Conn, district_id: str | None) -> AbstractAsyncContextManager[Conn]:
    """``conn`` in a transaction (or a savepoint of the caller's) scoped to
    ``district_id``, or to every district when None (``ALL_DISTRICTS``: an audit of the
    whole store, or of a matter that went from one district to another)."""
    return scoped(conn, district_id or ALL_DISTRICTS)
