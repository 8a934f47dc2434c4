"""The live projections: the events the consumer hands over (a run of one district's
events of a batch at a time), written to the live slots of their projections in the
consumer's transaction (behind the runtime's version gates, so once per event).

The transaction first takes a share lock on the schema's ``projections`` rows: a rebuild
swaps a slot under the exclusive lock of those rows, so no event is ever written to a
slot that stopped being live while it was being handled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from contracts.base import Event
from contracts.cases import CaseEvent
from contracts.envelope import Envelope
from contracts.intake import FeedbackSubmitted, QrScansRecorded
from eventkit.db import ALL_DISTRICTS, Conn, scope
from eventkit.store import EventStore
from services.reporting.case_facts import CaseFacts, fold_case
from services.reporting.changes import (
    Change,
    Put,
    directory_changes,
    rating_changes,
    scan_changes,
)
from services.reporting.metrics import EVENTS_PROJECTED, LAST_RECORDED
from services.reporting.tables import CASE_STEPS, CASES, PROJECTION_OF, SCHEMA, Table

CONSUMER_NAME = "reporting"
"""The consumer (and its version gate) that writes the live projections."""

Slots = dict[str, int]
"""The live slot of each projection, by name."""


async def live_slots(conn: Conn, schema: str = SCHEMA, *, lock: bool = False) -> Slots:
    """The live slot of each projection; with ``lock``, held (shared) until the
    transaction ends, so a swap waits for it."""
    suffix = " FOR SHARE" if lock else ""
    rows = await conn.fetch(f"SELECT name, slot FROM {schema}.projections{suffix}")
    return {r["name"]: r["slot"] for r in rows}


def slot_of(slots: Slots, table: Table) -> int:
    """The live slot of ``table``'s projection."""
    return slots[PROJECTION_OF[table.name]]


@cache
def upsert_sql(schema: str, table: Table) -> str:
    """``INSERT … ON CONFLICT DO UPDATE`` of one row of ``table`` (slot first)."""
    names = ("slot", *table.columns)
    values = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    key = ", ".join(("slot", *table.key))
    others = [c for c in table.columns if c not in table.key]
    sets = ", ".join(f"{c} = excluded.{c}" for c in others)
    return (
        f"INSERT INTO {schema}.{table.name} ({', '.join(names)}) VALUES ({values}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {sets}"
    )


async def write_changes(conn: Conn, schema: str, slots: Slots, changes: Iterable[Change]) -> None:
    """Write ``changes`` to the live slots of their tables."""
    puts: dict[str, tuple[Table, list[Sequence[Any]]]] = {}
    for change in changes:
        slot = slot_of(slots, change.table)
        if isinstance(change, Put):
            puts.setdefault(change.table.name, (change.table, []))[1].append((slot, *change.row))
            continue
        # A patch follows the puts before it: write those first.
        await _flush(conn, schema, puts)
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(change.values, start=2))
        n = len(change.values) + 2
        where = " AND ".join(f"{c} = ${i}" for i, c in enumerate(change.table.key, start=n))
        await conn.execute(
            f"UPDATE {schema}.{change.table.name} SET {sets} WHERE slot = $1 AND {where}",
            slot,
            *change.values.values(),
            *change.key,
        )
    await _flush(conn, schema, puts)


async def _flush(
    conn: Conn, schema: str, puts: dict[str, tuple[Table, list[Sequence[Any]]]]
) -> None:
    for table, rows in puts.values():
        await conn.executemany(upsert_sql(schema, table), rows)
    puts.clear()


async def load_cases(
    conn: Conn, schema: str, slot: int, case_ids: Iterable[str]
) -> dict[str, CaseFacts]:
    """The facts of the cases among ``case_ids`` that have a live row, by case id."""
    wanted = sorted(set(case_ids))
    if not wanted:
        return {}
    rows = await conn.fetch(
        f"SELECT {', '.join(CASES.columns)} FROM {schema}.cases"
        " WHERE slot = $1 AND case_id = ANY($2::text[])",
        slot,
        wanted,
    )
    return {r["case_id"]: CaseFacts.from_row(r) for r in rows}


