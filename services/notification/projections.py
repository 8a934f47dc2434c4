"""What the rules need to know, kept from events in schema ``notification``.

Directory events give districts (time zone, category names), streets (supervisors),
stations (liaison officers, head) and representatives' names; ``OpinionSubmitted`` gives
the resident as intake sealed them (ciphertexts only); case events give each case's
station, representative and priority. Written by the consumer, behind its version gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from contracts.base import Event
from contracts.cases import (
    CaseAssigned,
    CaseClassified,
    CaseConvertedToSuggestion,
    CaseEvent,
    CaseOpened,
    CaseReopened,
    CaseTransferred,
)
from contracts.directory import (
    DepartmentRegistered,
    DepartmentRetired,
    DistrictRegistered,
    RepresentativeRegistered,
    StationMoved,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    TaxonomyPublished,
)
from contracts.intake import OpinionSubmitted
from eventkit.db import Conn
from services.notification.rules import CaseFacts, ResidentFacts


async def project_directory(conn: Conn, event: Event) -> None:
    """Keep what a directory event says that the rules and the messages use."""
    match event:
        case DistrictRegistered():
            await conn.execute(
                "INSERT INTO notification.districts (district_id, name_zh, timezone) "
                "VALUES ($1, $2, $3) ON CONFLICT (district_id) DO UPDATE "
                "SET name_zh = excluded.name_zh, timezone = excluded.timezone",
                event.district_id,
                event.name_zh,
                event.timezone,
            )
        case TaxonomyPublished():
            names = {c.code: [c.name_zh, c.name_en or c.name_zh] for c in event.categories}
            await conn.execute(
                "INSERT INTO notification.districts (district_id, name_zh, categories) "
                "VALUES ($1, $1, $2) ON CONFLICT (district_id) "
                "DO UPDATE SET categories = excluded.categories",
                event.district_id,
                names,
            )
        case StreetRegistered():
            await conn.execute(
                "INSERT INTO notification.streets (district_id, street_code, name_zh, supervisors)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (district_id, street_code) DO UPDATE "
                "SET name_zh = excluded.name_zh, supervisors = excluded.supervisors",
                event.district_id,
                event.street_code,
                event.name_zh,
                list(event.supervisors),
            )
        case StationRegistered():
            await conn.execute(
                """
                INSERT INTO notification.stations (district_id, station_code, name_zh,
                    street_code, head_representative_id, liaison_officers, active)
                VALUES ($1, $2, $3, $4, $5, $6, true)
                ON CONFLICT (district_id, station_code) DO UPDATE
                SET name_zh = excluded.name_zh, street_code = excluded.street_code,
                    head_representative_id = excluded.head_representative_id,
                    liaison_officers = excluded.liaison_officers, active = true
                """,
                event.district_id,
                event.station_code,
                event.name_zh,
                event.street_code,
                event.head_representative_id,
                list(event.liaison_officers),
            )
        case StationMoved():
            await conn.execute(
                "UPDATE notification.stations SET street_code = $3 "
                "WHERE district_id = $1 AND station_code = $2",
                event.district_id,
                event.station_code,
                event.street_code,
            )
        case StationRetired():
            await conn.execute(
                "UPDATE notification.stations SET active = false "
                "WHERE district_id = $1 AND station_code = $2",
                event.district_id,
                event.station_code,
            )
        case DepartmentRegistered():
            await conn.execute(
                "INSERT INTO notification.departments (district_id, department_code, name_zh,"
                " duty_staff, active) VALUES ($1, $2, $3, $4, true)"
                " ON CONFLICT (district_id, department_code) DO UPDATE"
                " SET name_zh = excluded.name_zh, duty_staff = excluded.duty_staff, active = true",
                event.district_id,
                event.department_code,
                event.name_zh,
                list(event.duty_staff),
            )
        case DepartmentRetired():
            await conn.execute(
                "UPDATE notification.departments SET active = false "
                "WHERE district_id = $1 AND department_code = $2",
                event.district_id,
                event.department_code,
            )
        case RepresentativeRegistered():
            await conn.execute(
                "INSERT INTO notification.representatives (district_id, representative_id,"
                " name_zh) VALUES ($1, $2, $3) ON CONFLICT (district_id, representative_id)"
                " DO UPDATE SET name_zh = excluded.name_zh",
                event.district_id,
                event.representative_id,
                event.name_zh,
            )


async def record_opinion(conn: Conn, opinion: OpinionSubmitted) -> None:
    """Keep the resident of an opinion as intake sealed them (ciphertexts only)."""
    await record_opinions(conn, [opinion])


def resident_of(opinion: OpinionSubmitted) -> ResidentFacts:
    """Whether and how the resident of ``opinion`` may be told (from the event itself)."""
    s = opinion.submitter
    return ResidentFacts(
        subject_id=s.subject_id if s else None,
        reachable=bool(s and s.phone_ciphertext and s.tracking_code_ciphertext),
        consent=bool(s and s.contact_consent),
        channel=opinion.channel.value,
    )


async def resident(conn: Conn, opinion_id: str) -> ResidentFacts | None:
    """The resident of an opinion as kept (None when the opinion was not seen yet)."""
    return (await residents(conn, [opinion_id])).get(opinion_id)


def _resident(row: Any) -> ResidentFacts:
    return ResidentFacts(
        subject_id=row["subject_id"],
        reachable=bool(row["phone_ciphertext"] and row["tracking_code_ciphertext"]),
        consent=row["contact_consent"],
        channel=row["channel"],
    )


@dataclass(frozen=True)
class CaseRow:
    """A case as kept in ``notification.cases``: what the rules and messages read."""

    case_id: str
    district_id: str
    opinion_id: str
    priority: str
    opened_at: datetime
    category_code: str | None = None
    station_code: str | None = None
    representative_id: str | None = None
    queue: str | None = None
    community: str | None = None
    response_due: datetime | None = None
    resolution_due: datetime | None = None

    def facts(self) -> CaseFacts:
        """The case as the rules see it."""
        return CaseFacts(
            case_id=self.case_id,
            opinion_id=self.opinion_id,
            priority=self.priority,
            category_code=self.category_code,
            station_code=self.station_code,
            representative_id=self.representative_id,
            assigned_before=self.queue is not None,
            community=self.community,
            response_due=self.response_due,
            resolution_due=self.resolution_due,
        )


def evolve_case(case: CaseRow | None, event: CaseEvent) -> CaseRow | None:
    """The case after ``event`` (pure: a batch folds its events in memory and writes the
    outcome once). A case never opened here stays unknown."""
    if isinstance(event, CaseOpened):
        if case is not None:
            return case  # opened once: a second opening changes nothing
        return CaseRow(
            case_id=event.case_id,
            district_id=event.district_id,
            opinion_id=event.opinion_id,
            priority=event.priority.value,
            opened_at=event.occurred_at,
            category_code=event.category_code,
            community=event.community,
            response_due=event.response_due,
            resolution_due=event.resolution_due,
        )
    if case is None:
        return None
    match event:
        case CaseAssigned():
            return replace(
                case,
                station_code=event.station_code,
                representative_id=event.representative_id,
                queue=event.queue,
            )
        case CaseTransferred() if event.to_district_id is None:
            return replace(
                case,
                representative_id=event.to_representative_id,
                station_code=event.to_station_code or case.station_code,
                queue="representative" if event.to_representative_id else "liaison",
            )
        case CaseClassified():
            return replace(
                case,
                category_code=event.category_code,
                priority=getattr(event.priority, "value", event.priority),
                response_due=event.response_due,
                resolution_due=event.resolution_due,
            )
        case CaseReopened():
            return replace(
                case,
                resolution_due=event.resolution_due,
                representative_id=event.representative_id or case.representative_id,
            )
        case CaseConvertedToSuggestion():
            return replace(case, representative_id=event.representative_id)
    return case


_CASE_COLUMNS = (
    "case_id",
    "district_id",
    "opinion_id",
    "category_code",
    "priority",
    "station_code",
    "representative_id",
    "queue",
    "community",
    "response_due",
    "resolution_due",
    "opened_at",
)
_CASE_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
)


async def cases(conn: Conn, case_ids: Iterable[str]) -> dict[str, CaseRow]:
    """The kept cases among ``case_ids`` (one query)."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    rows = await conn.fetch(
        f"SELECT {', '.join(_CASE_COLUMNS)} FROM notification.cases WHERE case_id = ANY($1)",
        ids,
    )
    return {r["case_id"]: CaseRow(**dict(r.items())) for r in rows}


