"""Outside systems' webhook subscriptions to a district's case events.

A subscription is a URL and a secret (shown once, when created or rotated): every case
event of the district (or of the listed types) is POSTed there as a CloudEvents 1.0
structured JSON document, signed (see :mod:`services.notification.signing`), retried with
backoff, and logged per delivery. Paused, nothing is sent and nothing is lost: the
deliveries wait and go when it is resumed. Deleted, the pending ones are cancelled and the
log stays.

The secrets are sealed in the database (AES-256-GCM under a key derived from
``MINQING_PRIVACY_KEY``, the sealed value naming its key id and bound to its
subscription): a copy of the database alone signs nothing. A row holds
``sealed:<key id>:<base64url(nonce | ciphertext | tag)>``; a secret stored in clear by an
earlier version is still read, and sealed on the subscription's next write or by
``minqing keys rewrap``, which also seals again what a previous key sealed.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from eventkit.db import ALL_DISTRICTS, Conn, district_transaction
from eventkit.keys import KeyRing
from eventkit.privacy import SealError, VaultKeyMissing
from services.notification.errors import SubscriptionNotFound

SEALED: Final = "sealed:"
"""Prefix of a sealed secret in ``notification.subscriptions``."""
_NONCE_BYTES: Final = 12


@lru_cache(maxsize=8)
def _secret_kek(key: str) -> bytes:
    """The AES-256 key sealing webhook secrets, derived from a vault key setting (another
    derivation than the residents' keys')."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"minqing webhook secret"
    ).derive(key.encode())


def _aad(subscription_id: str) -> bytes:
    return f"minqing-webhook-secret:{subscription_id}".encode()


def seal_secret(keys: KeyRing, subscription_id: str, secret: str) -> str:
    """``secret`` sealed with the current vault key, for ``subscription_id`` only."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    body = AESGCM(_secret_kek(keys.current)).encrypt(nonce, secret.encode(), _aad(subscription_id))
    token = base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")
    return f"{SEALED}{keys.current_id}:{token}"


def sealed_with(stored: str) -> str | None:
    """The id of the key that sealed ``stored``; None for a secret kept in clear."""
    if not stored.startswith(SEALED):
        return None
    return stored[len(SEALED) :].partition(":")[0]


def open_secret(keys: KeyRing, subscription_id: str, stored: str) -> str:
    """The secret from its stored form (sealed, or in clear from an earlier version)."""
    kid = sealed_with(stored)
    if kid is None:
        return stored
    key = keys.get(kid)
    if key is None:
        raise VaultKeyMissing(kid)
    token = stored[len(SEALED) + len(kid) + 1 :]
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return (
            AESGCM(_secret_kek(key))
            .decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(subscription_id))
            .decode()
        )
    except (InvalidTag, ValueError) as exc:
        raise SealError("sealed webhook secret does not open") from exc


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
    """As stored (sealed) when read from the database; in clear when returned by
    :func:`create` and :func:`rotate`, to be shown once (or by :meth:`opened`)."""
    previous_secret: str | None
    previous_until: datetime | None

    def opened(self, keys: KeyRing) -> Subscription:
        """This subscription with its secrets in clear."""
        return dataclasses.replace(
            self,
            secret=open_secret(keys, self.subscription_id, self.secret),
            previous_secret=(
                open_secret(keys, self.subscription_id, self.previous_secret)
                if self.previous_secret
                else None
            ),
        )

    def secrets_at(self, now: datetime, keys: KeyRing) -> list[str]:
        """The secrets to sign with now, in clear: the current one, and the previous one
        during its grace period."""
        found = [open_secret(keys, self.subscription_id, self.secret)]
        if self.previous_secret and self.previous_until and now < self.previous_until:
            found.append(open_secret(keys, self.subscription_id, self.previous_secret))
        return found

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
    *,
    keys: KeyRing,
) -> Subscription:
    """A new, active subscription with a fresh secret, sealed with ``keys``; returned
    with the secret in clear (shown once)."""
    subscription_id = "sub_" + uuid.uuid4().hex[:16]
    secret = new_secret()
    row = await conn.fetchrow(
        """
        INSERT INTO notification.subscriptions (subscription_id, district_id, name, url,
            secret, event_types, status, created_at, created_by, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $7) RETURNING *
        """,
        subscription_id,
        district_id,
        name,
        url,
        seal_secret(keys, subscription_id, secret),
        event_types,
        now,
        actor,
    )
    return dataclasses.replace(subscription_of(row), secret=secret)


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
    conn: Conn,
    district_id: str,
    subscription_id: str,
    status: str,
    now: datetime,
    *,
    keys: KeyRing | None = None,
) -> Subscription:
    """Pause, resume or delete a subscription, and move its waiting deliveries with it.
    Given ``keys``, secrets not sealed with the current key are sealed again."""
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
    if keys is not None:
        await _reseal(conn, current, keys)
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
    conn: Conn,
    district_id: str,
    subscription_id: str,
    grace: timedelta,
    now: datetime,
    *,
    keys: KeyRing,
) -> Subscription:
    """A new secret; the old one still signs (beside it) during ``grace``. Both are
    stored sealed with ``keys``; returned in clear (the new one is shown once)."""
    current = await get(conn, district_id, subscription_id)
    if current.status == "deleted":
        raise SubscriptionNotFound(subscription_id)
    old = open_secret(keys, subscription_id, current.secret)
    secret = new_secret()
    await conn.execute(
        "UPDATE notification.subscriptions SET previous_secret = $5, secret = $2, "
        "previous_until = $3, updated_at = $4 WHERE subscription_id = $1",
        subscription_id,
        seal_secret(keys, subscription_id, secret),
        now + grace,
        now,
        seal_secret(keys, subscription_id, old),
    )
    return (await get(conn, district_id, subscription_id)).opened(keys)


async def _reseal(conn: Conn, current: Subscription, keys: KeyRing) -> bool:
    """Seal again, with the current key, a subscription's secrets stored in clear or
    sealed with a previous key; whether anything was written."""
    stale = [
        stored
        for stored in (current.secret, current.previous_secret)
        if stored is not None and sealed_with(stored) != keys.current_id
    ]
    if not stale:
        return False
    opened = current.opened(keys)
    await conn.execute(
        "UPDATE notification.subscriptions SET secret = $2, previous_secret = $3 "
        "WHERE subscription_id = $1",
        current.subscription_id,
        seal_secret(keys, current.subscription_id, opened.secret),
        (
            seal_secret(keys, current.subscription_id, opened.previous_secret)
            if opened.previous_secret
            else None
        ),
    )
    return True


async def rewrap_secrets(pool: asyncpg.Pool, keys: KeyRing, *, batch: int = 500) -> int:
    """Seal with the current vault key every subscription secret stored in clear or
    sealed with a previous key; returns how many subscriptions were written. Run by
    ``minqing keys rewrap`` beside the residents' keys."""
    done = 0
    after = ""
    while True:
        # Every district's subscriptions: re-sealing after a key rotation is about the
        # whole deployment by nature.
        async with district_transaction(pool, ALL_DISTRICTS) as conn:
            rows = await conn.fetch(
                "SELECT * FROM notification.subscriptions WHERE subscription_id > $1 "
                "ORDER BY subscription_id LIMIT $2 FOR UPDATE",
                after,
                batch,
            )
            if not rows:
                return done
            after = rows[-1]["subscription_id"]
            for row in rows:
                done += await _reseal(conn, subscription_of(row), keys)


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
