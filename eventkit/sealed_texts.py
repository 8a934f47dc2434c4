"""Residents' texts sealed inside the events, so that forgetting and retention reach the
append-only store.

The event store can never be rewritten (its rows are hash-chained and sealed), so a text
written into an event in clear stays there for ever. Texts are therefore sealed before
they are appended: each matter has its own random AES-256 key (``privacy.text_keys``,
one key per opinion: ``key_id`` is the opinion's id), wrapped with the vault's key like a
resident's key (:func:`eventkit.privacy.wrap_key`). Deleting the key row, when the
resident is forgotten or when the district's retention period of the closed matter ends,
shreds every copy of the texts at once: in the store, in Kafka, in audit archives and in
backups once they expire; the chains still verify.

A key is created in the transaction that appends the first event sealed with it, so a
key never exists without its event nor an event without its key. Readers open a batch
of events with one look-up of their keys (:meth:`TextKeys.found`), never one per event,
and get the erased mark (:data:`eventkit.privacy_rights.ERASED`) where the key is gone.

An event stored before sealing (``legacy_clear``) keeps its texts in clear: the
upcaster cannot encrypt, and nothing can delete them from the store.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import HttpUrl, TypeAdapter

from contracts.intake import (
    FeedbackSubmitted,
    Location,
    OpinionSubmitted,
    OpinionWithdrawn,
    SealedText,
)
from eventkit.db import Conn
from eventkit.keys import KeyRing
from eventkit.privacy import (
    SEAL_PREFIX,
    SealError,
    new_key,
    rewrap_keys,
    unwrap_key,
    wrap_key,
)
from eventkit.privacy_rights import ERASED

ResidentText = TypeVar("ResidentText", FeedbackSubmitted, OpinionWithdrawn)

_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_URL = TypeAdapter(HttpUrl)

OPINION_FIELD: Final = "opinion"
"""The field an opinion's sealed texts are bound to (``OpinionSubmitted.sealed``)."""
RESIDENT_TEXTS: Final = {"FeedbackSubmitted": "comment", "OpinionWithdrawn": "reason"}
"""The resident's text of the other events of an opinion's stream, sealed with the
opinion's key (``sealed``; the clear field empty) and bound to the event's type."""


def _wrap_subject(key_id: str) -> str:
    # The wrapping is bound to the key's id, in a namespace no resident's subject id uses.
    return f"text:{key_id}"


def _aad(key_id: str, field: str) -> bytes:
    return f"minqing-text:{key_id}:{field}".encode()


@dataclass(frozen=True, slots=True)
class TextKey:
    """A matter's text key, opened."""

    key_id: str
    key: bytes

    def __repr__(self) -> str:  # never print a key
        return f"TextKey(key_id={self.key_id!r})"

    def seal(self, field: str, values: Mapping[str, Any]) -> SealedText:
        """``values`` (JSON-ready) sealed with this key, bound to the key and ``field``."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(dict(values), ensure_ascii=False, separators=(",", ":")).encode()
        sealed = AESGCM(self.key).encrypt(nonce, plain, _aad(self.key_id, field))
        token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return SealedText(key_id=self.key_id, ciphertext=SEAL_PREFIX + token)

    def open(self, field: str, sealed: SealedText) -> dict[str, Any]:
        """The values :meth:`seal` sealed; :class:`SealError` if they were not sealed with
        this key for ``field`` (moved, or tampered with)."""
        if sealed.key_id != self.key_id or not sealed.ciphertext.startswith(SEAL_PREFIX):
            raise SealError("sealed text belongs to another key")
        body = sealed.ciphertext[len(SEAL_PREFIX) :]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if len(raw) <= _NONCE_BYTES + _TAG_BYTES:
            raise SealError("sealed text is too short")
        try:
            plain = AESGCM(self.key).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(self.key_id, field)
            )
        except InvalidTag as exc:
            raise SealError("sealed text does not open with its key") from exc
        values = json.loads(plain)
        if not isinstance(values, dict):
            raise SealError("sealed text is not an object")
        return values


class TextKeys:
    """The matters' text keys (``privacy.text_keys``): create, find in batches, delete.

    Every method works in the caller's transaction and its row-level security scope: a key
    is created with the event that first uses it, and deleted with the erasure of the
    services' copies.
    """

    def __init__(self, keys: KeyRing | None = None) -> None:
        """``keys``: the vault's keys (``Settings.privacy_keys()``); by default those of
        the process's environment."""
        if keys is None:
            from eventkit.settings import get_settings

            keys = get_settings().privacy_keys()
        self._keys = keys

    async def create(self, conn: Conn, district_id: str, key_id: str) -> TextKey:
        """The matter's key, created now; the key stored before under ``key_id`` when a
        retried transaction already made it (then it is that one that seals)."""
        key = TextKey(key_id, new_key())
        stored = await conn.fetchval(
            """
            WITH inserted AS (
                INSERT INTO privacy.text_keys (key_id, district_id, key) VALUES ($1, $2, $3)
                ON CONFLICT (key_id) DO NOTHING
                RETURNING key
            )
            SELECT key FROM inserted
            UNION ALL
            SELECT key FROM privacy.text_keys WHERE key_id = $1
            LIMIT 1
            """,
            key_id,
            district_id,
            wrap_key(self._keys, _wrap_subject(key_id), key.key),
        )
        if stored is None:
            raise SealError(f"text key {key_id} could not be stored")
        return TextKey(key_id, unwrap_key(self._keys, _wrap_subject(key_id), bytes(stored)))

    async def found(self, conn: Conn, key_ids: Iterable[str]) -> dict[str, TextKey]:
        """The keys of ``key_ids`` that still exist (in the caller's scope), in one query:
        a key id missing from the answer was deleted (forgotten, or retention ended)."""
        wanted = sorted(set(key_ids))
        if not wanted:
            return {}
        rows = await conn.fetch(
            "SELECT key_id, key FROM privacy.text_keys WHERE key_id = ANY($1::text[])", wanted
        )
        return {
            row["key_id"]: TextKey(
                row["key_id"], unwrap_key(self._keys, _wrap_subject(row["key_id"]), row["key"])
            )
            for row in rows
        }

    async def rewrap(self, pool: asyncpg.Pool) -> int:
        """Wrap every text key not wrapped with the current vault key with it (after a
        rotation, with ``minqing keys rewrap``, as the database owner); how many."""
        return await rewrap_keys(pool, self._keys, "text_keys", "key_id", bound_to=_wrap_subject)

    async def seal_opinion(self, conn: Conn, opinion: OpinionSubmitted) -> OpinionSubmitted:
        """``opinion`` as it is appended: its text, address, point and attachments sealed
        with a new key of its own (created in ``conn``'s transaction), the clear fields
        emptied."""
        key = await self.create(conn, opinion.district_id, opinion.opinion_id)
        location = opinion.location
        unplaced = location.model_copy(update={"address": None, "lat": None, "long": None})
        sealed = key.seal(
            OPINION_FIELD,
            {
                "text": opinion.text,
                "address": location.address,
                "lat": location.lat,
                "long": location.long,
                "attachments": [str(url) for url in opinion.attachments],
            },
        )
        return opinion.model_copy(
            update={
                "text": "",
                "location": unplaced,
                "attachments": [],
                "sealed": sealed,
                "legacy_clear": False,
            }
        )

    async def seal_resident_text(self, conn: Conn, event: ResidentText) -> ResidentText:
        """A rating or a withdrawal as it is appended: its comment or reason
        (:data:`RESIDENT_TEXTS`) sealed with the opinion's key, created now for an opinion
        submitted before texts were sealed."""
        field = RESIDENT_TEXTS[event.event_type]
        text = getattr(event, field)
        if text is None:
            return event
        key = await self.create(conn, event.district_id, event.opinion_id)
        sealed = key.seal(event.event_type, {field: text})
        return event.model_copy(update={field: None, "sealed": sealed})

    async def open_opinions(
        self, conn: Conn, opinions: Sequence[OpinionSubmitted]
    ) -> list[OpinionSubmitted]:
        """The opinions as readers use them (same order): the sealed ones opened, with one
        query for all their keys; an opinion whose key is gone has the erased mark for
        its text and no address, point or attachments. Legacy and clear ones as they are."""
        keys = await self.found(conn, (o.sealed.key_id for o in opinions if o.sealed))
        return [opened_opinion(o, keys) for o in opinions]


