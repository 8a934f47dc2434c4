"""One case's whole history, for an auditor: who did what, when, and whether the record
of it holds.

A case's timeline gathers the streams of the matter: the case itself and the cases it was
transferred from or to (another district's case continues the work), the resident's
opinion (submission, withdrawal, feedback) and every notification about the case or the
opinion. Each event comes with its hash recomputed and its link to the previous version
checked, in the order it happened, in the district's time zone.

Residents' names and phone numbers stay sealed: the timeline shows the pseudonymous
subject id, and free text passes through the caller's mask (intake's, which masks phone
and ID numbers). :func:`open_personal_data` opens them for an operator who gives a
reason, and records that opening as an event (``PersonalDataOpened``) in the same
transaction that reads the keys: no opening without its record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts import Actor, ActorRole, PersonalDataOpened
from contracts.envelope import Envelope
from eventkit.audit.scoping import audit_scope
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, Conn, scope
from eventkit.privacy import PersonalDataVault, SealError, VaultKeyMissing
from eventkit.sealed_texts import (
    CASE_TEXTS,
    RESIDENT_TEXTS,
    TextKeys,
    opened_case_data,
    opened_data,
)
from eventkit.store import ANY_VERSION, EventStore

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
SEALED: Final = "【已封存 sealed】"
"""What a resident's name or phone (or an opinion's text, without the vault's key) shows
as while it stays sealed."""
PERSONAL_FIELDS: Final = {"name": "name_ciphertext", "phone": "phone_ciphertext"}
"""The fields of a ``SubmitterRef`` that an opening reveals, and their ciphertexts."""
FREE_TEXT: Final = frozenset(
    {"text", "message", "comment", "result", "reason", "note", "error", "title", "address"}
)
"""Fields where a resident (or staff quoting one) may have written a phone or ID number."""
_NOT_ESSENTIAL: Final = frozenset({"district_id", "occurred_at", "actor", "sealed", "legacy_clear"})

_STREAM_EVENTS = r"""
SELECT e.global_position, e.district_id, e.stream_id, e.stream_version,
       e.event_id::text AS event_id, e.event_type, e.data, e.occurred_at, e.recorded_at,
       sha256(e.prev_hash || eventstore.canonical_bytes(e)) = e.hash AS hash_ok,
       e.prev_hash = coalesce(lag(e.hash) OVER w, '\x{zero}'::bytea)
           AND e.stream_version = row_number() OVER w AS link_ok
  FROM eventstore.events e
 WHERE e.stream_id = ANY($1::text[])
WINDOW w AS (PARTITION BY e.stream_id ORDER BY e.stream_version)
 ORDER BY e.occurred_at, e.global_position
""".replace("{zero}", "00" * 32)

_NOTIFICATIONS = """
SELECT DISTINCT stream_id FROM eventstore.events
 WHERE category = 'notification'
   AND (data ->> 'case_id' = ANY($1::text[]) OR data ->> 'opinion_id' = ANY($2::text[]))
"""

_CASES_OF_OPINION = """
SELECT DISTINCT data ->> 'case_id' AS case_id FROM eventstore.events
 WHERE event_type = 'CaseOpened' AND data ->> 'opinion_id' = $1
"""

_TIMEZONE = """
SELECT data ->> 'timezone' FROM eventstore.events
 WHERE stream_id = $1 AND event_type = 'DistrictRegistered'
 ORDER BY stream_version DESC LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event of the matter, with its record checked."""

    occurred_at: datetime
    recorded_at: datetime
    district_id: str
    stream_id: str
    stream_version: int
    global_position: int
    event_id: str
    event_type: str
    actor_id: str
    actor_role: str
    data: Mapping[str, Any]
    hash_ok: bool
    """The stored hash matches the event's content."""
    link_ok: bool
    """The event is chained to the previous version of its stream."""


@dataclass(slots=True)
class CaseTimeline:
    """Every event of a case's matter, in the order it happened."""

    case_id: str
    district_id: str
    timezone: str
    case_ids: list[str]
    opinion_ids: list[str]
    streams: list[str]
    entries: list[TimelineEntry] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """Whether every hash and link holds."""
        return all(e.hash_ok and e.link_ok for e in self.entries)

    def submitters(self) -> dict[str, dict[str, str | None]]:
        """Subject id → the ciphertexts of their name and phone, from the opinions."""
        found: dict[str, dict[str, str | None]] = {}
        for entry in self.entries:
            submitter = entry.data.get("submitter")
            if isinstance(submitter, dict) and submitter.get("subject_id"):
                found[str(submitter["subject_id"])] = {
                    name: submitter.get(key) for name, key in PERSONAL_FIELDS.items()
                }
        return found


async def case_ids_of_opinion(conn: Conn, opinion_id: str) -> list[str]:
    """The cases opened from an opinion (usually one), in whichever district (a matter
    transferred to another district continues in a case there)."""
    async with audit_scope(conn, None):
        return [r["case_id"] for r in await conn.fetch(_CASES_OF_OPINION, opinion_id)]


