"""The liaison work's read models in schema ``routing`` (migration ``0003_liaison.sql``),
written in the transaction of their events: departments, staff members, spokespersons,
activities, reception days cancelled or moved and the rules they are planned from, and
the whistles of cases with what each summoned body did.

The directory's events come through :func:`apply_liaison` (called by
:func:`services.routing.directory_projection.project_directory`); a case's whistles are
written from its state with its row (:func:`save_whistles`), never behind it.
"""

from __future__ import annotations

import json

from contracts.base import Actor, ActorRole, Event
from contracts.directory import (
    ActivityRecorded,
    DepartmentRegistered,
    DepartmentRetired,
    ReceptionDayCancelled,
    ReceptionDayMoved,
    ReceptionRulesPublished,
    SpokespersonRegistered,
    SpokespersonRetired,
    StaffMemberRegistered,
    StaffMemberRetired,
)
from eventkit.db import Conn
from services.routing.case_state import CaseState


async def apply_liaison(conn: Conn, event: Event) -> None:
    """Apply one liaison event of the directory to its table."""
    d, at = event.district_id, event.occurred_at
    match event:
        case DepartmentRegistered():
            await conn.execute(
                """
                INSERT INTO routing.departments (district_id, department_code, name_zh,
                    duty_staff, report_in, respond_in, categories, active, registered_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8)
                ON CONFLICT (district_id, department_code) DO UPDATE SET
                    name_zh = excluded.name_zh, duty_staff = excluded.duty_staff,
                    report_in = excluded.report_in, respond_in = excluded.respond_in,
                    categories = excluded.categories, active = true,
                    retired_at = NULL, retired_reason = NULL
                """,
                d,
                event.department_code,
                event.name_zh,
                event.duty_staff,
                event.report_in,
                event.respond_in,
                event.categories,
                at,
            )
        case DepartmentRetired():
            await conn.execute(
                "UPDATE routing.departments SET active = false, retired_at = $3, "
                "retired_reason = $4 WHERE district_id = $1 AND department_code = $2",
                d,
                event.department_code,
                at,
                event.reason,
            )
        case StaffMemberRegistered():
            await conn.execute(
                """
                INSERT INTO routing.staff_members (district_id, staff_id, role, name_zh,
                    street_code, communities, department_code, active, registered_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8)
                ON CONFLICT (district_id, staff_id) DO UPDATE SET role = excluded.role,
                    name_zh = excluded.name_zh, street_code = excluded.street_code,
                    communities = excluded.communities,
                    department_code = excluded.department_code, active = true,
                    retired_at = NULL, retired_reason = NULL
                """,
                d,
                event.staff_id,
                event.role.value,
                event.name_zh,
                event.street_code,
                event.communities,
                event.department_code,
                at,
            )
        case StaffMemberRetired():
            await conn.execute(
                "UPDATE routing.staff_members SET active = false, retired_at = $3, "
                "retired_reason = $4 WHERE district_id = $1 AND staff_id = $2",
                d,
                event.staff_id,
                at,
                event.reason,
            )
        case SpokespersonRegistered():
            await conn.execute(
                """
                INSERT INTO routing.spokespersons (district_id, spokesperson_id, station_code,
                    name_zh, community, appointed_on, active, registered_at)
                VALUES ($1, $2, $3, $4, $5, $6, true, $7)
                ON CONFLICT (district_id, spokesperson_id) DO UPDATE SET
                    station_code = excluded.station_code, name_zh = excluded.name_zh,
                    community = excluded.community, appointed_on = excluded.appointed_on,
                    active = true, retired_at = NULL, retired_reason = NULL
                """,
                d,
                event.spokesperson_id,
                event.station_code,
                event.name_zh,
                event.community,
                event.appointed_on,
                at,
            )
        case SpokespersonRetired():
            await conn.execute(
                "UPDATE routing.spokespersons SET active = false, retired_at = $4, "
                "retired_reason = $5 WHERE district_id = $1 AND spokesperson_id = $2 "
                "AND station_code = $3",
                d,
                event.spokesperson_id,
                event.station_code,
                at,
                event.reason,
            )
        case ActivityRecorded():
            await conn.execute(
                """
                INSERT INTO routing.activities (district_id, activity_id, station_code, kind,
                    title, held_on, starts_at, ends_at, representatives, spokespersons,
                    residents_met, opinions_taken, reception_day, location, summary,
                    recorded_at, recorded_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16, $17)
                ON CONFLICT (district_id, activity_id) DO UPDATE SET
                    station_code = excluded.station_code, kind = excluded.kind,
                    title = excluded.title, held_on = excluded.held_on,
                    starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                    representatives = excluded.representatives,
                    spokespersons = excluded.spokespersons,
                    residents_met = excluded.residents_met,
                    opinions_taken = excluded.opinions_taken,
                    reception_day = excluded.reception_day, location = excluded.location,
                    summary = excluded.summary, recorded_at = excluded.recorded_at,
                    recorded_by = excluded.recorded_by
                """,
                d,
                event.activity_id,
                event.station_code,
                event.kind.value,
                event.title,
                event.held_on,
                event.starts_at,
                event.ends_at,
                event.representatives,
                event.spokespersons,
                event.residents_met,
                event.opinions_taken,
                event.reception_day,
                event.location,
                event.summary,
                at,
                event.actor.id,
            )
        case ReceptionRulesPublished():
            await conn.execute(
                "UPDATE routing.representatives SET reception_rules = $3 "
                "WHERE district_id = $1 AND representative_id = $2",
                d,
                event.representative_id,
                json.dumps([r.model_dump(mode="json") for r in event.rules]),
            )
        case ReceptionDayCancelled():
            await conn.execute(
                "UPDATE routing.reception_days SET status = 'cancelled', reason = $5 "
                "WHERE district_id = $1 AND representative_id = $2 AND station_code = $3 "
                "AND day = $4",
                d,
                event.representative_id,
                event.station_code,
                event.day,
                event.reason,
            )
        case ReceptionDayMoved():
            await conn.execute(
                "UPDATE routing.reception_days SET status = 'moved', moved_to = $5, reason = $6 "
                "WHERE district_id = $1 AND representative_id = $2 AND station_code = $3 "
                "AND day = $4",
                d,
                event.representative_id,
                event.station_code,
                event.day,
                event.to_day,
                event.reason,
            )
            await conn.execute(
                """
                INSERT INTO routing.reception_days (district_id, representative_id,
                    station_code, day, starts_at, ends_at, status, moved_from, reason)
                SELECT $1, $2, $3, $5, coalesce($6, o.starts_at), coalesce($7, o.ends_at),
                       'scheduled', $4, $8
                  FROM (SELECT NULL) x
                  LEFT JOIN routing.reception_days o ON o.district_id = $1
                   AND o.representative_id = $2 AND o.station_code = $3 AND o.day = $4
                ON CONFLICT (district_id, representative_id, station_code, day) DO UPDATE SET
                    starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                    status = 'scheduled', moved_from = excluded.moved_from,
                    reason = excluded.reason
                """,
                d,
                event.representative_id,
                event.station_code,
                event.day,
                event.to_day,
                event.starts_at,
                event.ends_at,
                event.reason,
            )


