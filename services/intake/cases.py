"""The cases intake follows (``intake.cases``: case id → opinion and progress) and their
steps (``intake.case_steps``: one per case event, the timeline and Open311's updates).

Written by the case handlers in the consumer's transaction (``case_handlers.py``), read
by tracking, feedback, withdrawal and Open311.

A case belongs to one district, and its rows carry it. A matter transferred to another
district goes on in a new case there, opened for the same opinion: :func:`matter_of`
follows it, reading each district's rows in that district's row-level security scope.
"""

from __future__ import annotations

import asyncpg

from contracts.envelope import Envelope
from eventkit.db import Conn, scope
from services.intake.progress import CaseProgress, Step, open311_status


async def progress_of(conn: Conn, case_id: str) -> CaseProgress | None:
    """Where a case stands, its row locked until the transaction ends (one case event at
    a time per case); None before its ``CaseOpened``."""
    row = await conn.fetchrow(
        "SELECT progress FROM intake.cases WHERE case_id = $1 FOR UPDATE", case_id
    )
    return None if row is None else CaseProgress.from_json(row["progress"])


async def save_step(conn: Conn, progress: CaseProgress, step: Step, envelope: Envelope) -> None:
    """Keep a case's progress after one of its events, and the step that event adds
    (once: a step is keyed by its event's id)."""
    await conn.execute(
        """
        INSERT INTO intake.cases (case_id, opinion_id, district_id, stage, open311_status,
            category_code, progress, opened_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (case_id) DO UPDATE
           SET stage = excluded.stage, open311_status = excluded.open311_status,
               category_code = excluded.category_code, progress = excluded.progress,
               updated_at = excluded.updated_at
        """,
        progress.case_id,
        progress.opinion_id,
        progress.district_id,
        progress.stage.value,
        open311_status(progress.stage),
        progress.category_code,
        progress.to_json(),
        progress.opened_at,
        progress.updated_at,
    )
    await conn.execute(
        """
        INSERT INTO intake.case_steps (event_id, case_id, opinion_id, district_id,
            stream_version, occurred_at, step)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING
        """,
        envelope.event_id,
        progress.case_id,
        progress.opinion_id,
        progress.district_id,
        envelope.stream_version,
        step.at,
        step.to_json(),
    )


async def latest_case(
    conn: asyncpg.Pool | Conn, opinion_id: str, *, for_update: bool = False
) -> CaseProgress | None:
    """The most recent case opened for an opinion (normally its only one); with
    ``for_update`` its row is locked until the transaction ends."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        "SELECT progress FROM intake.cases WHERE opinion_id = $1 "
        f"ORDER BY opened_at DESC LIMIT 1{lock}",
        opinion_id,
    )
    return None if row is None else CaseProgress.from_json(row["progress"])


async def steps_of(conn: asyncpg.Pool | Conn, opinion_id: str) -> list[Step]:
    """Every step of an opinion's cases, oldest first."""
    rows = await conn.fetch(
        "SELECT step FROM intake.case_steps WHERE opinion_id = $1 "
        "ORDER BY occurred_at, stream_version",
        opinion_id,
    )
    return [Step.from_json(r["step"]) for r in rows]


async def matter_of(
    conn: Conn, opinion_id: str, district_id: str
) -> tuple[CaseProgress | None, list[Step]]:
    """The latest case of an opinion of ``district_id`` and every step of its cases, oldest
    first, following the matter into each district it was transferred to.

    Each district's rows are read in that district's scope (``conn``'s transaction is
    scoped to each in turn, and left scoped to ``district_id``): a district is read only
    because a step of the matter names it.
    """
    latest: CaseProgress | None = None
    steps: list[Step] = []
    pending, seen = [district_id], set[str]()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        await scope(conn, current)
        case = await latest_case(conn, opinion_id)
        if case is not None and (latest is None or case.opened_at >= latest.opened_at):
            latest = case
        found = await steps_of(conn, opinion_id)
        steps.extend(found)
        pending.extend(s.to_district_id for s in found if s.to_district_id)
    if len(seen) > 1:
        await scope(conn, district_id)
        steps.sort(key=lambda s: s.at)  # stable: each district's steps keep their order
    return latest, steps