async def case_timeline(conn: Conn, case_id: str) -> CaseTimeline | None:
    """The timeline of ``case_id``'s matter; None when no such case is stored.

    Read in the scope of every district: the matter is followed wherever it was
    transferred (a new case in the other district).
    """
    async with audit_scope(conn, None):
        return await _case_timeline(conn, case_id)


async def _case_timeline(conn: Conn, case_id: str) -> CaseTimeline | None:
    case_ids: list[str] = []
    opinion_ids: list[str] = []
    district_id: str | None = None
    pending = [case_id]
    while pending:
        current = pending.pop()
        if current in case_ids:
            continue
        rows = await conn.fetch(
            "SELECT district_id, data FROM eventstore.events WHERE stream_id = $1 "
            "ORDER BY stream_version",
            f"case-{current}",
        )
        if not rows:
            continue
        case_ids.append(current)
        if current == case_id:
            district_id = rows[0]["district_id"]
        for row in rows:
            data = row["data"]
            # Transfers to another district continue in a new case: follow both ways.
            for key in ("transferred_from_case_id", "to_case_id"):
                if data.get(key):
                    pending.append(str(data[key]))
            if data.get("opinion_id") and data["opinion_id"] not in opinion_ids:
                opinion_ids.append(str(data["opinion_id"]))
    if district_id is None:
        return None
    notifications = [
        r["stream_id"] for r in await conn.fetch(_NOTIFICATIONS, case_ids, opinion_ids)
    ]
    streams = [
        *(f"opinion-{o}" for o in opinion_ids),
        *(f"case-{c}" for c in case_ids),
        *sorted(notifications),
    ]
    zone = await conn.fetchval(_TIMEZONE, f"district-{district_id}") or DEFAULT_TIMEZONE
    timeline = CaseTimeline(
        case_id=case_id,
        district_id=district_id,
        timezone=zone,
        case_ids=case_ids,
        opinion_ids=opinion_ids,
        streams=streams,
    )
    tz = _zone(zone)
    for row in await conn.fetch(_STREAM_EVENTS, streams):
        actor = row["data"].get("actor") or {}
        timeline.entries.append(
            TimelineEntry(
                occurred_at=row["occurred_at"].astimezone(tz),
                recorded_at=row["recorded_at"].astimezone(tz),
                district_id=row["district_id"],
                stream_id=row["stream_id"],
                stream_version=row["stream_version"],
                global_position=row["global_position"],
                event_id=row["event_id"],
                event_type=row["event_type"],
                actor_id=str(actor.get("id", "?")),
                actor_role=str(actor.get("role", "?")),
                data=row["data"],
                hash_ok=row["hash_ok"],
                link_ok=row["link_ok"],
            )
        )
    timeline.entries = await opened_texts(conn, timeline.entries)
    return timeline


