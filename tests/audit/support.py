"""Histories to audit, and tampering with them as the database owner."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from contracts import (
    Actor,
    ActorRole,
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReplied,
    CaseResolved,
    Event,
    Location,
    NotificationSent,
    OpinionSubmitted,
    Priority,
    SubmitterRef,
)
from contracts.envelope import Envelope
from eventkit.db import connect, district_transaction
from eventkit.store import EventStore

START = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
LIAISON = Actor(id="lo-007", role=ActorRole.LIAISON)
ROUTING = Actor(id="routing", role=ActorRole.SYSTEM)


@dataclass
class Matter:
    """One resident's matter: an opinion, its case, a notification."""

    opinion_id: str
    case_id: str
    notification_id: str
    streams: list[str] = field(default_factory=list)


def matter_events(
    district: str, n: int, when: datetime, *, submitter: SubmitterRef | None = None
) -> tuple[Matter, list[Event]]:
    """The events of one matter, in the order they happen."""
    tag = uuid.uuid4().hex[:8]
    matter = Matter(f"op_{tag}_{n}", f"c_{tag}_{n}", f"n_{tag}_{n}")
    resident = Actor(id=submitter.subject_id if submitter else "subj_x", role=ActorRole.RESIDENT)
    events: list[Event] = [
        OpinionSubmitted(
            district_id=district,
            occurred_at=when,
            actor=resident,
            opinion_id=matter.opinion_id,
            channel="qr",
            text="电梯坏了三天，电话 13812345678",
            location=Location(station_code="s01", community="幸福里"),
            submitter=submitter,
        ),
        CaseOpened(
            district_id=district,
            occurred_at=when + timedelta(minutes=1),
            actor=ROUTING,
            case_id=matter.case_id,
            opinion_id=matter.opinion_id,
            category_code="property",
            priority=Priority.NORMAL,
        ),
        CaseAssigned(
            district_id=district,
            occurred_at=when + timedelta(minutes=2),
            actor=ROUTING,
            case_id=matter.case_id,
            station_code="s01",
            representative_id="rep_01",
            queue="representative",
            reason="同一社区",
        ),
        NotificationSent(
            district_id=district,
            occurred_at=when + timedelta(minutes=3),
            actor=ROUTING,
            notification_id=matter.notification_id,
            source_event_id=uuid.uuid4(),
            recipient="rep_01",
            channel="sms",
            template="case_assigned",
            case_id=matter.case_id,
        ),
        CaseReplied(
            district_id=district,
            occurred_at=when + timedelta(hours=2),
            actor=LIAISON,
            case_id=matter.case_id,
            message="已联系物业",
        ),
        CaseResolved(
            district_id=district,
            occurred_at=when + timedelta(days=1),
            actor=LIAISON,
            case_id=matter.case_id,
            resolution_seq=1,
            result="电梯已修好",
        ),
        CaseClosed(
            district_id=district,
            occurred_at=when + timedelta(days=2),
            actor=LIAISON,
            case_id=matter.case_id,
        ),
    ]
    matter.streams = sorted({e.stream_id for e in events})
    return matter, events


async def append_all(store: EventStore, events: Sequence[Event]) -> None:
    """Append events one by one, as their services would."""
    for event in events:
        await store.append(event.stream_id, [Envelope.wrap(event)])


async def generate_history(
    store: EventStore, district: str = "demo", matters: int = 6, start: datetime = START
) -> list[Matter]:
    """A district's history: ``matters`` matters, their events interleaved in time."""
    made: list[Matter] = []
    batches: list[list[Event]] = []
    for n in range(matters):
        matter, events = matter_events(district, n, start + timedelta(hours=n))
        made.append(matter)
        batches.append(events)
    # Interleave the matters' events, so streams alternate in the store's order.
    for step in range(max(len(b) for b in batches)):
        await append_all(store, [b[step] for b in batches if step < len(b)])
    return made


async def bulk_history(
    pool: asyncpg.Pool, district: str, *, streams: int, versions: int, payload: int = 0
) -> str:
    """``streams`` × ``versions`` plain events in one statement (the trigger chains them),
    each carrying ``payload`` bytes of text; the streams' common prefix."""
    prefix = f"case-b{uuid.uuid4().hex[:6]}"
    async with district_transaction(pool, district) as conn:
        await conn.execute(
            """
            INSERT INTO eventstore.events (district_id, category, stream_id, stream_version,
                                           event_id, event_type, schema_version, data,
                                           occurred_at, prev_hash, hash)
            SELECT $1, '', $2 || '_' || s, v, gen_random_uuid(), 'CaseReplied', 1,
                   jsonb_build_object('message', repeat('民', $5), 'n', v), now(), '', ''
              FROM generate_series(1, $4) AS v, generate_series(1, $3) AS s
             ORDER BY v, s
            """,
            district,
            prefix,
            streams,
            versions,
            payload,
        )
    return prefix


async def tamper(database_url: str, *statements: str | tuple[object, ...]) -> None:
    """Run ``statements`` as the superuser with the event table's guards turned off: what
    an owner of the database could do."""
    owner = await connect(database_url)
    try:
        await owner.execute("ALTER TABLE eventstore.events DISABLE TRIGGER USER")
        for statement in statements:
            if isinstance(statement, tuple):
                await owner.execute(str(statement[0]), *statement[1:])
            else:
                await owner.execute(statement)
        await owner.execute("ALTER TABLE eventstore.events ENABLE TRIGGER USER")
    finally:
        await owner.close()


REHASH_FROM = """
DO $$
DECLARE
    r record;
    v_prev bytea;
BEGIN
    FOR r IN SELECT global_position, stream_version FROM eventstore.events
              WHERE stream_id = '{stream}' AND stream_version >= {version}
              ORDER BY stream_version LOOP
        SELECT hash INTO v_prev FROM eventstore.events
         WHERE stream_id = '{stream}' AND stream_version = r.stream_version - 1;
        UPDATE eventstore.events e
           SET prev_hash = coalesce(v_prev, '\\x{zero}'::bytea),
               hash = sha256(coalesce(v_prev, '\\x{zero}'::bytea) || eventstore.canonical_bytes(e))
         WHERE e.global_position = r.global_position;
    END LOOP;
END $$
"""


def rehash_from(stream: str, version: int) -> str:
    """SQL recomputing a stream's chain from ``version`` on: a careful forger's work."""
    return (
        REHASH_FROM.replace("{stream}", stream)
        .replace("{version}", str(version))
        .replace("{zero}", "00" * 32)
    )
