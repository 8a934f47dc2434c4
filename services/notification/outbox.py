"""The outbox of deliveries (``notification.deliveries``): planned in the consumer's
transaction, claimed and worked by the sender after commit, each outcome recorded.

A delivery is keyed by (source event, recipient, channel): a redelivered event plans
nothing new. The sender claims before sending (``sending``, with who and when); a row
still ``sending`` after twice the send timeout belongs to a sender that died mid-send and
becomes ``unknown``: never resent by itself, reconciled by an operator
(``minqing notification reconcile``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from eventkit.db import ALL_DISTRICTS, Conn, district_transaction


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to plan."""

    delivery_id: uuid.UUID
    district_id: str
    source_event_id: uuid.UUID
    source_type: str
    rule: str
    recipient_kind: str
    recipient: str
    channel: str
    template: str
    case_id: str | None
    opinion_id: str | None
    context: dict[str, Any]
    not_before: datetime
    held: str | None
    created_at: datetime
    source_committed: datetime | None


@dataclass(frozen=True)
class Delivery:
    """A delivery claimed for sending."""

    delivery_id: uuid.UUID
    district_id: str
    source_event_id: uuid.UUID
    source_type: str
    rule: str
    recipient_kind: str
    recipient: str
    channel: str
    template: str
    case_id: str | None
    opinion_id: str | None
    context: dict[str, Any]
    attempts: int
    created_at: datetime
    source_committed: datetime | None


async def plan(conn: Conn, deliveries: Sequence[NewDelivery]) -> int:
    """Record deliveries to make (those already planned are left as they are)."""
    if not deliveries:
        return 0
    status = await conn.fetchval(
        """
        WITH planned AS (
            INSERT INTO notification.deliveries (delivery_id, district_id, source_event_id,
                source_type, rule, recipient_kind, recipient, channel, template, case_id,
                opinion_id, context, not_before, held, created_at, source_committed)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                $12::jsonb[], $13::timestamptz[], $14::text[], $15::timestamptz[],
                $16::timestamptz[])
            ON CONFLICT DO NOTHING RETURNING 1
        ) SELECT count(*) FROM planned
        """,
        [d.delivery_id for d in deliveries],
        [d.district_id for d in deliveries],
        [d.source_event_id for d in deliveries],
        [d.source_type for d in deliveries],
        [d.rule for d in deliveries],
        [d.recipient_kind for d in deliveries],
        [d.recipient for d in deliveries],
        [d.channel for d in deliveries],
        [d.template for d in deliveries],
        [d.case_id for d in deliveries],
        [d.opinion_id for d in deliveries],
        [d.context for d in deliveries],
        [d.not_before for d in deliveries],
        [d.held for d in deliveries],
        [d.created_at for d in deliveries],
        [d.source_committed for d in deliveries],
    )
    return int(status)


async def claim(
    conn: Conn,
    now: datetime,
    limit: int,
    sender: str,
    share: int,
    in_flight: Mapping[str, int],
) -> list[Delivery]:
    """Claim up to ``limit`` deliveries due by ``now``, oldest first, and at most ``share``
    in flight per recipient counting ``in_flight`` (what this sender already sends to each):
    one slow receiver cannot take every slot.

    Every district's deliveries at once: ``conn``'s transaction is scoped to every
    district (``ALL_DISTRICTS``) by the caller, since one sender serves them all, oldest
    first, and a claim per district would let a busy district starve the others or cost
    a statement per district for each claim.
    """
    # Under a burst the outbox grows by thousands of rows within seconds, faster than
    # the statistics follow: planned on them, the claim read every due row (a bitmap
    # scan and a sort; 13 ms a claim with 6,000 waiting, measured) where walking the due
    # index in its order reads only the oldest few. For this transaction only.
    await conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
    rows = await conn.fetch(
        """
        UPDATE notification.deliveries d
           SET status = 'sending', attempts = d.attempts + 1, claimed_at = clock_timestamp(),
               claimed_by = $3, held = NULL
         WHERE delivery_id IN (
            SELECT delivery_id FROM notification.deliveries
             WHERE delivery_id IN (
                SELECT delivery_id FROM (
                    SELECT delivery_id, recipient,
                           row_number() OVER (PARTITION BY recipient ORDER BY not_before) AS n
                      FROM (SELECT delivery_id, recipient, not_before
                              FROM notification.deliveries
                             WHERE status = 'pending' AND not_before <= $1
                             ORDER BY not_before LIMIT $2 * 8) due
                ) ranked
                 WHERE n <= $4 - coalesce(($5::jsonb ->> recipient)::int, 0))
             ORDER BY not_before
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
        RETURNING delivery_id, district_id, source_event_id, source_type, rule,
                  recipient_kind, recipient, channel, template, case_id, opinion_id, context,
                  attempts, created_at, source_committed
        """,
        now,
        limit,
        sender,
        share,
        dict(in_flight),
    )
    return [Delivery(**dict(r.items())) for r in rows]


