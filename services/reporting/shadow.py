"""The shadow slot of a projection: emptied, filled, compared with the live slot, swapped.

Only DML and ``TRUNCATE``/``ANALYZE`` of partitions, which the runtime role is granted
(``migrations/0001_reporting.sql``): a rebuild needs no owner and no DDL, and swapping is
one ``UPDATE`` of the ``projections`` row, under the lock the consumer shares.

A rebuild is about every district: what it reads and writes runs in transactions scoped
to all of them (:func:`every_district`), and the slots keep their row-level security
(``migrations/0003_district_rls.sql``). The DDL a bulk load needs of a shadow slot
(row-level security off and on, its secondary indexes dropped and built) is done by the
tables' owner, in ``reporting.shadow_load`` and ``reporting.shadow_index``
(``migrations/0005_shadow_load.sql``, ``0006_slot_indexes.sql``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventkit.db import ALL_DISTRICTS, Conn, scoped
from services.reporting.projection import upsert_sql
from services.reporting.tables import Table

MAX_LISTED = 20
"""Differences listed per table (the counts say how many there are in all)."""


@dataclass(frozen=True)
class TableComparison:
    """A table's live slot against its rebuilt shadow."""

    table: str
    live_rows: int
    shadow_rows: int
    live_checksum: str
    shadow_checksum: str
    differences: list[str] = field(default_factory=list)
    """Up to :data:`MAX_LISTED` keys that differ, each saying how."""

    @property
    def equal(self) -> bool:
        """Same rows, same contents."""
        return self.live_rows == self.shadow_rows and self.live_checksum == self.shadow_checksum


def every_district(conn: Conn) -> AbstractAsyncContextManager[Conn]:
    """The block in a transaction (or a savepoint of the caller's) scoped to every
    district: a rebuild reads every district's events and writes, compares and swaps
    every district's rows, by nature."""
    return scoped(conn, ALL_DISTRICTS)


async def truncate(conn: Conn, schema: str, slots: Sequence[tuple[Table, int]]) -> None:
    """Empty slots of tables (one statement)."""
    if slots:
        await conn.execute(
            "TRUNCATE " + ", ".join(f"{schema}.{table.partition(slot)}" for table, slot in slots)
        )


async def analyze(conn: Conn, schema: str, table: Table, slot: int) -> None:
    """Refresh the planner's statistics of one slot after a bulk load."""
    await conn.execute(f"ANALYZE {schema}.{table.partition(slot)}")


async def set_loading(
    conn: Conn, schema: str, slots: Sequence[tuple[Table, int]], loading: bool
) -> None:
    """Open slots for a bulk load by COPY (``loading``), or close them again.

    Open: the slot's row-level security is off and the services' roles may no longer
    read, change or delete its rows by naming the partition (they reach them only
    through the partitioned table, whose policy holds), and its indexes other than the
    primary key are dropped (:func:`build_index` builds them once it is loaded); closed:
    as every other table, with any index still missing built.
    ``reporting.shadow_load`` (``migrations/0005_shadow_load.sql``) does it as the
    tables' owner, one slot at a time, each in its own short transaction.
    """
    for table, slot in slots:
        await conn.execute(
            "SELECT reporting.shadow_load($1, $2, $3)", schema, table.partition(slot), loading
        )


async def listed_indexes(conn: Conn) -> dict[str, list[str]]:
    """Per projection table, the indexes each slot has besides its primary key, which a
    rebuild builds after loading the slot (``migrations/0006_slot_indexes.sql``)."""
    rows = await conn.fetch(
        "SELECT table_name, suffix FROM reporting.slot_indexes ORDER BY table_name, suffix"
    )
    listed: dict[str, list[str]] = {}
    for r in rows:
        listed.setdefault(r["table_name"], []).append(r["suffix"])
    return listed


async def build_index(conn: Conn, schema: str, table: Table, slot: int, suffix: str) -> None:
    """Build one listed index of a slot opened for loading (unless it is there)."""
    await conn.execute(
        "SELECT reporting.shadow_index($1, $2, $3)", schema, table.partition(slot), suffix
    )


async def copy_rows(
    conn: Conn,
    schema: str,
    table: Table,
    slot: int,
    rows: Sequence[tuple[Any, ...]],
    *,
    loading: bool = False,
) -> None:
    """Bulk-load new rows into one slot (COPY, binary), in the caller's transaction.

    Into a slot open for loading (:func:`set_loading`), straight. PostgreSQL refuses
    COPY into a table with row-level security (it does not check policies row by row
    there): into a closed slot, the rows are copied into a temporary table and moved
    into the slot with one ``INSERT … SELECT``, which the slot's policy checks.
    """
    if not rows:
        return
    columns = ["slot", *table.columns]
    if loading:
        await conn.copy_records_to_table(
            table.partition(slot),
            schema_name=schema,
            columns=columns,
            records=[(slot, *row) for row in rows],
        )
        return
    names = ", ".join(columns)
    staging = f"load_{table.partition(slot)}"
    target = f"{schema}.{table.partition(slot)}"
    async with conn.transaction():  # a savepoint: the temporary table lives within it
        await conn.execute(f"CREATE TEMPORARY TABLE {staging} (LIKE {target}) ON COMMIT DROP")
        await conn.copy_records_to_table(
            staging,
            schema_name="pg_temp",
            columns=columns,
            records=[(slot, *row) for row in rows],
        )
        await conn.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging}")
        await conn.execute(f"DROP TABLE pg_temp.{staging}")


