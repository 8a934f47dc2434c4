"""Outside systems' webhook subscriptions to a district's case events.

A subscription is a URL and a secret (shown once, when created or rotated): every case
event of the district (or of the listed types) is POSTed there as a CloudEvents 1.0
structured JSON document, signed (see :mod:`services.notification.signing`), retried with
backoff, and logged per delivery. Paused, nothing is sent and nothing is lost: the
deliveries wait and go when it is resumed. Deleted, the pending ones are cancelled and the
log stays.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventkit.db import Conn
from services.notification.errors import SubscriptionNotFound

FAR_FUTURE = datetime.fromisoformat("9999-01-01T00:00:00+00:00")
"""When a paused subscription's deliveries would go: never, until resumed."""


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    district_id: str
    name: str
    url: str
    event_types: tuple[str, ...]
    status: str
    created_at: datetime
    secret: str
    previous_secret: str | None
    previous_until: datetime | None

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets to sign with now: the current one, and the previous one during its
        grace period."""
        keys = [self.secret]
        if self.previous_secret and self.previous_until and now < self.previous_until:
            keys.append(self.previous_secret)
        return keys

    def wants(self, event_type: str) -> bool:
        """Whether this subscription receives events of ``event_type``."""
        return not self.event_types or event_type in self.event_types


def subscription_of(row: Any) -> Subscription:
    """A subscription from its row (or the row as JSON, times as text)."""

    def when(value: Any) -> Any:
        return datetime.fromisoformat(value) if isinstance(value, str) else value

    return Subscription(
        subscription_id=row["subscription_id"],
        district_id=row["district_id"],
        name=row["name"],
        url=row["url"],
        event_types=tuple(row["event_types"]),
        status=row["status"],
        created_at=when(row["created_at"]),
        secret=row["secret"],
        previous_secret=row["previous_secret"],
        previous_until=when(row["previous_until"]),
    )


def new_secret() -> str:
    """A fresh signing secret (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


async def create(
    conn: Conn,
    district_id: str,
    name: str,
    url: str,
    event_types: list[str],
    actor: str,
    now: datetime,
) -> Subscription:
    """A new, active subscription with a fresh secret."""
    row = await conn.fetchrow(
        """
        INSERT INTO notification.subscriptions (subscription_id, district_id, name, url,
            secret, event_types, status, created_at, created_by, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $7) RETURNING *
        """,
        "sub_" + uuid.uuid4().hex[:16],
        district_id,
        name,
        url,
        new_secret(),
        event_types,
        now,
        actor,
    )
    return subscription_of(row)


async def get(conn: Conn, district_id: str, subscription_id: str) -> Subscription:
    """One subscription of the district (a deleted one too), or the refusal."""
    row = await conn.fetchrow(
        "SELECT * FROM notification.subscriptions WHERE district_id = $1 AND subscription_id = $2",
        district_id,
        subscription_id,
    )
    if row is None:
        raise SubscriptionNotFound(subscription_id)
    return subscription_of(row)


async def by_id(conn: Conn, subscription_id: str) -> Subscription | None:
    """The subscription a delivery is for (None when it no longer exists)."""
    row = await conn.fetchrow(
        "SELECT * FROM notification.subscriptions WHERE subscription_id = $1", subscription_id
    )
    return subscription_of(row) if row is not None else None


async def listing(conn: Conn, district_id: str) -> list[Subscription]:
    """The district's subscriptions, deleted ones last."""
    rows = await conn.fetch(
        "SELECT * FROM notification.subscriptions WHERE district_id = $1 "
        "ORDER BY status = 'deleted', created_at",
        district_id,
    )
    return [subscription_of(r) for r in rows]


async def active(conn: Conn, district_id: str) -> list[Subscription]:
    """The subscriptions that receive the district's events (paused ones too: their
    deliveries wait)."""
    rows = await conn.fetch(
        "SELECT * FROM notification.subscriptions "
        "WHERE district_id = $1 AND status IN ('active', 'paused')",
        district_id,
    )
    return [subscription_of(r) for r in rows]


async def set_status(
    conn: Conn, district_id: str, subscription_id: str, status: str, now: datetime
) -> Subscription:
    """Pause, resume or delete a subscription, and move its waiting deliveries with it."""
    current = await get(conn, district_id, subscription_id)
    if current.status == "deleted":
        raise SubscriptionNotFound(subscription_id)
    await conn.execute(
        "UPDATE notification.subscriptions SET status = $2, updated_at = $3 "
        "WHERE subscription_id = $1",
        subscription_id,
        status,
        now,
    )
    if status == "paused":
        await conn.execute(
            "UPDATE notification.deliveries SET not_before = $2, held = 'paused' "
            "WHERE recipient_kind = 'subscriber' AND recipient = $1 AND status = 'pending'",
            subscription_id,
            FAR_FUTURE,
        )
    elif status == "active":
        await conn.execute(
            "UPDATE notification.deliveries SET not_before = $2, held = NULL "
            "WHERE recipient_kind = 'subscriber' AND recipient = $1 AND status = 'pending'",
            subscription_id,
            now,
        )
    elif status == "deleted":
        await conn.execute(
            "UPDATE notification.deliveries SET status = 'cancelled', finished_at = $2, "
            "last_error = 'the subscription was deleted' "
            "WHERE recipient_kind = 'subscriber' AND recipient = $1 AND status = 'pending'",
            subscription_id,
            now,
        )
    return await get(conn, district_id, subscription_id)


async def rotate(
    conn: Conn, district_id: str, subscription_id: str, grace: timedelta, now: datetime
) -> Subscription:
    """A new secret; the old one still signs (beside it) during ``grace``."""
    current = await get(conn, district_id, subscription_id)
    if current.status == "deleted":
        raise SubscriptionNotFound(subscription_id)
    await conn.execute(
        "UPDATE notification.subscriptions SET previous_secret = secret, secret = $2, "
        "previous_until = $3, updated_at = $4 WHERE subscription_id = $1",
        subscription_id,
        new_secret(),
        now + grace,
        now,
    )
    return await get(conn, district_id, subscription_id)


async def deliveries(
    conn: Conn, district_id: str, subscription_id: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The subscription's delivery log, newest first."""
    await get(conn, district_id, subscription_id)
    rows = await conn.fetch(
        """
        SELECT delivery_id, source_event_id, source_type, case_id, status, attempts,
               last_error, held, created_at, not_before, finished_at
          FROM notification.deliveries
         WHERE recipient_kind = 'subscriber' AND recipient = $1
         ORDER BY created_at DESC, delivery_id LIMIT $2 OFFSET $3
        """,
        subscription_id,
        limit,
        offset,
    )
    return [dict(r.items()) for r in rows]
