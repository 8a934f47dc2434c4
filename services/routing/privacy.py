"""What routing holds of a resident's matters, for their rights (docs/privacy.md): the
cases opened from their opinions (with the opinion's text and place, copied for the
staff), each case's steps as the store records them (the replies and results shown to
the resident), and which closed cases have outlived the district's retention period.

Routing knows no resident: a case names its opinion, and intake says whose it is; a case
continuing the matter in another district (a transfer) names the same opinion. Every
function runs in the caller's transaction, scoped to the district (``eventkit.db.scope``);
:func:`cases_of` follows a matter's transfers, each district in its own scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from eventkit.db import Conn, scope
from eventkit.identity import Role
from eventkit.privacy_rights import ERASED, TEXT_FIELDS, Erasure
from eventkit.sealed_texts import TextKeys, open_case_data, shred_texts
from eventkit.store import EventStore
from services.routing.case_state import CaseStatus

TRANSFERRED: Final = "CaseTransferred"
TRANSFERRED_OUT: Final = CaseStatus.TRANSFERRED_OUT.value

_SHOWN: Final = (
    *TEXT_FIELDS,
    "evidence_urls",
    "to_name",
    "to_level",
    "to_district_id",
    "satisfaction",
    "resolved",
    "withdrawn",
)
"""What a step of the export keeps of its event: what the resident was told or asked,
never who among the staff did it nor the representatives weighed for the case."""


async def is_district_admin(conn: Conn, district_id: str, person_id: str) -> bool:
    """Whether ``person_id`` holds an active district admin account in the district: the
    authority a request about a resident's data is made on."""
    found = await conn.fetchval(
        """
        SELECT true FROM routing.staff_accounts
         WHERE district_id = $1 AND person_id = $2 AND role = $3 AND status = 'active'
        """,
        district_id,
        person_id,
        Role.DISTRICT_ADMIN.value,
    )
    return bool(found)