async def upsert_rows(
    conn: Conn, schema: str, table: Table, slot: int, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert or replace rows of one slot (for the few that changed while catching up)."""
    if rows:
        await conn.executemany(upsert_sql(schema, table), [(slot, *row) for row in rows])


def _row_hash(table: Table) -> str:
    """A row's hash from its columns' own hash functions: not from its text, which would
    print every timestamp (a third of the time, measured on a year of a large district)."""
    return f"hash_record_extended(ROW({', '.join(table.columns)}), 0)"


@dataclass(frozen=True)
class Checksum:
    """A slot's row count and the sum of its rows' hashes (exact: a numeric sum)."""

    rows: int
    checksum: str


async def checksum(conn: Conn, schema: str, table: Table, slot: int) -> Checksum:
    """Row count and checksum of one slot, as ``conn``'s transaction sees it."""
    row = await conn.fetchrow(
        f"SELECT count(*) AS n, coalesce(sum({_row_hash(table)}), 0)::text AS checksum "
        f"FROM {schema}.{table.partition(slot)}"
    )
    assert row is not None
    return Checksum(row["n"], row["checksum"])


async def compare(
    conn: Conn,
    schema: str,
    table: Table,
    live: int,
    shadow: int,
    *,
    live_sum: Checksum | None = None,
    shadow_sum: Checksum | None = None,
) -> TableComparison:
    """Row counts and checksums of both slots, and the first differences if any. A slot's
    checksum already taken (``live_sum``, ``shadow_sum``: by other connections, or before
    the last rows were written) is taken as given; the rest are computed in ``conn``.
    Checksums taken elsewhere that differ while the row counts agree are taken again,
    both, in ``conn``: only what one snapshot sees of both slots may be called a
    difference (an erasure of notes between two checksums changes a checksum, never a
    count)."""
    given = live_sum is not None or shadow_sum is not None
    if live_sum is None:
        live_sum = await checksum(conn, schema, table, live)
    if shadow_sum is None:
        shadow_sum = await checksum(conn, schema, table, shadow)
    comparison = TableComparison(
        table.name, live_sum.rows, shadow_sum.rows, live_sum.checksum, shadow_sum.checksum
    )
    if comparison.equal:
        return comparison
    if given and live_sum.rows == shadow_sum.rows:
        return await compare(conn, schema, table, live, shadow)
    return TableComparison(
        table.name,
        live_sum.rows,
        shadow_sum.rows,
        live_sum.checksum,
        shadow_sum.checksum,
        await _differences(conn, schema, table, live, shadow),
    )


async def _differences(conn: Conn, schema: str, table: Table, live: int, shadow: int) -> list[str]:
    columns = ", ".join(table.columns)
    key = ", ".join(table.key)
    rows = await conn.fetch(
        f"""
        SELECT to_jsonb(l) AS live, to_jsonb(s) AS shadow
          FROM (SELECT {columns} FROM {schema}.{table.name} WHERE slot = $1) l
          FULL JOIN (SELECT {columns} FROM {schema}.{table.name} WHERE slot = $2) s
         USING ({key})
         WHERE l IS DISTINCT FROM s
         LIMIT {MAX_LISTED}
        """,
        live,
        shadow,
    )
    return [_describe(table, r["live"], r["shadow"]) for r in rows]


def _describe(table: Table, live: dict[str, Any] | None, shadow: dict[str, Any] | None) -> str:
    either = live or shadow or {}
    key = "/".join(str(either.get(c)) for c in table.key)
    if live is None:
        return f"{table.name} {key}: only in the rebuild"
    if shadow is None:
        return f"{table.name} {key}: only in the live projection"
    changed = [
        f"{c}: {json.dumps(live.get(c), ensure_ascii=False)} → "
        f"{json.dumps(shadow.get(c), ensure_ascii=False)}"
        for c in table.columns
        if live.get(c) != shadow.get(c)
    ]
    return f"{table.name} {key}: " + "; ".join(changed)


async def lock_projections(conn: Conn, schema: str, names: Sequence[str]) -> dict[str, int]:
    """Take the projections' rows exclusively (the consumer waits, then sees the swap);
    their live slots."""
    rows = await conn.fetch(
        f"SELECT name, slot FROM {schema}.projections WHERE name = ANY($1::text[]) FOR UPDATE",
        list(names),
    )
    return {r["name"]: r["slot"] for r in rows}


async def swap(
    conn: Conn,
    schema: str,
    name: str,
    slot: int,
    *,
    at: datetime,
    events: int,
    as_of: datetime | None = None,
) -> None:
    """Make ``slot`` the live slot of projection ``name`` (in the caller's transaction)."""
    await conn.execute(
        f"UPDATE {schema}.projections SET slot = $2, swapped_at = $3, events = $4, as_of = $5 "
        "WHERE name = $1",
        name,
        slot,
        at,
        events,
        as_of,
    )
