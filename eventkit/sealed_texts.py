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

from contracts.base import Event
from contracts.cases import CaseEvent
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
            # A cipher per call: kept with the key it would cost 2.5 KB a key (OpenSSL's
            # context), and a rebuild keeps a key per case.
            plain = AESGCM(self.key).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(self.key_id, field)
            )
        except InvalidTag as exc:
            raise SealError("sealed text does not open with its key") from exc
        values = json.loads(plain.decode())  # str: json need not guess the encoding
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

    async def create_many(self, conn: Conn, districts: Mapping[str, str]) -> dict[str, TextKey]:
        """The keys of ``districts`` (key id → its district), in one statement: the ones
        stored before kept (a case's later texts), the others created now."""
        ids = sorted(districts)
        fresh = {key_id: new_key() for key_id in ids}
        rows = await conn.fetch(
            """
            WITH wanted AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
                           AS w(key_id, district_id, key)
            ), inserted AS (
                INSERT INTO privacy.text_keys (key_id, district_id, key)
                SELECT key_id, district_id, key FROM wanted
                ON CONFLICT (key_id) DO NOTHING
                RETURNING key_id, key
            )
            SELECT key_id, key FROM inserted
            UNION ALL
            SELECT t.key_id, t.key FROM privacy.text_keys t JOIN wanted USING (key_id)
            """,
            ids,
            [districts[i] for i in ids],
            [wrap_key(self._keys, _wrap_subject(i), fresh[i]) for i in ids],
        )
        keys = {
            row["key_id"]: TextKey(
                row["key_id"], unwrap_key(self._keys, _wrap_subject(row["key_id"]), row["key"])
            )
            for row in rows
        }
        for key_id in ids:  # stored by a transaction this statement did not see: read it
            if key_id not in keys:
                keys[key_id] = await self.create(conn, districts[key_id], key_id)
        return keys

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

    async def gone(self, conn: Conn, key_ids: Iterable[str]) -> list[str]:
        """Which of ``key_ids`` are no longer stored (deleted since they were found: a
        resident forgotten, or a retention period ended), in the caller's scope."""
        wanted = sorted(set(key_ids))
        if not wanted:
            return []
        rows = await conn.fetch(
            "SELECT k FROM unnest($1::text[]) AS k "
            "WHERE NOT EXISTS (SELECT 1 FROM privacy.text_keys t WHERE t.key_id = k)",
            wanted,
        )
        return [row[0] for row in rows]

    async def rewrap(self, pool: asyncpg.Pool) -> int:
        """Wrap every text key not wrapped with the current vault key with it (after a
        rotation, with ``minqing keys rewrap``, as the database owner); how many."""
        return await rewrap_keys(pool, self._keys, "text_keys", "key_id", bound_to=_wrap_subject)

    async def seal_opinion(self, conn: Conn, opinion: OpinionSubmitted) -> OpinionSubmitted:
        """``opinion`` as it is appended: its text, address, point, attachments and the
        answer given at the desk (当场办结, which may quote the resident) sealed with a new
        key of its own (created in ``conn``'s transaction), the clear fields emptied (the
        answer's holds :data:`SEALED_MARK`)."""
        key = await self.create(conn, opinion.district_id, opinion.opinion_id)
        location, spot = opinion.location, opinion.on_the_spot
        unplaced = location.model_copy(update={"address": None, "lat": None, "long": None})
        sealed = key.seal(
            OPINION_FIELD,
            {
                "text": opinion.text,
                "address": location.address,
                "lat": location.lat,
                "long": location.long,
                "attachments": [str(url) for url in opinion.attachments],
                "on_the_spot_answer": spot.answer if spot else None,
            },
        )
        return opinion.model_copy(
            update={
                "text": "",
                "location": unplaced,
                "attachments": [],
                "on_the_spot": spot.model_copy(update={"answer": SEALED_MARK}) if spot else None,
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
    spot = opinion.on_the_spot
    if spot is not None and spot.answer == SEALED_MARK:
        spot = spot.model_copy(update={"answer": values.get("on_the_spot_answer") or ERASED})
    return opinion.model_copy(
        update={
            "text": values.get("text") or ERASED,
            "location": location,
            "attachments": [_URL.validate_python(u) for u in values.get("attachments") or ()],
            "on_the_spot": spot,
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
    opened = {
        **data,
        "text": values.get("text") or ERASED,
        "location": location,
        "attachments": list(values.get("attachments") or ()),
    }
    spot = data.get("on_the_spot")
    if spot and spot.get("answer") == SEALED_MARK:
        opened["on_the_spot"] = {**spot, "answer": values.get("on_the_spot_answer") or ERASED}
    return opened


def _opened_values(sealed: SealedText, keys: Mapping[str, TextKey]) -> dict[str, Any]:
    """An opinion's sealed values; only the erased mark for its text when its key is gone."""
    key = keys.get(sealed.key_id)
    return key.open(OPINION_FIELD, sealed) if key is not None else {"text": ERASED}


# --- staff texts inside case events ---------------------------------------------------

CASE_TEXTS: Final[Mapping[str, tuple[str, ...]]] = {
    "CaseOpened": (
        "matched_keywords",
        "priority_keywords",
        "classifier_evidence",
        "urgency_evidence",
    ),
    "CaseClassified": ("reason",),
    "CaseTransferred": ("reason",),
    "CaseEscalated": ("reason",),
    "CaseReplied": ("message",),
    "CaseResolved": ("result",),
    "CaseClosed": ("note",),
    "CaseReopened": ("reason",),
    "CaseLinked": ("reason",),
    "CaseMerged": ("reason",),
    "CaseConvertedToSuggestion": ("title",),
    "DepartmentReportedIn": ("note",),
    "DepartmentResponded": ("action",),
    "DepartmentRated": ("comment",),
    "CallbackRecorded": ("comment",),
    "SuggestionAnswered": ("answer",),
}
"""The texts of a case's events sealed with the case's own text key (``key_id`` is the
case id, in the case's district): staff's replies, results (an answer at the desk is a
result too), notes, reasons (of a classification, a transfer, a whistle, a link, a
merger, a reopening), a suggestion's title, answers, departments' actions and
ratings, which may quote the resident; and the words and fragments of the resident's
text that the classifier and the urgency model matched (a case's opening). Each event's
``sealed`` holds them, bound to the event's type; the clear field keeps
:data:`SEALED_MARK` where the schema requires a text, None or an empty list otherwise."""

SEALED_MARK: Final = "〔已加密 / sealed〕"
"""What a required clear text field of a sealed case event holds on the wire."""

CaseText = TypeVar("CaseText", bound=CaseEvent)


def _clear_value(event: Event, field: str) -> Any:
    """What a sealed text field holds in clear: the mark for a required text, else empty."""
    info = type(event).model_fields[field]
    if not info.is_required():
        return [] if isinstance(getattr(event, field), list) else None
    return SEALED_MARK


def _has_text(event: Event, fields: Sequence[str]) -> bool:
    return any(getattr(event, f) not in (None, "", []) for f in fields)


async def seal_case_events(
    conn: Conn, texts: TextKeys, events: Sequence[CaseText]
) -> list[CaseText]:
    """``events`` as they are appended (same order): the texts of :data:`CASE_TEXTS`
    sealed with their case's key, created in ``conn``'s transaction when the case has
    none yet (one statement for all the cases of ``events``). Events with no text, and
    events sealed already, as they are."""
    todo = [
        e
        for e in events
        if e.event_type in CASE_TEXTS
        and getattr(e, "sealed", None) is None
        and _has_text(e, CASE_TEXTS[e.event_type])
    ]
    if not todo:
        return list(events)
    keys = await texts.create_many(conn, {e.case_id: e.district_id for e in todo})
    sealed: dict[int, CaseText] = {}
    for event in todo:
        fields = CASE_TEXTS[event.event_type]
        values = event.model_dump(mode="json", include=set(fields))
        token = keys[event.case_id].seal(event.event_type, values)
        sealed[id(event)] = event.model_copy(
            update={**{f: _clear_value(event, f) for f in fields}, "sealed": token}
        )
    return [sealed.get(id(e), e) for e in events]


def case_key_ids(items: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The text keys that (event type, stored data) pairs of case events are sealed with."""
    return [
        data["sealed"]["key_id"]
        for event_type, data in items
        if event_type in CASE_TEXTS and data.get("sealed")
    ]


def opened_case_data(
    event_type: str, data: Mapping[str, Any], keys: Mapping[str, TextKey]
) -> dict[str, Any]:
    """A stored case event's JSON (any version) with its sealed texts opened with
    ``keys``; where the key is gone, the erased mark (an empty list of matched words).
    Data of another type, or without ``sealed``, is returned as it is (a legacy event's
    texts are in clear)."""
    sealed = data.get("sealed")
    if not sealed or event_type not in CASE_TEXTS:
        return dict(data)
    token = SealedText.model_validate(sealed)
    key = keys.get(token.key_id)
    if key is None:
        return {
            **data,
            **{f: [] if isinstance(data.get(f), list) else ERASED for f in CASE_TEXTS[event_type]},
        }
    values = key.open(event_type, token)
    return {**data, **{f: values.get(f) for f in CASE_TEXTS[event_type]}}


async def open_case_data(
    conn: Conn, texts: TextKeys, items: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """The data of (event type, stored data) pairs of case events opened, in their order,
    with one look-up of their keys (none when nothing is sealed), in ``conn``'s scope."""
    wanted = case_key_ids(items)
    keys = await texts.found(conn, wanted) if wanted else {}
    return [opened_case_data(t, d, keys) if wanted else dict(d) for t, d in items]
