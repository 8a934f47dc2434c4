"""Residents' personal data, sealed per resident so that it can be forgotten.

Names and phone numbers never travel in clear: an event carries a ``subject_id`` and
ciphertexts sealed with that resident's own AES-256-GCM key. The keys live in one table,
``privacy.subject_keys``. Deleting a resident's key (:meth:`PersonalDataVault.forget`)
makes every ciphertext sealed with it unreadable wherever it was copied (the event store,
Kafka, a consumer's tables, a backup of any of them): crypto-shredding. The event log
itself stays as it was, so its hash chains still verify.

One resident, one key: a submission that names a phone number already known in the
district reuses that resident's subject, found through a keyed hash of the number (a
blind index, ``lookup_hash``), so one ``forget`` erases all of a resident's submissions.
The blind index goes with the key.

A ciphertext is ``mq1.<base64url(nonce || ciphertext || tag)>``. The additional
authenticated data binds it to its subject and field, so a ciphertext cannot be moved to
another resident or from the phone field to the name field without failing to open.

What this does not cover: a database backup taken before ``forget`` still holds the key
until that backup expires. Keep backups' retention within what the law allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventkit.db import Conn

SEAL_PREFIX: Final = "mq1."
_NONCE_BYTES: Final = 12
_KEY_BYTES: Final = 32


class SealError(ValueError):
    """A ciphertext that is malformed, was tampered with, or belongs to another subject."""


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """A resident's pseudonymous id and the key that seals their personal data."""

    subject_id: str
    key: bytes

    def __repr__(self) -> str:  # never print a key
        return f"SubjectKey(subject_id={self.subject_id!r})"


def new_subject_id() -> str:
    """A fresh pseudonymous subject id, ``subj_`` and 24 base32 characters (120 bits)."""
    return "subj_" + base64.b32encode(secrets.token_bytes(15)).decode().lower()


def new_key() -> bytes:
    """A fresh AES-256 key."""
    return AESGCM.generate_key(bit_length=256)


def _aad(subject_id: str, field: str) -> bytes:
    return f"minqing:{subject_id}:{field}".encode()


