"""The directory events of the liaison work a district file (or an admin) describes:
departments, the people beyond stations' liaison officers (commissioners, district
office, department staff), citizen spokespersons, activities, and reception days planned
from each representative's rules.

Pure, like :mod:`services.routing.directory_plan`, which calls it: only differences are
emitted, nothing is ever deleted (a department, person or spokesperson is retired, an
activity recorded again replaces its record), and reception days are planned from the
rules in force up to a horizon, so that a long-running service keeps planning as time
passes (:func:`planned_reception_days`).
"""

from __future__ import annotations

import calendar as gregorian
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from contracts.base import Event
from contracts.directory import (
    ActivityRecorded,
    DepartmentRegistered,
    DepartmentRetired,
    Monthly,
    ReceptionDayCancelled,
    ReceptionDayScheduled,
    ReceptionRule,
    ReceptionRulesPublished,
    SpokespersonRegistered,
    SpokespersonRetired,
    StaffMemberRegistered,
    StaffMemberRetired,
    Weekly,
)
from services.routing.directory import Directory, DistrictConfig
from services.routing.district_file import (
    ActivityEntry,
    DepartmentEntry,
    DirectoryChanges,
    ReceptionEntry,
    SpokespersonEntry,
    StaffEntry,
)

RECEPTION_HORIZON_DAYS = 120
"""Reception days are planned this far ahead, at each import and by the planner."""

RULES_CHANGED = "接待日安排调整 / the reception rules changed"

Add = Callable[[Event], None]


# --------------------------------------------------------------------------- reception


def rules_of(entries: Iterable[ReceptionEntry]) -> list[ReceptionRule]:
    """The recurring entries of a representative in the file, as published rules."""
    return [
        ReceptionRule(
            station_code=e.station,
            monthly=Monthly(week=e.monthly.week, weekday=e.monthly.weekday) if e.monthly else None,
            weekly=Weekly(weekday=e.weekly.weekday) if e.weekly else None,
            starts_at=e.starts_at,
            ends_at=e.ends_at,
        )
        for e in entries
        if e.day is None
    ]


def rule_days(
    rule: ReceptionRule, today: date, horizon_days: int = RECEPTION_HORIZON_DAYS
) -> list[date]:
    """The days a recurring rule gives from ``today`` to the horizon."""
    end = today + timedelta(days=horizon_days)
    days: list[date] = []
    if rule.weekly is not None:
        day = today + timedelta(days=(rule.weekly.weekday - 1 - today.weekday()) % 7)
        while day <= end:
            days.append(day)
            day += timedelta(days=7)
    if rule.monthly is not None:
        year, month = today.year, today.month
        while date(year, month, 1) <= end:
            found = _nth_weekday(year, month, rule.monthly.week, rule.monthly.weekday)
            if found is not None and today <= found <= end:
                days.append(found)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(set(days))


def _nth_weekday(year: int, month: int, week: int, weekday: int) -> date | None:
    first = date(year, month, 1)
    day = first + timedelta(days=(weekday - 1 - first.weekday()) % 7 + 7 * (week - 1))
    return day if day.month == month and day.day <= gregorian.monthrange(year, month)[1] else None


def planned_reception_days(
    base: Mapping[str, Any],
    representative_id: str,
    rules: Sequence[ReceptionRule],
    known: set[tuple[str, str, date]],
    today: date,
    horizon_days: int = RECEPTION_HORIZON_DAYS,
) -> list[Event]:
    """``ReceptionDayScheduled`` for every day the rules give up to the horizon that is
    not known yet (scheduled, cancelled or moved before: a cancelled day is never planned
    again). ``known`` is updated."""
    events: list[Event] = []
    for rule in rules:
        for day in rule_days(rule, today, horizon_days):
            key = (representative_id, rule.station_code, day)
            if key in known:
                continue
            known.add(key)
            events.append(
                ReceptionDayScheduled(
                    **base,
                    representative_id=representative_id,
                    station_code=rule.station_code,
                    day=day,
                    starts_at=rule.starts_at,
                    ends_at=rule.ends_at,
                )
            )
    return events