async def shred_texts(conn: Conn, key_ids: Iterable[str]) -> int:
    """Delete the text keys of these matters (their opinions' ids): crypto-shredding of
    every copy of their sealed texts. How many were still there. In the caller's scope:
    another district's keys are not reached. Needs no vault key."""
    wanted = sorted(set(key_ids))
    if not wanted:
        return 0
    deleted = await conn.fetchval(
        """
        WITH deleted AS (
            DELETE FROM privacy.text_keys WHERE key_id = ANY($1::text[]) RETURNING 1
        )
        SELECT count(*) FROM deleted
        """,
        wanted,
    )
    return int(deleted or 0)


def opened_opinion(opinion: OpinionSubmitted, keys: Mapping[str, TextKey]) -> OpinionSubmitted:
    """``opinion`` with its sealed texts opened with ``keys`` (see
    :meth:`TextKeys.open_opinions`)."""
    if opinion.sealed is None:
        return opinion
    values = _opened_values(opinion.sealed, keys)
    location: Location = opinion.location.model_copy(
        update={
            "address": values.get("address"),
            "lat": values.get("lat"),
            "long": values.get("long"),
        }
    )
    return opinion.model_copy(
        update={
            "text": values.get("text") or ERASED,
            "location": location,
            "attachments": [_URL.validate_python(u) for u in values.get("attachments") or ()],
        }
    )


def opened_data(
    data: Mapping[str, Any], keys: Mapping[str, TextKey], event_type: str = "OpinionSubmitted"
) -> dict[str, Any]:
    """A stored ``OpinionSubmitted``'s (or a rating's, a withdrawal's) JSON, any version,
    with its sealed texts opened with ``keys``, or erased where the key is gone: for
    readers of raw events (the audit's timeline). Data without ``sealed`` is returned as
    it is."""
    sealed = data.get("sealed")
    if not sealed:
        return dict(data)
    if event_type in RESIDENT_TEXTS:
        field = RESIDENT_TEXTS[event_type]
        token = SealedText.model_validate(sealed)
        key = keys.get(token.key_id)
        return {**data, field: key.open(event_type, token)[field] if key else ERASED}
    values = _opened_values(SealedText.model_validate(sealed), keys)
    location = {
        **(data.get("location") or {}),
        **{name: values.get(name) for name in ("address", "lat", "long")},
    }
    return {
        **data,
        "text": values.get("text") or ERASED,
        "location": location,
        "attachments": list(values.get("attachments") or ()),
    }


def _opened_values(sealed: SealedText, keys: Mapping[str, TextKey]) -> dict[str, Any]:
    """An opinion's sealed values; only the erased mark for its text when its key is gone."""
    key = keys.get(sealed.key_id)
    return key.open(OPINION_FIELD, sealed) if key is not None else {"text": ERASED}