async def _cases_here(conn: Conn, opinion_ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT case_id, district_id, opinion_id, status, is_open, category_code,
               station_code, opened_at, closed_at
          FROM routing.cases WHERE opinion_id = ANY($1::text[])
         ORDER BY opened_at, case_id
        """,
        list(opinion_ids),
    )
    return [dict(row) for row in rows]


async def transfers_of(conn: Conn, store: EventStore, case_ids: Sequence[str]) -> list[str]:
    """The districts these cases were transferred to (``CaseTransferred.to_district_id``),
    read from the cases' streams in the caller's district scope."""
    districts: list[str] = []
    for case_id in case_ids:
        for event in await store.read_stream(f"case-{case_id}", conn=conn):
            target = event.data.get("to_district_id") if event.event_type == TRANSFERRED else None
            if target and target not in districts:
                districts.append(str(target))
    return districts


async def cases_of(
    conn: Conn, store: EventStore, district_id: str, opinion_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The cases opened from these opinions of ``district_id`` (state and dates, no text),
    and the cases continuing them in every district they were transferred to, each with
    its ``district_id``: the district's own first, then each district in the order the
    transfers reached it.

    Each district is read in its own scope (``conn``'s transaction is scoped to each in
    turn, and left scoped to ``district_id``): a district is read only because a transfer
    of the matter names it (``CaseTransferred.to_district_id``). A case continuing the
    matter in another district carries the same opinion id.
    """
    cases: list[dict[str, Any]] = []
    pending, seen = [district_id], set[str]()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        await scope(conn, current)
        found = await _cases_here(conn, opinion_ids)
        cases.extend(found)
        moved = [c["case_id"] for c in found if c["status"] == TRANSFERRED_OUT]
        pending.extend(await transfers_of(conn, store, moved))
    if len(seen) > 1:
        await scope(conn, district_id)
    return cases


async def export(
    conn: Conn, store: EventStore, opinion_ids: Sequence[str], texts: TextKeys | None = None
) -> dict[str, Any]:
    """Each case of these opinions as routing keeps it (the opinion's text and place as
    copied for the staff, status, deadlines, the resident's rating) and its steps, in the
    caller's district scope (a transferred matter's cases in another district are
    exported in that district's scope). The steps' sealed texts are opened with the
    cases' keys (``texts``: the process's vault key by default)."""
    rows = await conn.fetch(
        """
        SELECT case_id, district_id, opinion_id, channel, text, community, address, lat,
               long, status, category_code, priority, station_code, response_due,
               resolution_due,
               satisfaction, feedback_resolved, opened_at, updated_at, closed_at
          FROM routing.cases WHERE opinion_id = ANY($1::text[])
         ORDER BY opened_at, case_id
        """,
        list(opinion_ids),
    )
    cases = []
    for row in rows:
        events = await store.read_stream(f"case-{row['case_id']}", conn=conn)
        opened = await open_case_data(
            conn, texts or TextKeys(), [(e.event_type, e.data) for e in events]
        )
        steps = [
            {
                "kind": e.event_type,
                "at": e.occurred_at,
                **{key: data[key] for key in _SHOWN if data.get(key) is not None},
            }
            for e, data in zip(events, opened, strict=True)
        ]
        cases.append({**dict(row), "steps": steps})
    return {"cases": cases}


async def erase(conn: Conn, erasure: Erasure) -> dict[str, int]:
    """Erase the opinion's text and place copied into these cases, the hash of the
    resident's tracking code (the code names them no more), the words matched in it by
    the classifier, the reasons given for linking them to other cases, and what
    departments answered on them (the action may quote the resident); and the cases' text
    keys, which shreds the staff's texts sealed inside their events (the store, Kafka,
    audit archives). Idempotent: counts changes."""
    ids = list(erasure.case_ids)
    cases = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE routing.cases
               SET text = $2, text_norm = '', address = NULL, lat = NULL, long = NULL,
                   matched_keywords = '{}', tracking_ref = NULL
             WHERE case_id = ANY($1::text[])
               AND (text <> $2 OR address IS NOT NULL OR lat IS NOT NULL
                    OR matched_keywords <> '{}' OR tracking_ref IS NOT NULL)
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        ids,
        ERASED,
    )
    links = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE routing.case_links SET reason = $2
             WHERE (case_id = ANY($1::text[]) OR related_case_id = ANY($1::text[]))
               AND reason <> $2
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        ids,
        ERASED,
    )
    actions = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE routing.whistles SET action = $2
             WHERE case_id = ANY($1::text[]) AND action IS NOT NULL AND action <> $2
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        ids,
        ERASED,
    )
    keys = await shred_texts(conn, ids)
    return {
        "cases": int(cases),
        "link_reasons": int(links),
        "department_actions": int(actions),
        "text_keys": keys,
    }


async def closed_before(conn: Conn, district_id: str, cutoff: datetime) -> list[tuple[str, str]]:
    """(case, opinion) of the district's closed cases (结项, merged, transferred away)
    whose whole matter closed before ``cutoff``: no case of the opinion is still open, in
    this district or in any district the matter was transferred to, and the last of them
    closed before ``cutoff`` (``routing.matter_closed_before``, migration 0006): their
    texts have outlived the retention period. Already erased ones too, so that a run
    after a rebuild erases again what the rebuild brought back."""
    rows = await conn.fetch(
        """
        SELECT c.case_id, c.opinion_id FROM routing.cases c
         WHERE c.district_id = $1 AND NOT c.is_open AND c.closed_at < $2
           AND routing.matter_closed_before(c.opinion_id, $2)
         ORDER BY c.closed_at, c.case_id
        """,
        district_id,
        cutoff,
    )
    return [(row["case_id"], row["opinion_id"]) for row in rows]


async def districts(conn: Conn) -> list[str]:
    """Every district routing knows (in a transaction scoped to all districts)."""
    rows = await conn.fetch("SELECT district_id FROM routing.districts ORDER BY district_id")
    return [row["district_id"] for row in rows]
