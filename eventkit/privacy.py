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

The residents' keys are themselves wrapped (AES-256-GCM) with the vault's key,
``MINQING_PRIVACY_KEY``, which lives in the deployment's secrets and never in the
database: a copy of the database alone opens nothing. A wrapped key names the id of the
key that wrapped it (:data:`WRAPPED`), so the vault's key rotates without downtime: new
keys are wrapped with the current one, keys wrapped with a previous one
(``MINQING_PRIVACY_PREVIOUS_KEYS``) still open, and ``minqing keys rewrap`` wraps them
again with the current one, after which the previous key can go. A key stored before
wrapping existed (32 bytes in clear) still opens, and is wrapped by the same command.

What this does not cover: a database backup taken before ``forget`` still holds the
(wrapped) key until that backup expires. Keep backups' retention within what the law
allows.

The blind index's key comes from the environment (``MINQING_PRIVACY_LOOKUP_KEY``,
:mod:`eventkit.blind_index`): each ``lookup_hash`` is stored with the id of the key
that made it, a look-up tries the current key and then the previous ones, and
``minqing privacy reindex`` re-hashes the index with the current key. A database made
before kept its own key (``privacy.lookup_key``), read as the ``legacy`` key until
the reindex has removed it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from eventkit.blind_index import IndexKey, index_keys
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction, scope
from eventkit.keys import KeyRing

SEAL_PREFIX: Final = "mq1."
_NONCE_BYTES: Final = 12
_KEY_BYTES: Final = 32


WRAPPED: Final = b"\x01"
"""First byte of a wrapped key: ``01 | len(kid) | kid | nonce | AES-GCM(key) | tag``."""


class SealError(ValueError):
    """A ciphertext that is malformed, was tampered with, or belongs to another subject."""


class VaultKeyMissing(RuntimeError):
    """A resident's key was wrapped with a vault key this process is not given."""

    def __init__(self, kid: str) -> None:
        super().__init__(
            f"个人信息密钥 {kid!r} 未配置：请在 MINQING_PRIVACY_PREVIOUS_KEYS 中提供 / the vault "
            f"key {kid!r} is not configured: add it to MINQING_PRIVACY_PREVIOUS_KEYS"
        )
        self.kid = kid


@lru_cache(maxsize=8)
def _kek(secret: str) -> AESGCM:
    """The AES-256 key-encryption cipher of the key derived from a vault key setting
    (made once: a rebuild unwraps a key per case)."""
    return AESGCM(
        HKDF(
            algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=b"minqing vault key"
        ).derive(secret.encode())
    )


def _wrap_aad(subject_id: str) -> bytes:
    return f"minqing-subject-key:{subject_id}".encode()


def wrap_key(keys: KeyRing, subject_id: str, key: bytes) -> bytes:
    """``key`` wrapped with the vault's current key, naming its id, bound to the subject."""
    kid = keys.current_id.encode()
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = _kek(keys.current).encrypt(nonce, key, _wrap_aad(subject_id))
    return WRAPPED + bytes([len(kid)]) + kid + nonce + sealed


def wrapped_with(stored: bytes) -> str | None:
    """The id of the vault key that wrapped ``stored``; None for a key kept in clear."""
    if len(stored) == _KEY_BYTES or not stored.startswith(WRAPPED) or len(stored) < 2:
        return None
    return stored[2 : 2 + stored[1]].decode()