async def save_cases(conn: Conn, changed: Sequence[CaseRow]) -> None:
    """Write the cases a batch opened or changed (one statement)."""
    if not changed:
        return
    columns = ", ".join(_CASE_COLUMNS)
    arrays = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_CASE_TYPES))
    updates = ", ".join(f"{c} = excluded.{c}" for c in _CASE_COLUMNS[3:11])
    await conn.execute(
        f"""
        INSERT INTO notification.cases ({columns})
        SELECT * FROM unnest({arrays})
        ON CONFLICT (case_id) DO UPDATE SET {updates}
        """,
        *([getattr(c, name) for c in changed] for name in _CASE_COLUMNS),
    )


async def record_opinions(conn: Conn, opinions: Sequence[OpinionSubmitted]) -> None:
    """Keep the residents of ``opinions`` as intake sealed them (one statement)."""
    if not opinions:
        return
    subs = [o.submitter for o in opinions]
    await conn.execute(
        """
        INSERT INTO notification.opinions (opinion_id, district_id, channel, subject_id,
            phone_ciphertext, tracking_code_ciphertext, contact_consent, submitted_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::bool[], $8::timestamptz[])
        ON CONFLICT (opinion_id) DO NOTHING
        """,
        [o.opinion_id for o in opinions],
        [o.district_id for o in opinions],
        [o.channel.value for o in opinions],
        [s.subject_id if s else None for s in subs],
        [s.phone_ciphertext if s else None for s in subs],
        [s.tracking_code_ciphertext if s else None for s in subs],
        [bool(s and s.contact_consent) for s in subs],
        [o.occurred_at for o in opinions],
    )


async def residents(conn: Conn, opinion_ids: Iterable[str]) -> dict[str, ResidentFacts]:
    """The kept residents of ``opinion_ids`` (one query; an opinion not seen is absent)."""
    ids = sorted(set(opinion_ids))
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT opinion_id, subject_id, phone_ciphertext, tracking_code_ciphertext,"
        " contact_consent, channel FROM notification.opinions WHERE opinion_id = ANY($1)",
        ids,
    )
    return {r["opinion_id"]: _resident(r) for r in rows}
