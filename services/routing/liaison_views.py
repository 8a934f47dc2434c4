"""What the liaison API shows: departments, people, spokespersons' rosters with their
intake counted, reception days as planned and changed, activities, and a department's
whistles. Reads only, always scoped to one district; answers are the models of
:mod:`services.routing.liaison_models`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from eventkit.db import Conn
from services.routing.api_models import Label, WhistleView
from services.routing.case_state import STATUS_LABELS, CaseState, CaseStatus
from services.routing.directory import Directory
from services.routing.liaison_models import (
    ActivityView,
    DepartmentCase,
    DepartmentView,
    DepartmentWhistle,
    PersonView,
    ScheduledDayView,
    SpokespersonView,
)
from services.routing.views import whistle_view

ACTIVITY_LABELS: dict[str, tuple[str, str]] = {
    "theme": ("主题活动", "theme activity"),
    "training": ("学习培训", "study and training"),
    "inspection": ("调研视察", "inspection and survey"),
    "duty_report": ("述职评议", "duty report and review"),
    "reception": ("接待选民", "reception of residents"),
}

DAY_LABELS: dict[str, tuple[str, str]] = {
    "scheduled": ("按计划", "scheduled"),
    "cancelled": ("已取消", "cancelled"),
    "moved": ("已改期", "moved"),
}


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def departments_view(directory: Directory) -> list[DepartmentView]:
    """The district's departments, retired ones included."""
    return [
        DepartmentView(
            code=d.code,
            name_zh=d.name_zh,
            duty_staff=sorted(d.duty_staff),
            report_in=d.report_in,
            respond_in=d.respond_in,
            categories=list(d.categories),
            active=d.active,
        )
        for d in sorted(directory.departments.values(), key=lambda d: d.code)
    ]


async def people(conn: Conn, district_id: str, role: str | None = None) -> list[PersonView]:
    """Everyone the directory knows as a person (``routing.people``), by role."""
    rows = await conn.fetch(
        "SELECT person_id, role, name_zh, active FROM routing.people "
        "WHERE district_id = $1 AND ($2::text IS NULL OR role = $2) ORDER BY role, person_id",
        district_id,
        role,
    )
    return [
        PersonView(
            person_id=r["person_id"], role=r["role"], name_zh=r["name_zh"], active=r["active"]
        )
        for r in rows
    ]


async def roster(
    conn: Conn,
    directory: Directory,
    station_code: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SpokespersonView]:
    """The station's spokespersons (current and former) with the opinions each took down
    for residents (cases they collected, opened in ``[since, until)``)."""
    members = sorted(
        (s for s in directory.spokespersons.values() if s.station_code == station_code),
        key=lambda s: (not s.active, s.id),
    )
    counts = {
        r["collected_by"]: r["n"]
        for r in await conn.fetch(
            "SELECT collected_by, count(*) AS n FROM routing.cases WHERE district_id = $1 "
            "AND collected_by_role = 'spokesperson' AND collected_by = ANY($2::text[]) "
            "AND ($3::timestamptz IS NULL OR opened_at >= $3) "
            "AND ($4::timestamptz IS NULL OR opened_at < $4) GROUP BY collected_by",
            directory.district_id,
            [s.id for s in members],
            since,
            until,
        )
    }
    return [
        SpokespersonView(
            spokesperson_id=s.id,
            name_zh=s.name_zh,
            community=s.community,
            appointed_on=_iso(s.appointed_on),
            active=s.active,
            opinions_collected=counts.get(s.id, 0),
        )
        for s in members
    ]


async def schedule(
    conn: Conn,
    directory: Directory,
    *,
    station_code: str | None,
    since: date,
    until: date,
    representative_id: str | None = None,
) -> list[ScheduledDayView]:
    """Reception days between ``since`` and ``until`` (both included), every status."""
    rows = await conn.fetch(
        "SELECT * FROM routing.reception_days WHERE district_id = $1 "
        "AND ($2::text IS NULL OR station_code = $2) AND ($3::text IS NULL "
        "OR representative_id = $3) AND day BETWEEN $4 AND $5 "
        "ORDER BY day, starts_at NULLS LAST, representative_id",
        directory.district_id,
        station_code,
        representative_id,
        since,
        until,
    )
    out = []
    for r in rows:
        rep = directory.representatives.get(r["representative_id"])
        out.append(
            ScheduledDayView(
                representative_id=r["representative_id"],
                representative_name=rep.name_zh if rep else r["representative_id"],
                leading_cadre=bool(rep and rep.leading_cadre),
                station_code=r["station_code"],
                day=r["day"].isoformat(),
                starts_at=_time(r["starts_at"]),
                ends_at=_time(r["ends_at"]),
                status=r["status"],
                status_label=Label(zh=DAY_LABELS[r["status"]][0], en=DAY_LABELS[r["status"]][1]),
                moved_to=_iso(r["moved_to"]),
                moved_from=_iso(r["moved_from"]),
                reason=r["reason"],
            )
        )
    return out