def unwrap_key(keys: KeyRing, subject_id: str, stored: bytes) -> bytes:
    """The resident's key from its stored form (wrapped, or 32 bytes in clear)."""
    if len(stored) == _KEY_BYTES:
        return stored
    kid = wrapped_with(stored)
    if kid is None:
        raise SealError("stored key is malformed")
    secret = keys.get(kid)
    if secret is None:
        raise VaultKeyMissing(kid)
    body = stored[2 + len(kid) :]
    try:
        return _kek(secret).decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], _wrap_aad(subject_id))
    except InvalidTag as exc:
        raise SealError("stored key does not open with the vault key it names") from exc


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

    def __init__(
        self,
        pool: asyncpg.Pool,
        keys: KeyRing | None = None,
        lookup_keys: KeyRing | None = None,
    ) -> None:
        """``keys``: the vault's keys (``Settings.privacy_keys()``); ``lookup_keys``: the
        blind index's (``Settings.privacy_lookup_keys()``); by default those of the
        process's environment."""
        if keys is None or lookup_keys is None:
            from eventkit.settings import get_settings

            keys = keys or get_settings().privacy_keys()
            lookup_keys = lookup_keys or get_settings().privacy_lookup_keys()
        self._pool = pool
        self._keys = keys
        self._lookup_ring = lookup_keys
        self._index: tuple[IndexKey, ...] | None = None

    async def index_keys(self, conn: Conn) -> tuple[IndexKey, ...]:
        """The blind index's keys, the current one first; the database's former key
        (``privacy.lookup_key``, id ``legacy``) last while a database still has it. Read
        once per process: the reindex removes that key only after no hash needs it."""
        if self._index is None:
            legacy = None
            if await conn.fetchval("SELECT to_regclass('privacy.lookup_key') IS NOT NULL"):
                found = await conn.fetchval("SELECT key FROM privacy.lookup_key")
                legacy = None if found is None else bytes(found)
            self._index = index_keys(self._lookup_ring, legacy)
        return self._index

    async def lookup_hash(self, district_id: str, identifier: str, *, conn: Conn) -> bytes:
        """The blind index of an identifier (a normalised phone number) in a district,
        with the current key."""
        return (await self.index_keys(conn))[0].phone_hash(district_id, identifier)

    async def lookup_hashes(self, district_id: str, identifier: str, *, conn: Conn) -> list[bytes]:
        """The identifier's index under every known key, the current one first."""
        return [k.phone_hash(district_id, identifier) for k in await self.index_keys(conn)]

    async def tracking_ref(self, code: str, *, conn: Conn) -> str:
        """A keyed hash of an opinion's tracking code, as events carry it: staff find the
        case a resident's code names without any service but intake holding the code
        (``t1.`` and 32 hex digits, the same in every district: a code is unique)."""
        return (await self.index_keys(conn))[0].tracking_ref(code)

    async def tracking_refs(self, code: str, *, conn: Conn) -> list[str]:
        """The code's ref under every known key, the current one first: an event keeps
        the ref it was written with, so a search tries each key a ref may carry."""
        return [k.tracking_ref(code) for k in await self.index_keys(conn)]

    async def subject_for(
        self, district_id: str, *, identifier: str | None, conn: Conn
    ) -> SubjectKey:
        """The resident's subject and key, created when new.

        With ``identifier`` (a normalised phone number) the same resident gets the same
        subject every time in this district; without one, each call is a new subject.
        """
        lookups = (
            await self.lookup_hashes(district_id, identifier, conn=conn)
            if identifier is not None
            else None
        )
        current = None if lookups is None else (await self.index_keys(conn))[0].key_id
        candidate = SubjectKey(new_subject_id(), new_key())
        # With one index key the hash is a plain parameter: compared with an array (the
        # hashes under every key, while previous keys are given) the statement is planned
        # afresh at every call.
        several = lookups is not None and len(lookups) > 1
        match = "lookup_hash = ANY($6::bytea[])" if several else "lookup_hash = $4"
        # One round trip in the usual cases: the resident's committed row is found (under
        # the current index key or a previous one), or a new subject is inserted with the
        # current key. A row another transaction has just inserted is not in this
        # statement's snapshot: then the second query finds it.
        row = await conn.fetchrow(
            f"""
            WITH found AS (
                SELECT subject_id, key FROM privacy.subject_keys
                 WHERE $4::bytea IS NOT NULL AND district_id = $2 AND {match}
                 LIMIT 1
            ), inserted AS (
                INSERT INTO privacy.subject_keys
                    (subject_id, district_id, key, lookup_hash, lookup_key_id)
                SELECT $1, $2, $3, $4, $5
                 WHERE NOT EXISTS (SELECT 1 FROM found)
                ON CONFLICT (district_id, lookup_hash) DO NOTHING
                RETURNING subject_id, key
            )
            SELECT subject_id, key FROM found
            UNION ALL
            SELECT subject_id, key FROM inserted
            LIMIT 1
            """,
            candidate.subject_id,
            district_id,
            wrap_key(self._keys, candidate.subject_id, candidate.key),
            None if lookups is None else lookups[0],
            current,
            *([lookups] if several else []),
        )
        if row is None:
            row = await conn.fetchrow(
                "SELECT subject_id, key FROM privacy.subject_keys "
                "WHERE district_id = $1 AND lookup_hash = ANY($2::bytea[])",
                district_id,
                lookups,
            )
        if row is None:  # forgotten between the two statements: start afresh
            return await self.subject_for(district_id, identifier=identifier, conn=conn)
        subject_id = row["subject_id"]
        return SubjectKey(subject_id, unwrap_key(self._keys, subject_id, bytes(row["key"])))

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

    async def key(
        self, subject_id: str, *, conn: Conn | None = None, district_id: str | None = None
    ) -> SubjectKey | None:
        """The subject's key, or None when there is none (never existed, or forgotten).

        Row-level security: in ``conn``'s scope; without ``conn``, in a transaction scoped
        to ``district_id``, or else to every district (a subject id names one resident of
        one district: a look-up by it cannot reach another district's keys by mistake).
        """
        query = "SELECT key FROM privacy.subject_keys WHERE subject_id = $1"
        if conn is not None:
            key = await conn.fetchval(query, subject_id)
        else:
            async with district_transaction(self._pool, district_id or ALL_DISTRICTS) as own:
                key = await own.fetchval(query, subject_id)
        if key is None:
            return None
        return SubjectKey(subject_id, unwrap_key(self._keys, subject_id, bytes(key)))

    async def open(
        self,
        subject_id: str,
        sealed: Mapping[str, str | None],
        *,
        conn: Conn | None = None,
        district_id: str | None = None,
    ) -> dict[str, str | None] | None:
        """The plaintexts of sealed fields; None when the subject's key is gone.

        Raises :class:`SealError` for a ciphertext that does not belong to the subject.
        The key is read as :meth:`key` reads it.
        """
        subject = await self.key(subject_id, conn=conn, district_id=district_id)
        if subject is None:
            return None
        return {
            field: None if token is None else open_value(subject, field, token)
            for field, token in sealed.items()
        }

    async def subject_of(self, district_id: str, identifier: str, *, conn: Conn) -> str | None:
        """The subject a normalised phone number names in a district (through the blind
        index), without creating one; None when the number is unknown or was forgotten.
        Tries every known index key (current, previous, the database's former one): a
        row not re-hashed yet by ``minqing privacy reindex`` is found all the same."""
        found = await conn.fetchval(
            "SELECT subject_id FROM privacy.subject_keys "
            "WHERE district_id = $1 AND lookup_hash = ANY($2::bytea[]) LIMIT 1",
            district_id,
            await self.lookup_hashes(district_id, identifier, conn=conn),
        )
        return None if found is None else str(found)

    async def forget(
        self,
        subject_id: str,
        *,
        requested_by: str,
        reason: str | None = None,
        conn: Conn | None = None,
    ) -> bool:
        """Delete the subject's key: their sealed data becomes unreadable everywhere.

        Records who asked and why in ``privacy.forgotten_subjects``. Returns False when
        there was no key (unknown subject, or already forgotten). With ``conn``, in the
        caller's transaction (which erases the services' copies with it).
        """
        if conn is not None:
            return await self._forget(conn, subject_id, requested_by, reason)
        async with self._pool.acquire() as own, own.transaction():
            # By the subject's id alone: it names one resident, whichever their district.
            await scope(own, ALL_DISTRICTS)
            return await self._forget(own, subject_id, requested_by, reason)

    async def _forget(
        self, conn: Conn, subject_id: str, requested_by: str, reason: str | None
    ) -> bool:
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

    async def rewrap(self, *, batch: int = 500) -> int:
        """Wrap every resident's key not wrapped with the current vault key (a previous
        key's, or one kept in clear) with the current one; returns how many. Needs UPDATE
        on the key table, which only the database owner has: run it as the owner."""
        return await rewrap_keys(self._pool, self._keys, "subject_keys", "subject_id", batch=batch)

    async def forgotten(self, subject_id: str, *, district_id: str | None = None) -> bool:
        """Whether the subject's key was deleted by :meth:`forget` (looked up in the
        scope of ``district_id``, or else by the subject's id in every district)."""
        async with district_transaction(self._pool, district_id or ALL_DISTRICTS) as conn:
            found = await conn.fetchval(
                "SELECT true FROM privacy.forgotten_subjects WHERE subject_id = $1", subject_id
            )
        return bool(found)