@dataclass(frozen=True)
class Finished:
    """How a delivery's attempt ended: ``sent``, ``failed`` (for good) or ``pending``
    again at ``retry_at``."""

    delivery: Delivery
    status: str
    error: str | None = None
    retry_at: datetime | None = None
    finished_at: datetime | None = None


async def finish(conn: Conn, outcomes: Sequence[Finished], sender: str) -> list[Finished]:
    """Record outcomes; returns those recorded (a row this sender no longer holds, because
    it was declared unknown meanwhile, is left alone)."""
    if not outcomes:
        return []
    rows = await conn.fetch(
        """
        UPDATE notification.deliveries d
           SET status = o.status, last_error = o.error,
               not_before = coalesce(o.retry_at, d.not_before),
               finished_at = o.finished_at, claimed_at = NULL, claimed_by = NULL
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[],
                      $5::timestamptz[]) AS o(delivery_id, status, error, retry_at, finished_at)
         WHERE d.delivery_id = o.delivery_id AND d.status = 'sending' AND d.claimed_by = $6
        RETURNING d.delivery_id
        """,
        [o.delivery.delivery_id for o in outcomes],
        [o.status for o in outcomes],
        [o.error[:1000] if o.error else None for o in outcomes],
        [o.retry_at for o in outcomes],
        [o.finished_at for o in outcomes],
        sender,
    )
    kept = {r["delivery_id"] for r in rows}
    return [o for o in outcomes if o.delivery.delivery_id in kept]


async def mark_unknown(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Deliveries claimed longer ago than ``older_than`` and never finished: their sender
    died mid-send. They become ``unknown``; returns how many (of every district: the
    sender that died served them all)."""
    async with district_transaction(pool, ALL_DISTRICTS) as conn:
        status = await conn.execute(
            "UPDATE notification.deliveries SET status = 'unknown', "
            "last_error = 'the sender stopped while sending: outcome unknown, not resent' "
            "WHERE status = 'sending' AND claimed_at < clock_timestamp() - $1::interval",
            older_than,
        )
    return int(status.rsplit(" ", 1)[-1])


@dataclass(frozen=True)
class Depth:
    """The outbox at a glance."""

    pending: int
    held: int
    unknown: int
    oldest_pending: datetime | None


async def depth(pool: asyncpg.Pool) -> Depth:
    """How much waits, and since when (in every district: the sender's one outbox)."""
    async with district_transaction(pool, ALL_DISTRICTS) as conn:
        row = await conn.fetchrow(
            """
        SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'pending' AND held IS NOT NULL) AS held,
               count(*) FILTER (WHERE status = 'unknown') AS unknown,
               min(created_at) FILTER (WHERE status = 'pending' AND held IS NULL) AS oldest
          FROM notification.deliveries WHERE status IN ('pending', 'unknown')
        """
        )
    assert row is not None
    return Depth(row["pending"], row["held"], row["unknown"], row["oldest"])


async def reconcile(
    conn: Conn, district_id: str, delivery_id: uuid.UUID, outcome: str, now: datetime
) -> Delivery | None:
    """An operator's decision on an ``unknown`` delivery of ``district_id``: ``sent`` or
    ``failed`` (recorded as such), or ``resend`` (pending again, with the same id for
    receivers to deduplicate). None when there is no such unknown delivery."""
    new = {"sent": "sent", "failed": "failed", "resend": "pending"}[outcome]
    row = await conn.fetchrow(
        """
        UPDATE notification.deliveries
           SET status = $3::text, not_before = $4::timestamptz, held = NULL,
               finished_at = CASE WHEN $3::text = 'pending' THEN NULL ELSE $4::timestamptz END,
               last_error = CASE WHEN $3::text = 'failed'
                                 THEN 'reconciled by an operator: failed' ELSE last_error END
         WHERE delivery_id = $1 AND district_id = $2 AND status = 'unknown'
        RETURNING delivery_id, district_id, source_event_id, source_type, rule,
                  recipient_kind, recipient, channel, template, case_id, opinion_id, context,
                  attempts, created_at, source_committed
        """,
        delivery_id,
        district_id,
        new,
        now,
    )
    return Delivery(**dict(row.items())) if row is not None else None


async def listing(
    conn: Conn,
    district_id: str,
    case_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """A district's deliveries, newest first, optionally of one case or one status."""
    rows = await conn.fetch(
        """
        SELECT delivery_id, source_event_id, source_type, case_id, status, attempts,
               last_error, held, created_at, not_before, finished_at, rule,
               recipient_kind, recipient, channel
          FROM notification.deliveries
         WHERE district_id = $1 AND ($2::text IS NULL OR case_id = $2)
           AND ($3::text IS NULL OR status = $3)
         ORDER BY created_at DESC, delivery_id LIMIT $4 OFFSET $5
        """,
        district_id,
        case_id,
        status,
        limit,
        offset,
    )
    return [dict(r.items()) for r in rows]
