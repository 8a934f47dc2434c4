"""A rebuild's work on its slots that the server does: index builds, analyses and
checksums, on several connections at once (the server's cores), the largest tables first.

The fold is done by then (or, for the steps, while the rest is copied): this is where a
two-core server has a core to spare for each connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final

import asyncpg

from services.reporting.shadow import (
    Checksum,
    analyze,
    build_index,
    checksum,
    every_district,
    listed_indexes,
)
from services.reporting.tables import CASE_STEPS, CASES, RATINGS, Table

LARGEST: Final = (CASE_STEPS, CASES, RATINGS)
"""The tables with a row per step, case or rating: worked on first (they take longest)."""

CHECKSUM_CONNECTIONS: Final = 2
"""Slots checksummed at once before a comparison, each on a connection of its own."""

INDEX_CONNECTIONS: Final = 2
"""Indexes of the loaded shadow slots built at once, each on a connection of its own."""


def size_rank(table: Table) -> int:
    """The order of work on tables, the largest first."""
    return LARGEST.index(table) if table in LARGEST else len(LARGEST)


class SlotWork:
    """The server-side work on one rebuild's slots of ``schema``; ``shadow`` names the
    slot each table is rebuilt into."""

    def __init__(self, pool: asyncpg.Pool, schema: str, shadow: Callable[[Table], int]) -> None:
        self._pool = pool
        self._schema = schema
        self._shadow = shadow
        self._listed: dict[str, list[str]] | None = None
        self._building = asyncio.Semaphore(INDEX_CONNECTIONS)
        """Index builds at once, in the whole rebuild."""

    async def index_and_analyze(self, tables: Sequence[Table]) -> None:
        """Build the loaded shadow slots' indexes of ``tables`` (all but their primary
        keys, dropped while they loaded: building one from the loaded rows costs a
        fraction of keeping it up to date row by row), a few at a time in the whole
        rebuild (:data:`INDEX_CONNECTIONS`), and analyse each table once its indexes are
        there (an analysis and an index build of one table wait for each other)."""
        if self._listed is None:
            async with self._pool.acquire() as conn:
                self._listed = await listed_indexes(conn)
        listed = self._listed

        async def build(table: Table, suffix: str) -> None:
            async with self._building, self._pool.acquire() as conn:
                await build_index(conn, self._schema, table, self._shadow(table), suffix)

        async def table_done(table: Table) -> None:
            async with asyncio.TaskGroup() as builds:  # one failing cancels the others
                for suffix in listed.get(table.name, []):
                    builds.create_task(build(table, suffix))
            async with self._pool.acquire() as conn:
                await analyze(conn, self._schema, table, self._shadow(table))

        try:
            async with asyncio.TaskGroup() as work:
                for table in sorted(tables, key=size_rank):
                    work.create_task(table_done(table))
        except ExceptionGroup as failed:
            raise _first(failed) from failed

    async def checksums(self, slots: Sequence[tuple[Table, int]]) -> dict[str, Checksum]:
        """The checksums of ``slots``, each on a connection of its own, a few at a time
        (the largest tables first), each seeing what is committed when it starts."""
        limit = asyncio.Semaphore(CHECKSUM_CONNECTIONS)

        async def one(table: Table, slot: int) -> tuple[str, Checksum]:
            async with limit, self._pool.acquire() as conn, every_district(conn):
                return table.name, await checksum(conn, self._schema, table, slot)

        try:
            async with asyncio.TaskGroup() as work:
                tasks = [
                    work.create_task(one(t, s))
                    for t, s in sorted(slots, key=lambda pair: size_rank(pair[0]))
                ]
        except ExceptionGroup as failed:
            raise _first(failed) from failed
        return dict(task.result() for task in tasks)


def _first(group: BaseExceptionGroup[Exception]) -> Exception:
    """The first failure of a group of tasks (the others were cancelled by it): what the
    rebuild reports, as it would for one task."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