def plan_reception(
    add: Add,
    base: Mapping[str, Any],
    directory: Directory | None,
    representative_id: str,
    rules: list[ReceptionRule],
    known: set[tuple[str, str, date]],
    today: date,
) -> None:
    """A representative's rules published when they changed, the days the old rules gave
    and the new ones do not cancelled (from today on), and the days ahead planned."""
    old = directory.representatives.get(representative_id) if directory else None
    old_rules = list(old.reception_rules) if old is not None else []
    if old_rules != rules:
        add(ReceptionRulesPublished(**base, representative_id=representative_id, rules=rules))
        wanted = {
            (r.station_code, d) for r in rules for d in rule_days(r, today, RECEPTION_HORIZON_DAYS)
        }
        still = {
            (d.station_code, d.day)
            for d in (directory.reception_days if directory else ())
            if d.representative_id == representative_id and d.day >= today
        }
        for rule in old_rules:
            for day in rule_days(rule, today, RECEPTION_HORIZON_DAYS):
                key = (rule.station_code, day)
                if key in still and key not in wanted:
                    still.discard(key)
                    add(
                        ReceptionDayCancelled(
                            **base,
                            representative_id=representative_id,
                            station_code=rule.station_code,
                            day=day,
                            reason=RULES_CHANGED,
                        )
                    )
    for event in planned_reception_days(base, representative_id, rules, known, today):
        add(event)


def reception_plan(config: DistrictConfig, base: Mapping[str, Any], today: date) -> list[Event]:
    """What the planner appends for a district now: the days its active representatives'
    rules give up to the horizon that are not planned yet."""
    known = set(config.scheduled)
    events: list[Event] = []
    for rep in sorted(config.directory.representatives.values(), key=lambda r: r.id):
        if rep.active and rep.reception_rules:
            events += planned_reception_days(base, rep.id, rep.reception_rules, known, today)
    return events


# --------------------------------------------------------------------------- people


def plan_liaison(
    add: Add,
    base: Mapping[str, Any],
    directory: Directory | None,
    changes: DirectoryChanges,
    activities: Mapping[str, ActivityRecorded],
) -> None:
    """Departments, staff, spokespersons and activities: only what differs.

    ``activities`` are the district's recorded activities the file names, by id.
    """
    for department in changes.departments:
        _plan_department(add, base, directory, department)
    for member in changes.staff:
        _plan_staff(add, base, directory, member)
    for spokesperson in changes.spokespersons:
        _plan_spokesperson(add, base, directory, spokesperson)
    for activity in changes.activities:
        recorded = activity_event(base, activity)
        old = activities.get(activity.id)
        if old is None or _activity_facts(old) != _activity_facts(recorded):
            add(recorded)


def activity_event(base: Mapping[str, Any], entry: ActivityEntry) -> ActivityRecorded:
    """The ``ActivityRecorded`` of an entry."""
    return ActivityRecorded(
        **base,
        station_code=entry.station,
        activity_id=entry.id,
        kind=entry.kind,
        title=entry.title,
        held_on=entry.held_on,
        starts_at=entry.starts_at,
        ends_at=entry.ends_at,
        representatives=list(dict.fromkeys(entry.representatives)),
        spokespersons=list(dict.fromkeys(entry.spokespersons)),
        residents_met=entry.residents_met,
        opinions_taken=entry.opinions_taken,
        reception_day=entry.reception_day,
        location=entry.location,
        summary=entry.summary,
    )


def _activity_facts(event: ActivityRecorded) -> dict[str, Any]:
    return event.model_dump(exclude={"occurred_at", "actor"})


def _plan_department(
    add: Add, base: Mapping[str, Any], directory: Directory | None, entry: DepartmentEntry
) -> None:
    old = directory.departments.get(entry.code) if directory else None
    if entry.retired:
        if old is not None and old.active:
            add(DepartmentRetired(**base, department_code=entry.code, reason=entry.retired_reason))
        if old is not None:
            return
    details = (
        entry.name_zh,
        frozenset(entry.duty_staff),
        entry.report_in,
        entry.respond_in,
        tuple(entry.categories),
    )
    if (
        old is None
        or not old.active
        or details != (old.name_zh, old.duty_staff, old.report_in, old.respond_in, old.categories)
    ):
        add(
            DepartmentRegistered(
                **base,
                department_code=entry.code,
                name_zh=entry.name_zh,
                duty_staff=sorted(entry.duty_staff),
                report_in=entry.report_in,
                respond_in=entry.respond_in,
                categories=list(entry.categories),
            )
        )
        if entry.retired:
            add(DepartmentRetired(**base, department_code=entry.code, reason=entry.retired_reason))


