"""Residents' rights under PIPL: what every service shares to answer them.

A resident may ask what is held about them (find, export) and to be forgotten; a district
keeps the texts of closed cases only for its retention period. Each service answers for
its own tables (``services/<name>/privacy.py``); the ``minqing privacy`` commands put the
answers together (``minqing/privacy.py``). What they share is here: the mark left where
a text was erased, the trace of every request (``privacy.rights_requests``), and the
districts' retention periods (``privacy.retention``). docs/privacy.md says where every
piece of a resident's data lives and how each request reaches it.

No personal data is written here: requests name pseudonymous subject ids, never the
phone number they were found by.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from eventkit.db import Conn

ERASED: Final = "〔已删除 / erased〕"
"""What stands where a text was erased (a column that may not be empty): by a resident's
request to be forgotten, or at the end of the district's retention period."""

TEXT_FIELDS: Final = (
    "message",
    "result",
    "reason",
    "answer",
    "title",
    "note",
    "comment",
    "action",
)
"""Keys of stored JSON (a notification's context, a webhook's case event, a tracking step)
holding free text about a case: a reply, a result, a reason, what a department did
(``DepartmentResponded.action``). Erased with the case's texts."""

LINK_FIELDS: Final = ("evidence_urls", "media_url")
"""Keys of stored JSON holding links to a case's evidence (staff's or a department's
photographs of the place, which may show the resident, their home or their words):
``CaseResolved.evidence_urls``, ``DepartmentResponded.evidence_urls`` inside a webhook's
case event, a tracking step's ``media_url``. Emptied with the case's texts."""

DEFAULT_RETENTION_DAYS: Final = 3 * 365
"""Retention of closed cases' texts when a district set none: three years."""

MIN_RETENTION_DAYS: Final = 30
MAX_RETENTION_DAYS: Final = 36500

RequestKind = Literal["find", "export", "forget", "retention", "reindex"]


@dataclass(frozen=True, slots=True)
class Erasure:
    """What one request erases: the resident's (or the closed cases') opinions and cases.

    ``forget``: the resident asked to be forgotten, so what reaches them goes too (the
    contact kept for notifications, messages still waiting); otherwise (retention) only
    the texts.
    """

    district_id: str
    opinion_ids: tuple[str, ...]
    case_ids: tuple[str, ...]
    subject_ids: tuple[str, ...] = ()
    forget: bool = False


def erased_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` with every free text of :data:`TEXT_FIELDS` replaced by :data:`ERASED`
    and every link of :data:`LINK_FIELDS` emptied (a list) or removed (a single link)."""
    return {key: _erased_item(key, item) for key, item in value.items()}


def _erased_item(key: str, item: Any) -> Any:
    if key in TEXT_FIELDS and isinstance(item, str) and item:
        return ERASED
    if key in LINK_FIELDS and isinstance(item, list):
        return []
    if key in LINK_FIELDS and isinstance(item, str):
        return None
    return item


async def record_request(
    conn: Conn,
    *,
    district_id: str,
    kind: RequestKind,
    requested_by: str,
    reason: str | None,
    subject_ids: Sequence[str],
    outcome: Mapping[str, Any],
    now: datetime,
) -> uuid.UUID:
    """Keep the trace of a request (in the caller's transaction, scoped to the district):
    who asked, why, for which subjects, what was done. Returns the request's id."""
    request_id = uuid.uuid4()
    await conn.execute(
        """
        INSERT INTO privacy.rights_requests (request_id, district_id, kind, requested_by,
            reason, subject_ids, outcome, requested_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        request_id,
        district_id,
        kind,
        requested_by,
        reason,
        list(subject_ids),
        dict(outcome),
        now,
    )
    return request_id


async def retention_days(conn: Conn, district_id: str) -> int:
    """The district's retention period for closed cases' texts, in days."""
    days = await conn.fetchval(
        "SELECT retention_days FROM privacy.retention WHERE district_id = $1", district_id
    )
    return int(days) if days is not None else DEFAULT_RETENTION_DAYS


async def set_retention_days(
    conn: Conn, district_id: str, days: int, *, updated_by: str, now: datetime
) -> None:
    """Set the district's retention period (:class:`ValueError` outside its bounds)."""
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise ValueError(
            f"保存期限须在 {MIN_RETENTION_DAYS} 至 {MAX_RETENTION_DAYS} 天之间 / the retention "
            f"period must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days"
        )
    await conn.execute(
        """
        INSERT INTO privacy.retention (district_id, retention_days, updated_at, updated_by)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (district_id) DO UPDATE
           SET retention_days = excluded.retention_days, updated_at = excluded.updated_at,
               updated_by = excluded.updated_by
        """,
        district_id,
        days,
        now,
        updated_by,
    )


async def forgotten_subjects(conn: Conn, district_id: str) -> list[str]:
    """The district's forgotten residents (``privacy.forgotten_subjects``): a retention
    run erases their copies again, in case a rebuild brought texts back."""
    rows = await conn.fetch(
        "SELECT subject_id FROM privacy.forgotten_subjects WHERE district_id = $1 "
        "ORDER BY subject_id",
        district_id,
    )
    return [row["subject_id"] for row in rows]


def cutoff(now: datetime, days: int) -> datetime:
    """Cases closed before this moment have outlived a retention period of ``days``."""
    return now - timedelta(days=days)