async def save_whistles(conn: Conn, state: CaseState) -> None:
    """Write the case's whistles as its state has them (never behind a later state)."""
    if not state.whistles:
        return
    w = state.whistles
    await conn.execute(
        """
        INSERT INTO routing.whistles (case_id, seq, district_id, to_level, to_name,
            department_code, whistled_at, whistled_by, report_due, due, reported_at,
            reported_by, responded_at, responded_by, action, rating, rated_at, rated_by,
            version)
        SELECT $1, u.seq, $2, u.to_level, u.to_name, u.department_code, u.whistled_at,
               u.whistled_by, u.report_due, u.due, u.reported_at, u.reported_by,
               u.responded_at, u.responded_by, u.action, u.rating, u.rated_at, u.rated_by, $3
          FROM unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
                      $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
                      $13::text[], $14::timestamptz[], $15::text[], $16::text[],
                      $17::smallint[], $18::timestamptz[], $19::text[])
               AS u(seq, to_level, to_name, department_code, whistled_at, whistled_by,
                    report_due, due, reported_at, reported_by, responded_at, responded_by,
                    action, rating, rated_at, rated_by)
        ON CONFLICT (case_id, seq) DO UPDATE SET
            district_id = excluded.district_id, to_level = excluded.to_level,
            to_name = excluded.to_name, department_code = excluded.department_code,
            whistled_at = excluded.whistled_at, whistled_by = excluded.whistled_by,
            report_due = excluded.report_due, due = excluded.due,
            reported_at = excluded.reported_at, reported_by = excluded.reported_by,
            responded_at = excluded.responded_at, responded_by = excluded.responded_by,
            action = excluded.action, rating = excluded.rating, rated_at = excluded.rated_at,
            rated_by = excluded.rated_by, version = excluded.version
        WHERE routing.whistles.version <= excluded.version
        """,
        state.case_id,
        state.district_id,
        state.version,
        [x.seq for x in w],
        [x.to_level for x in w],
        [x.to_name for x in w],
        [x.department_code for x in w],
        [x.whistled_at for x in w],
        [x.whistled_by for x in w],
        [x.report_due for x in w],
        [x.due for x in w],
        [x.reported_at for x in w],
        [x.reported_by for x in w],
        [x.responded_at for x in w],
        [x.responded_by for x in w],
        [x.action for x in w],
        [x.rating for x in w],
        [x.rated_at for x in w],
        [x.rated_by for x in w],
    )


async def recorded_activities(
    conn: Conn, district_id: str, activity_ids: list[str]
) -> dict[str, ActivityRecorded]:
    """The activities of ``activity_ids`` as recorded (to import only what changed)."""
    if not activity_ids:
        return {}
    rows = await conn.fetch(
        "SELECT * FROM routing.activities WHERE district_id = $1 AND activity_id = ANY($2::text[])",
        district_id,
        activity_ids,
    )
    return {
        r["activity_id"]: ActivityRecorded(
            district_id=district_id,
            occurred_at=r["recorded_at"],
            actor=Actor(id=r["recorded_by"], role=ActorRole.SYSTEM),
            station_code=r["station_code"],
            activity_id=r["activity_id"],
            kind=r["kind"],
            title=r["title"],
            held_on=r["held_on"],
            starts_at=r["starts_at"],
            ends_at=r["ends_at"],
            representatives=list(r["representatives"]),
            spokespersons=list(r["spokespersons"]),
            residents_met=r["residents_met"],
            opinions_taken=r["opinions_taken"],
            reception_day=r["reception_day"],
            location=r["location"],
            summary=r["summary"],
        )
        for r in rows
    }