def seal_value(subject: SubjectKey, field: str, plaintext: str) -> str:
    """``plaintext`` sealed with the subject's key, bound to the subject and ``field``."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(subject.key).encrypt(nonce, plaintext.encode(), _aad(subject.subject_id, field))
    return SEAL_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def open_value(subject: SubjectKey, field: str, token: str) -> str:
    """The plaintext of a value sealed by :func:`seal_value`; :class:`SealError` otherwise."""
    if not token.startswith(SEAL_PREFIX):
        raise SealError("not a sealed value")
    body = token[len(SEAL_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:
        raise SealError("sealed value is not base64url") from exc
    if len(raw) <= _NONCE_BYTES + 16:
        raise SealError("sealed value is too short")
    try:
        plain = AESGCM(subject.key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(subject.subject_id, field)
        )
    except InvalidTag as exc:
        raise SealError("sealed value does not open with this subject's key") from exc
    return plain.decode()


@dataclass(frozen=True, slots=True)
class Sealed:
    """The result of sealing: the subject and one ciphertext per field (None stays None)."""

    subject_id: str
    values: dict[str, str | None]


class PersonalDataVault:
    """The key table ``privacy.subject_keys``: seal, open and forget residents' data.

    Every method takes an optional ``conn`` so that sealing joins the transaction that
    appends the event carrying the ciphertexts: a key is never stored without its event,
    nor an event without its key.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._lookup_key: bytes | None = None

    async def _lookup_secret(self, conn: Conn) -> bytes:
        if self._lookup_key is None:
            key = await conn.fetchval("SELECT key FROM privacy.lookup_key")
            if key is None:
                raise RuntimeError("privacy.lookup_key is empty: run the migrations")
            self._lookup_key = bytes(key)
        return self._lookup_key

    async def lookup_hash(self, district_id: str, identifier: str, *, conn: Conn) -> bytes:
        """The blind index of an identifier (a normalised phone number) in a district."""
        secret = await self._lookup_secret(conn)
        return hmac.new(secret, f"{district_id}\x00{identifier}".encode(), hashlib.sha256).digest()

    async def subject_for(
        self, district_id: str, *, identifier: str | None, conn: Conn
    ) -> SubjectKey:
        """The resident's subject and key, created when new.

        With ``identifier`` (a normalised phone number) the same resident gets the same
        subject every time in this district; without one, each call is a new subject.
        """
        lookup = (
            await self.lookup_hash(district_id, identifier, conn=conn)
            if identifier is not None
            else None
        )
        candidate = SubjectKey(new_subject_id(), new_key())
        # One round trip in the usual cases: a new subject is inserted, or the resident's
        # committed row is found. A row another transaction has just inserted is not in
        # this statement's snapshot: then the second query finds it.
        row = await conn.fetchrow(
            """
            WITH inserted AS (
                INSERT INTO privacy.subject_keys (subject_id, district_id, key, lookup_hash)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (district_id, lookup_hash) DO NOTHING
                RETURNING subject_id, key
            )
            SELECT subject_id, key FROM inserted
            UNION ALL
            SELECT subject_id, key FROM privacy.subject_keys
             WHERE $4::bytea IS NOT NULL AND district_id = $2 AND lookup_hash = $4
            LIMIT 1
            """,
            candidate.subject_id,
            district_id,
            candidate.key,
            lookup,
        )
        if row is None:
            row = await conn.fetchrow(
                "SELECT subject_id, key FROM privacy.subject_keys "
                "WHERE district_id = $1 AND lookup_hash = $2",
                district_id,
                lookup,
            )
        if row is None:  # forgotten between the two statements: start afresh
            return await self.subject_for(district_id, identifier=identifier, conn=conn)
        return SubjectKey(row["subject_id"], bytes(row["key"]))

    async def seal(
        self,
        district_id: str,
        values: Mapping[str, str | None],
        *,
        identifier: str | None,
        conn: Conn,
    ) -> Sealed:
        """Seal ``values`` (field name → plaintext) with the resident's key."""
        subject = await self.subject_for(district_id, identifier=identifier, conn=conn)
        return Sealed(
            subject.subject_id,
            {
                field: None if value is None else seal_value(subject, field, value)
                for field, value in values.items()
            },
        )

    async def key(self, subject_id: str, *, conn: Conn | None = None) -> SubjectKey | None:
        """The subject's key, or None when there is none (never existed, or forgotten)."""
        query = "SELECT key FROM privacy.subject_keys WHERE subject_id = $1"
        key = await (conn or self._pool).fetchval(query, subject_id)
        return None if key is None else SubjectKey(subject_id, bytes(key))

    async def open(
        self,
        subject_id: str,
        sealed: Mapping[str, str | None],
        *,
        conn: Conn | None = None,
    ) -> dict[str, str | None] | None:
        """The plaintexts of sealed fields; None when the subject's key is gone.

        Raises :class:`SealError` for a ciphertext that does not belong to the subject.
        """
        subject = await self.key(subject_id, conn=conn)
        if subject is None:
            return None
        return {
            field: None if token is None else open_value(subject, field, token)
            for field, token in sealed.items()
        }

    async def forget(
        self, subject_id: str, *, requested_by: str, reason: str | None = None
    ) -> bool:
        """Delete the subject's key: their sealed data becomes unreadable everywhere.

        Records who asked and why in ``privacy.forgotten_subjects``. Returns False when
        there was no key (unknown subject, or already forgotten).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            district = await conn.fetchval(
                "DELETE FROM privacy.subject_keys WHERE subject_id = $1 RETURNING district_id",
                subject_id,
            )
            if district is None:
                return False
            await conn.execute(
                """
                INSERT INTO privacy.forgotten_subjects
                    (subject_id, district_id, requested_by, reason)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (subject_id) DO NOTHING
                """,
                subject_id,
                district,
                requested_by,
                reason,
            )
            return True

    async def forgotten(self, subject_id: str) -> bool:
        """Whether the subject's key was deleted by :meth:`forget`."""
        found = await self._pool.fetchval(
            "SELECT true FROM privacy.forgotten_subjects WHERE subject_id = $1", subject_id
        )
        return bool(found)
