"""The opinions intake accepted (``intake.opinions``), with their tracking codes.

A row is written in the very transaction that appends the opinion's ``OpinionSubmitted``,
so a tracking code handed to a resident always finds its opinion. The tracking code is a
credential: it lives here, never in an event.
"""

from __future__ import annotations

import asyncpg

from eventkit.db import Conn
from services.intake.errors import TrackingNotFound
from services.intake.idempotency import Claim
from services.intake.opinion_record import OpinionRecord
from services.intake.tracking_codes import normalise_tracking_code

_NAMES = (
    "opinion_id",
    "district_id",
    "tracking_code",
    "channel",
    "station_code",
    "community",
    "address",
    "lat",
    "long",
    "category_hint",
    "text",
    "attachments",
    "external_ref",
    "subject_id",
    "submitted_at",
)
_COLUMNS = ", ".join(_NAMES)
_READ = (*_NAMES, "withdrawn_at", "withdraw_reason")


def columns(alias: str) -> str:
    """The opinion's columns for a SELECT, qualified by a table alias."""
    return ", ".join(f"{alias}.{name}" for name in _READ)


def record_from_row(row: asyncpg.Record) -> OpinionRecord:
    """An opinion from a row holding (at least) its columns."""
    values = {name: row[name] for name in _READ}
    values["attachments"] = tuple(values["attachments"] or ())
    return OpinionRecord(**values)


async def insert_opinion(conn: Conn, record: OpinionRecord, *, claim: Claim | None = None) -> bool:
    """Keep an accepted opinion (in the caller's transaction), claiming its idempotency
    key in the same statement. False when the key was already claimed: nothing inserted."""
    values = [
        record.opinion_id,
        record.district_id,
        record.tracking_code,
        record.channel,
        record.station_code,
        record.community,
        record.address,
        record.lat,
        record.long,
        record.category_hint,
        record.text,
        list(record.attachments),
        record.external_ref,
        record.subject_id,
        record.submitted_at,
    ]
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    if claim is None:
        await conn.execute(
            f"INSERT INTO intake.opinions ({_COLUMNS}) VALUES ({placeholders})", *values
        )
        return True
    cte, args = claim.cte(len(values) + 1)
    inserted = await conn.fetchval(
        f"""
        WITH {cte}
        INSERT INTO intake.opinions ({_COLUMNS})
        SELECT {placeholders} WHERE EXISTS (SELECT 1 FROM claim)
        RETURNING true
        """,
        *values,
        *args,
    )
    return bool(inserted)


async def opinion_by_code(conn: Conn | asyncpg.Pool, raw_code: str) -> OpinionRecord:
    """The opinion of a tracking code as a resident typed it; :class:`TrackingNotFound`
    for a code that is unknown or cannot be one (the same answer for both)."""
    code = normalise_tracking_code(raw_code)
    row = (
        await conn.fetchrow(
            f"SELECT {', '.join(_READ)} FROM intake.opinions WHERE tracking_code = $1", code
        )
        if code
        else None
    )
    if row is None:
        raise TrackingNotFound()
    return record_from_row(row)


async def opinion_by_id(
    conn: Conn | asyncpg.Pool, opinion_id: str, *, for_update: bool = False
) -> OpinionRecord | None:
    """One opinion by its id (``for_update``: its row locked until the transaction ends)."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {', '.join(_READ)} FROM intake.opinions WHERE opinion_id = $1{lock}", opinion_id
    )
    return None if row is None else record_from_row(row)