async def activities(
    conn: Conn,
    district_id: str,
    *,
    station_code: str | None,
    since: date,
    until: date,
    kind: str | None = None,
) -> list[ActivityView]:
    """Activities held between ``since`` and ``until`` (both included), newest first."""
    rows = await conn.fetch(
        "SELECT * FROM routing.activities WHERE district_id = $1 "
        "AND ($2::text IS NULL OR station_code = $2) AND ($3::text IS NULL OR kind = $3) "
        "AND held_on BETWEEN $4 AND $5 ORDER BY held_on DESC, activity_id",
        district_id,
        station_code,
        kind,
        since,
        until,
    )
    return [
        ActivityView(
            activity_id=r["activity_id"],
            station_code=r["station_code"],
            kind=r["kind"],
            kind_label=Label(zh=ACTIVITY_LABELS[r["kind"]][0], en=ACTIVITY_LABELS[r["kind"]][1]),
            title=r["title"],
            held_on=r["held_on"].isoformat(),
            starts_at=_time(r["starts_at"]),
            ends_at=_time(r["ends_at"]),
            representatives=list(r["representatives"]),
            spokespersons=list(r["spokespersons"]),
            residents_met=r["residents_met"],
            opinions_taken=r["opinions_taken"],
            reception_day=_iso(r["reception_day"]),
            location=r["location"],
            summary=r["summary"],
            recorded_by=r["recorded_by"],
        )
        for r in rows
    ]


async def department_whistles(
    conn: Conn, district_id: str, departments: list[str], *, open_only: bool, limit: int
) -> list[DepartmentWhistle]:
    """Whistles to ``departments``, those still waiting for the department first."""
    rows = await conn.fetch(
        """
        SELECT w.*, c.status AS case_status, c.category_code, c.priority, c.community
          FROM routing.whistles w JOIN routing.cases c ON c.case_id = w.case_id
         WHERE w.district_id = $1 AND w.department_code = ANY($2::text[])
           AND (NOT $3 OR (w.responded_at IS NULL AND c.is_open))
         ORDER BY (w.responded_at IS NULL) DESC, coalesce(w.due, w.whistled_at), w.case_id
         LIMIT $4
        """,
        district_id,
        departments,
        open_only,
        limit,
    )
    return [
        DepartmentWhistle(
            case_id=r["case_id"],
            case_status=r["case_status"],
            category_code=r["category_code"],
            priority=r["priority"],
            community=r["community"],
            whistle=_whistle_row(r),
        )
        for r in rows
    ]


def _whistle_row(r: Any) -> WhistleView:
    return WhistleView(
        seq=r["seq"],
        to_level=r["to_level"],
        to_name=r["to_name"],
        department_code=r["department_code"],
        whistled_at=r["whistled_at"].isoformat(),
        whistled_by=r["whistled_by"],
        report_due=_iso(r["report_due"]),
        due=_iso(r["due"]),
        reported_at=_iso(r["reported_at"]),
        reported_by=r["reported_by"],
        responded_at=_iso(r["responded_at"]),
        responded_by=r["responded_by"],
        action=r["action"],
        rating=r["rating"],
        rated_at=_iso(r["rated_at"]),
    )


async def department_case(conn: Conn, state: CaseState, departments: list[str]) -> DepartmentCase:
    """What a department sees of a case whistled to it."""
    row = await conn.fetchrow(
        "SELECT text, community, address FROM routing.cases WHERE case_id = $1", state.case_id
    )
    status = CaseStatus(state.status)
    return DepartmentCase(
        case_id=state.case_id,
        status=status.value,
        status_label=Label(zh=STATUS_LABELS[status][0], en=STATUS_LABELS[status][1]),
        category_code=state.category_code,
        priority=state.priority.value,
        community=row["community"] if row else None,
        address=row["address"] if row else None,
        text=row["text"] if row else "",
        opened_at=state.opened_at.isoformat(),
        whistles=[whistle_view(w) for w in state.whistled_to(departments)],
    )