async def opened_texts(conn: Conn, entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """``entries`` with the residents' and the staff's sealed texts opened (one look-up
    of their keys: the opinions' and the cases'), the erased mark where a key was
    deleted; shown as sealed when this process lacks the vault key that wrapped them.
    The hashes were checked on the data as stored."""
    sealed = [e.data["sealed"]["key_id"] for e in entries if e.data.get("sealed")]
    if not sealed:
        return entries
    try:
        keys = await TextKeys().found(conn, sealed)
    except (VaultKeyMissing, SealError):
        return [replace(e, data=_still_sealed(e)) if e.data.get("sealed") else e for e in entries]
    return [replace(e, data=_opened(e, keys)) if e.data.get("sealed") else e for e in entries]


def _opened(entry: TimelineEntry, keys: Mapping[str, Any]) -> dict[str, Any]:
    if entry.event_type in CASE_TEXTS:
        return opened_case_data(entry.event_type, entry.data, keys)
    return opened_data(entry.data, keys, entry.event_type)


def _still_sealed(entry: TimelineEntry) -> dict[str, Any]:
    fields = CASE_TEXTS.get(entry.event_type) or (RESIDENT_TEXTS.get(entry.event_type, "text"),)
    return {**entry.data, **dict.fromkeys(fields, SEALED)}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


async def open_personal_data(
    store: EventStore,
    timeline: CaseTimeline,
    *,
    operator: str,
    reason: str,
    clock: Clock,
) -> dict[str, dict[str, str | None] | None]:
    """Open the residents' sealed names and phones of a timeline, for ``operator``.

    The opening is appended as ``PersonalDataOpened`` (stream ``audit-<district>.openings``)
    in the transaction that reads the keys: if it cannot be recorded, nothing is opened.
    Subject id → field → plaintext; None for a resident whose key was deleted (forgotten).
    """
    sealed = timeline.submitters()
    if not sealed:
        return {}
    event = PersonalDataOpened(
        district_id=timeline.district_id,
        occurred_at=clock(),
        actor=Actor(id=operator, role=ActorRole.AUDITOR),
        case_id=timeline.case_id,
        opinion_ids=timeline.opinion_ids,
        subject_ids=sorted(sealed),
        fields=sorted(PERSONAL_FIELDS),
        reason=reason,
    )
    vault = PersonalDataVault(store.pool)
    opened: dict[str, dict[str, str | None] | None] = {}
    async with store.pool.acquire() as conn, conn.transaction():
        # The residents of a matter transferred between districts are in either: the
        # operator opens them all, and the opening is recorded in the same transaction.
        await scope(conn, ALL_DISTRICTS)
        await store.append(
            event.stream_id, [Envelope.wrap(event)], expected_version=ANY_VERSION, conn=conn
        )
        for subject_id, ciphertexts in sorted(sealed.items()):
            opened[subject_id] = await vault.open(subject_id, ciphertexts, conn=conn)
    return opened


Mask = Callable[[str], str]


def essentials(
    data: Mapping[str, Any],
    *,
    mask: Mask,
    revealed: Mapping[str, Mapping[str, str | None] | None] | None = None,
) -> dict[str, Any]:
    """The fields of an event worth reading in an audit, personal data sealed.

    Everything but what every event carries (district, time, actor); the resident's
    reference reduced to their subject id with name and phone sealed (or opened, when
    ``revealed`` has them); free text through ``mask`` unless personal data was opened;
    a scored candidate list reduced to who won and by how much.
    """
    shown: dict[str, Any] = {}
    for key, value in data.items():
        if key in _NOT_ESSENTIAL or value in (None, [], {}):
            continue
        if key == "submitter" and isinstance(value, dict):
            shown[key] = _submitter(value, revealed)
        elif key == "candidates" and isinstance(value, list):
            shown[key] = [
                f"{c.get('representative_id')}={c.get('score')}"
                for c in value
                if isinstance(c, dict)
            ]
        elif revealed is None:
            shown[key] = _masked(key, value, mask)
        else:
            shown[key] = value
    return shown


def _masked(key: str, value: Any, mask: Mask) -> Any:
    if isinstance(value, str):
        return mask(value) if key in FREE_TEXT else value
    if isinstance(value, dict):
        return {k: _masked(k, v, mask) for k, v in value.items()}
    return value


def _submitter(
    value: Mapping[str, Any], revealed: Mapping[str, Mapping[str, str | None] | None] | None
) -> dict[str, Any]:
    subject_id = str(value.get("subject_id"))
    shown: dict[str, Any] = {"subject_id": subject_id}
    opened = revealed.get(subject_id) if revealed is not None else None
    for name, key in PERSONAL_FIELDS.items():
        if not value.get(key):
            continue
        if revealed is not None and subject_id in revealed and opened is None:
            shown[name] = "【已删除 erased】"
        elif opened is not None:
            shown[name] = opened.get(name)
        else:
            shown[name] = SEALED
    if value.get("contact_consent"):
        shown["contact_consent"] = True
    return shown


def timeline_json(
    timeline: CaseTimeline,
    *,
    mask: Mask,
    revealed: Mapping[str, Mapping[str, str | None] | None] | None = None,
) -> dict[str, Any]:
    """The timeline as a JSON document."""
    return {
        "case_id": timeline.case_id,
        "district_id": timeline.district_id,
        "timezone": timeline.timezone,
        "case_ids": timeline.case_ids,
        "opinion_ids": timeline.opinion_ids,
        "streams": timeline.streams,
        "intact": timeline.intact,
        "personal_data_opened": revealed is not None,
        "events": [
            {
                "time": e.occurred_at.isoformat(),
                "recorded_at": e.recorded_at.isoformat(),
                "district_id": e.district_id,
                "stream_id": e.stream_id,
                "stream_version": e.stream_version,
                "global_position": e.global_position,
                "event_id": e.event_id,
                "event_type": e.event_type,
                "actor": {"id": e.actor_id, "role": e.actor_role},
                "fields": essentials(e.data, mask=mask, revealed=revealed),
                "hash_ok": e.hash_ok,
                "link_ok": e.link_ok,
            }
            for e in timeline.entries
        ],
    }


def timeline_lines(
    timeline: CaseTimeline,
    *,
    mask: Mask,
    revealed: Mapping[str, Mapping[str, str | None] | None] | None = None,
) -> Iterable[str]:
    """The timeline as lines of text for a terminal."""
    yield (
        f"案件审计 / case audit: {timeline.case_id} "
        f"(区 district {timeline.district_id}, 时区 time zone {timeline.timezone})"
    )
    yield f"相关的流 / streams: {', '.join(timeline.streams)}"
    for e in timeline.entries:
        check = "✓" if e.hash_ok and e.link_ok else "✗ 哈希不符 / hash BROKEN"
        yield (
            f"{e.occurred_at:%Y-%m-%d %H:%M:%S%z}  {e.event_type}  "
            f"{e.actor_role}:{e.actor_id}  [{e.stream_id} v{e.stream_version}]  {check}"
        )
        fields = essentials(e.data, mask=mask, revealed=revealed)
        if fields:
            yield "    " + "  ".join(f"{k}={_show(v)}" for k, v in fields.items())
    broken = sum(1 for e in timeline.entries if not (e.hash_ok and e.link_ok))
    total = len(timeline.entries)
    if broken:
        yield f"哈希核验 / hashes: {broken} of {total} BROKEN"
    else:
        yield f"哈希核验 / hashes: all {total} intact"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)