async def rewrap_keys(
    pool: asyncpg.Pool,
    keys: KeyRing,
    table: str,
    id_column: str,
    *,
    bound_to: Callable[[str], str] = str,
    batch: int = 500,
) -> int:
    """Wrap every key of ``privacy.<table>`` not wrapped with the current vault key with
    the current one; how many. ``bound_to``: the name a row's id binds its wrapping to
    (:func:`wrap_key`'s subject). As the database owner (only it may UPDATE key tables)."""
    current = keys.current_id
    done = 0
    after = ""
    while True:
        # Every district's keys (the owner is not subject to row-level security; a
        # service's role could not update them anyway).
        async with district_transaction(pool, ALL_DISTRICTS) as conn:
            rows = await conn.fetch(
                f"SELECT {id_column} AS id, key FROM privacy.{table} WHERE {id_column} > $1 "
                f"ORDER BY {id_column} LIMIT $2 FOR UPDATE",
                after,
                batch,
            )
            if not rows:
                return done
            after = rows[-1]["id"]
            changed = [
                (
                    row["id"],
                    wrap_key(
                        keys,
                        bound_to(row["id"]),
                        unwrap_key(keys, bound_to(row["id"]), bytes(row["key"])),
                    ),
                )
                for row in rows
                if wrapped_with(bytes(row["key"])) != current
            ]
            if changed:
                await conn.executemany(
                    f"UPDATE privacy.{table} SET key = $2 WHERE {id_column} = $1", changed
                )
            done += len(changed)