def _plan_staff(
    add: Add, base: Mapping[str, Any], directory: Directory | None, entry: StaffEntry
) -> None:
    old = directory.staff.get(entry.id) if directory else None
    if entry.retired:
        if old is not None and old.active:
            add(StaffMemberRetired(**base, staff_id=entry.id, reason=entry.retired_reason))
        if old is not None:
            return
    details = (
        entry.role.value,
        entry.name_zh,
        entry.street,
        frozenset(entry.communities),
        entry.department,
    )
    if (
        old is None
        or not old.active
        or details != (old.role, old.name_zh, old.street_code, old.communities, old.department_code)
    ):
        add(
            StaffMemberRegistered(
                **base,
                staff_id=entry.id,
                role=entry.role,
                name_zh=entry.name_zh,
                street_code=entry.street,
                communities=list(entry.communities),
                department_code=entry.department,
            )
        )
        if entry.retired:
            add(StaffMemberRetired(**base, staff_id=entry.id, reason=entry.retired_reason))


def _plan_spokesperson(
    add: Add, base: Mapping[str, Any], directory: Directory | None, entry: SpokespersonEntry
) -> None:
    old = directory.spokespersons.get(entry.id) if directory else None
    ids = {"spokesperson_id": entry.id}
    if old is not None and old.active and old.station_code != entry.station:
        # Moved to another station's roster: they leave the old one first.
        add(SpokespersonRetired(**base, **ids, station_code=old.station_code, reason=None))
        old = None
    if entry.retired:
        if old is not None and old.active:
            add(
                SpokespersonRetired(
                    **base, **ids, station_code=entry.station, reason=entry.retired_reason
                )
            )
        if old is not None:
            return
    details = (entry.station, entry.name_zh, entry.community, entry.appointed_on)
    if (
        old is None
        or not old.active
        or details != (old.station_code, old.name_zh, old.community, old.appointed_on)
    ):
        add(
            SpokespersonRegistered(
                **base,
                **ids,
                station_code=entry.station,
                name_zh=entry.name_zh,
                community=entry.community,
                appointed_on=entry.appointed_on,
            )
        )
        if entry.retired:
            add(
                SpokespersonRetired(
                    **base, **ids, station_code=entry.station, reason=entry.retired_reason
                )
            )


# --------------------------------------------------------------------------- checks


def liaison_problems(
    directory: Directory | None,
    changes: DirectoryChanges,
    streets: set[str],
    communities: set[str],
    stations: Mapping[str, bool],
    reps: set[str],
) -> list[str]:
    """Every reference of the liaison entries that does not resolve, in words."""
    problems: list[str] = []
    departments = {d.code for d in changes.departments} | set(
        directory.departments if directory else ()
    )
    spokespersons = {s.id for s in changes.spokespersons} | set(
        directory.spokespersons if directory else ()
    )
    for kind, codes in (
        ("部门 department", [d.code for d in changes.departments]),
        ("人员 staff", [m.id for m in changes.staff]),
        ("群众代言员 spokesperson", [s.id for s in changes.spokespersons]),
        ("活动 activity", [a.id for a in changes.activities]),
    ):
        seen: set[str] = set()
        for code in codes:
            if code in seen:
                problems.append(f"{kind} {code} 重复 / listed twice")
            seen.add(code)
    for member in changes.staff:
        if member.street is not None and member.street not in streets:
            problems.append(f"人员 {member.id}: 街道 {member.street} 不存在 / unknown street")
        for name in member.communities:
            if name not in communities:
                problems.append(f"人员 {member.id}: 社区 {name} 不存在 / unknown community")
        if member.role.value == "department" and member.department not in departments:
            problems.append(
                f"人员 {member.id}: 须属于已登记的部门 / department staff need a known department"
            )
    for sp in changes.spokespersons:
        if not stations.get(sp.station, False) and not sp.retired:
            problems.append(
                f"群众代言员 {sp.id}: 联络站 {sp.station} 不存在或已撤销 / unknown station"
            )
        if sp.community is not None and sp.community not in communities:
            problems.append(f"群众代言员 {sp.id}: 社区 {sp.community} 不存在 / unknown community")
    for activity in changes.activities:
        if activity.station not in stations:
            problems.append(
                f"活动 {activity.id}: 联络站 {activity.station} 不存在 / unknown station"
            )
        for rep in activity.representatives:
            if rep not in reps:
                problems.append(f"活动 {activity.id}: 代表 {rep} 不存在 / unknown representative")
        for sp_id in activity.spokespersons:
            if sp_id not in spokespersons:
                problems.append(
                    f"活动 {activity.id}: 群众代言员 {sp_id} 不存在 / unknown spokesperson"
                )
    return problems
