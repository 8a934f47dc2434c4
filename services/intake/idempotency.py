"""Idempotency keys: a retried request gets the first answer, and nothing new happens.

The key, a hash of the request and the answer are stored in ``intake.idempotency_keys``
in the same transaction as the event (in the same statement as the opinion's row), so
either both exist or neither does. A second request with the key waits on the row until
the first commits or rolls back, claims nothing, and answers with what is stored. The
event id is derived from the key too, so the store itself would refuse a second copy.

A stored answer names the district the request went to (row-level security keeps it in
that district). A retry is looked up by its key in every district: it cannot know its
district before its place is resolved again, and the key with the hash of the whole
request are the client's own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from eventkit.db import ALL_DISTRICTS, Conn, begun_scoped
from eventkit.requests import checked_idempotency_key
from services.intake.errors import IdempotencyKeyReused

_NAMESPACE: Final = uuid.UUID("6a1b3c5e-2f4d-4e8a-9b7c-0d1e2f3a4b5c")


def request_hash(payload: Any, secret: bytes) -> bytes:
    """A digest of a request's meaning: its parsed body in canonical JSON, keyed.

    HMAC-SHA256 with the server's ``intake_hash_key``: a body may hold a resident's name
    and phone, and a plain hash of it would let anyone with the table confirm a guessed
    name and number offline, even after the resident's key is shredded.
    """
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(secret, canonical.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key, in the scope of who sent it, with the hash of what they sent."""

    scope: str
    key: str
    request_hash: bytes
    earlier_hashes: tuple[bytes, ...] = ()
    """The same request hashed with the previous hash keys: a digest stored before a
    rotation of ``MINQING_INTAKE_HASH_KEY`` still recognises its retry."""

    @classmethod
    def of(
        cls, scope: str, key: str, payload: Any, *, secret: bytes | Sequence[bytes]
    ) -> IdempotencyKey:
        """A checked key for ``payload``, hashed with ``secret`` (the settings'
        ``intake_hash_secrets``: the current key first, which hashes what is stored, then
        the previous ones); :class:`eventkit.http.InvalidIdempotencyKey` when the key is
        malformed (a form field or a work-order number is checked here like a header)."""
        checked_idempotency_key(key)
        current, *previous = [secret] if isinstance(secret, bytes) else list(secret)
        return cls(
            scope,
            key,
            request_hash(payload, current),
            tuple(request_hash(payload, p) for p in previous),
        )

    @property
    def event_id(self) -> uuid.UUID:
        """The id of the event this key's request appends: the same on every retry."""
        return uuid.uuid5(_NAMESPACE, f"{self.scope}\n{self.key}")


async def stored_answer(conn: Conn, key: IdempotencyKey) -> dict[str, Any] | None:
    """The answer given before for ``key``, or None when the key is new (looked up in
    every district, in a transaction of its own or a savepoint of the caller's).

    :class:`IdempotencyKeyReused` when the key came with another request.
    """
    # BEGIN and the scope in one round trip: every submission with a key looks it up.
    async with begun_scoped(conn, ALL_DISTRICTS):
        row = await conn.fetchrow(
            "SELECT request_hash, response FROM intake.idempotency_keys "
            "WHERE scope = $1 AND key = $2",
            key.scope,
            key.key,
        )
    if row is None:
        return None
    if bytes(row["request_hash"]) not in (key.request_hash, *key.earlier_hashes):
        raise IdempotencyKeyReused()
    response: dict[str, Any] = row["response"]
    return response


@dataclass(frozen=True)
class Claim:
    """A key with the answer its request gets, stored in the transaction of the effect
    (scoped to ``district_id``, the district the request went to)."""

    key: IdempotencyKey
    status: int
    response: dict[str, Any]
    district_id: str

    def cte(self, first: int) -> tuple[str, list[Any]]:
        """A ``claim`` CTE (returns a row when the key was free) and its arguments, numbered
        from ``$first``. Two requests with one key: the second waits on the row until the
        first commits, then claims nothing."""
        n = first
        sql = (
            "claim AS (INSERT INTO intake.idempotency_keys "
            "(scope, key, request_hash, status, response, district_id) "
            f"VALUES (${n}, ${n + 1}, ${n + 2}, ${n + 3}, ${n + 4}, ${n + 5}) "
            "ON CONFLICT (scope, key) DO NOTHING RETURNING true AS claimed)"
        )
        return sql, [
            self.key.scope,
            self.key.key,
            self.key.request_hash,
            self.status,
            self.response,
            self.district_id,
        ]