class Projector:
    """Applies consumed events to the live projections."""

    def __init__(self, store: EventStore, schema: str = SCHEMA) -> None:
        self._store = store
        self.schema = schema

    async def apply_many(
        self, conn: Conn, events: Sequence[tuple[Event, Envelope, str | None]]
    ) -> None:
        """Project consecutive events of one district, in their order, in the consumer's
        transaction ``conn``: the slots locked once, the cases they name read in one
        query and folded in memory from one event to the next (as a rebuild folds them),
        the rows written together at the end: each case's row once, as its last event
        leaves it, and every step. The tables end as the events projected one at a time
        would leave them."""
        slots = await live_slots(conn, self.schema, lock=True)
        case_ids = {e.case_id for e, _, _ in events if isinstance(e, CaseEvent)}
        cases = await load_cases(conn, self.schema, slot_of(slots, CASES), case_ids)
        folded: set[str] = set()
        changes: list[Change] = []
        projected: list[tuple[str, str | None, datetime]] = []

        async def write() -> None:
            rows = [Put(CASES, cases[case_id].row()) for case_id in sorted(folded)]
            await write_changes(conn, self.schema, slots, [*changes, *rows])
            folded.clear()
            changes.clear()

        for event, envelope, topic in events:
            version = envelope.stream_version
            if version is None:
                raise ValueError("only stored events are projected")
            at = envelope.recorded_at or await self._recorded_at(conn, envelope.stream_id, version)
            projected.append((event.event_type, topic, at))
            if isinstance(event, CaseEvent):
                facts, steps = fold_case(cases.get(event.case_id), event, at, version)
                cases[event.case_id] = facts
                folded.add(event.case_id)
                changes += [Put(CASE_STEPS, step.row()) for step in steps]
            elif isinstance(event, FeedbackSubmitted):
                # The rated case is looked up in the table: what came before is written
                # first (the case may be one of this batch's).
                await write()
                district = await self._rated_district(conn, slots, event)
                rated = rating_changes(event, at, district)
                if district != envelope.district_id:
                    # The rated case continues the opinion in another district: its
                    # rating is written, and counted, there; the scope comes back after.
                    await scope(conn, district)
                    try:
                        await write_changes(conn, self.schema, slots, rated)
                    finally:
                        await scope(conn, envelope.district_id)
                else:
                    changes += rated
            elif isinstance(event, QrScansRecorded):
                changes += scan_changes(event, at)
            else:
                changes += directory_changes(event, at)
        await write()
        for event_type, topic, at in projected:
            EVENTS_PROJECTED.labels(event_type).inc()
            if topic is not None:
                LAST_RECORDED.labels(topic).set(at.timestamp())

    async def _rated_district(
        self, conn: Conn, slots: dict[str, int], event: FeedbackSubmitted
    ) -> str:
        """The district of the case a rating names. A resident's tracking link follows a
        transfer, so the case may be the continuation in another district: found by its
        id across districts (a case id belongs to one district)."""
        if await load_cases(conn, self.schema, slot_of(slots, CASES), [event.case_id]):
            return event.district_id
        await scope(conn, ALL_DISTRICTS)
        try:
            found = await conn.fetchval(
                f"SELECT district_id FROM {self.schema}.cases WHERE slot = $1 AND case_id = $2",
                slot_of(slots, CASES),
                event.case_id,
            )
        finally:
            await scope(conn, event.district_id)
        return str(found) if found else event.district_id

    async def _recorded_at(self, conn: Conn, stream_id: str, version: int) -> datetime:
        """When the store recorded an event whose record did not say (an older relay)."""
        stored = await self._store.read_stream(stream_id, from_version=version, conn=conn)
        return stored[0].recorded_at
