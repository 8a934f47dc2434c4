"""What the rules need to know, kept from events in schema ``notification``.

Directory events give districts (time zone, category names), streets (supervisors),
stations (liaison officers, head) and representatives' names; ``OpinionSubmitted`` gives
the resident as intake sealed them (ciphertexts only); case events give each case's
station, representative and priority. Written by the consumer, behind its version gate.
"""

from __future__ import annotations

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
from services.notification.rules import CaseFacts, ResidentFacts, StationFacts


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


async def department_staff(conn: Conn, district_id: str, code: str) -> tuple[str, ...]:
    """Whom a registered department is reached through (its duty staff), when active."""
    staff = await conn.fetchval(
        "SELECT duty_staff FROM notification.departments "
        "WHERE district_id = $1 AND department_code = $2 AND active",
        district_id,
        code,
    )
    return tuple(staff or ())


async def record_opinion(conn: Conn, opinion: OpinionSubmitted) -> None:
    """Keep the resident of an opinion as intake sealed them (ciphertexts only)."""
    submitter = opinion.submitter
    await conn.execute(
        """
        INSERT INTO notification.opinions (opinion_id, district_id, channel, subject_id,
            phone_ciphertext, tracking_code_ciphertext, contact_consent, submitted_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (opinion_id) DO NOTHING
        """,
        opinion.opinion_id,
        opinion.district_id,
        opinion.channel.value,
        submitter.subject_id if submitter else None,
        submitter.phone_ciphertext if submitter else None,
        submitter.tracking_code_ciphertext if submitter else None,
        bool(submitter and submitter.contact_consent),
        opinion.occurred_at,
    )


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
    row = await conn.fetchrow(
        "SELECT subject_id, phone_ciphertext, tracking_code_ciphertext, contact_consent, channel"
        " FROM notification.opinions WHERE opinion_id = $1",
        opinion_id,
    )
    if row is None:
        return None
    return ResidentFacts(
        subject_id=row["subject_id"],
        reachable=bool(row["phone_ciphertext"] and row["tracking_code_ciphertext"]),
        consent=row["contact_consent"],
        channel=row["channel"],
    )


async def case_and_station(
    conn: Conn, district_id: str, case_id: str, station_code: str | None
) -> tuple[CaseFacts | None, StationFacts | None]:
    """The case as kept before the event at hand, and the station (``station_code``, else
    the case's), in one query."""
    row = await conn.fetchrow(
        """
        SELECT c.*, s.station_code AS s_code, s.name_zh AS s_name, s.street_code AS s_street,
               s.head_representative_id AS s_head, s.liaison_officers AS s_officers
          FROM (SELECT 1) one
          LEFT JOIN notification.cases c ON c.case_id = $2
          LEFT JOIN notification.stations s
                 ON s.district_id = $1 AND s.station_code = coalesce($3, c.station_code)
        """,
        district_id,
        case_id,
        station_code,
    )
    assert row is not None
    case = _case(row) if row["case_id"] is not None else None
    station = (
        StationFacts(
            code=row["s_code"],
            name=row["s_name"],
            street_code=row["s_street"],
            head_representative_id=row["s_head"],
            liaison_officers=tuple(row["s_officers"]),
        )
        if row["s_code"] is not None
        else None
    )
    return case, station


async def case_facts(conn: Conn, case_id: str) -> CaseFacts | None:
    """The case as kept before the event at hand."""
    row = await conn.fetchrow("SELECT * FROM notification.cases WHERE case_id = $1", case_id)
    return _case(row) if row is not None else None


def _case(row: Any) -> CaseFacts:
    return CaseFacts(
        case_id=row["case_id"],
        opinion_id=row["opinion_id"],
        priority=row["priority"],
        category_code=row["category_code"],
        station_code=row["station_code"],
        representative_id=row["representative_id"],
        assigned_before=row["queue"] is not None,
        community=row["community"],
        response_due=row["response_due"],
        resolution_due=row["resolution_due"],
    )


async def record_case(conn: Conn, event: CaseEvent) -> None:
    """Keep what a case event changes of the facts the rules read."""
    match event:
        case CaseOpened():
            await conn.execute(
                "INSERT INTO notification.cases (case_id, district_id, opinion_id,"
                " category_code, priority, community, response_due, resolution_due, opened_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (case_id) DO NOTHING",
                event.case_id,
                event.district_id,
                event.opinion_id,
                event.category_code,
                event.priority.value,
                event.community,
                event.response_due,
                event.resolution_due,
                event.occurred_at,
            )
        case CaseAssigned():
            await _update(
                conn,
                event.case_id,
                station_code=event.station_code,
                representative_id=event.representative_id,
                queue=event.queue,
            )
        case CaseTransferred() if event.to_district_id is None:
            changes: dict[str, Any] = {"representative_id": event.to_representative_id}
            if event.to_station_code:
                changes["station_code"] = event.to_station_code
            changes["queue"] = "representative" if event.to_representative_id else "liaison"
            await _update(conn, event.case_id, **changes)
        case CaseClassified():
            await _update(
                conn,
                event.case_id,
                category_code=event.category_code,
                priority=event.priority,
                response_due=event.response_due,
                resolution_due=event.resolution_due,
            )
        case CaseReopened():
            reopened: dict[str, Any] = {"resolution_due": event.resolution_due}
            if event.representative_id:
                reopened["representative_id"] = event.representative_id
            await _update(conn, event.case_id, **reopened)
        case CaseConvertedToSuggestion():
            await _update(conn, event.case_id, representative_id=event.representative_id)


async def _update(conn: Conn, case_id: str, **columns: Any) -> None:
    names = list(columns)
    sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    values = [getattr(v, "value", v) for v in columns.values()]
    await conn.execute(f"UPDATE notification.cases SET {sets} WHERE case_id = $1", case_id, *values)


async def station(conn: Conn, district_id: str, code: str | None) -> StationFacts | None:
    """A station's staff (None when unknown)."""
    if code is None:
        return None
    row = await conn.fetchrow(
        "SELECT * FROM notification.stations WHERE district_id = $1 AND station_code = $2",
        district_id,
        code,
    )
    if row is None:
        return None
    return StationFacts(
        code=row["station_code"],
        name=row["name_zh"],
        street_code=row["street_code"],
        head_representative_id=row["head_representative_id"],
        liaison_officers=tuple(row["liaison_officers"]),
    )


async def street_supervisors(conn: Conn, district_id: str, street: str | None) -> tuple[str, ...]:
    """The supervisors of a street's working committee."""
    if street is None:
        return ()
    found = await conn.fetchval(
        "SELECT supervisors FROM notification.streets WHERE district_id = $1 AND street_code = $2",
        district_id,
        street,
    )
    return tuple(found or ())
