"""Staff the services know: the events that make a person known, active staff of a role in
a district (:mod:`eventkit.staff_rule`), as routing publishes them on the directory topic
(its directory import and its staff accounts), for a service's consumer to fold into its
roster (:mod:`eventkit.staff_roster`).

Tests of intake, reporting and notification mint tokens for people; those people must be
on the service's roster, as in production, so the tests register them with these events
rather than switching the check off.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from contracts import (
    DepartmentRegistered,
    RepresentativeLevel,
    RepresentativeRegistered,
    SpokespersonRegistered,
    StaffMemberRegistered,
    StaffMemberRole,
    StationKind,
    StationRegistered,
    StreetRegistered,
)
from contracts.base import Actor, ActorRole, Event
from contracts.staff import StaffInvited
from eventkit.identity import Role
from eventkit.staff_rule import DIRECTORY_ROLES

ROUTING = Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)

STAFF_DESK = "staff_desk"
"""The department the helper's department staff are the duty staff of."""


def staff_events(
    district: str,
    people: Iterable[tuple[str, Role]],
    *,
    station: str,
    street: tuple[str, str] = ("staff_street", "测试街道"),
    desk: str | None = None,
) -> list[Event]:
    """Events that make each ``(person, role)`` known, active staff of ``district``.

    Account roles get an invitation (``StaffInvited``: one account per person, so the
    last role given wins); representatives are registered; spokespersons join the
    roster of ``station``; street supervisors supervise ``street`` (code, name: the street
    is registered with them, replacing an earlier registration of it); department staff
    are the duty staff of a department of their own; commissioners and district office
    staff are registered staff members. Liaison officers are named by their station's
    registration: put them in the station's ``StationRegistered``, or give ``desk``, a
    station of their own to register with them (in ``street``)."""
    now = datetime.now(UTC)
    events: list[Event] = []
    supervisors: list[str] = []
    liaison: list[str] = []
    duty: list[str] = []
    for person, role in people:
        common = {"district_id": district, "occurred_at": now, "actor": ROUTING}
        if role not in DIRECTORY_ROLES:
            events.append(
                StaffInvited(
                    **common, person_id=person, role=role.value, expires_at=now + timedelta(days=1)
                )
            )
        elif role is Role.REPRESENTATIVE:
            events.append(
                RepresentativeRegistered(
                    **common,
                    representative_id=person,
                    name_zh="测试代表",
                    level=RepresentativeLevel.DISTRICT,
                )
            )
        elif role is Role.SPOKESPERSON:
            events.append(
                SpokespersonRegistered(
                    **common, station_code=station, spokesperson_id=person, name_zh="测试代言员"
                )
            )
        elif role is Role.STREET_SUPERVISOR:
            supervisors.append(person)
        elif role is Role.DEPARTMENT:
            duty.append(person)
        elif role is Role.LIAISON:
            if desk is None:
                raise ValueError(f"{person}: name liaison officers in their station's registration")
            liaison.append(person)
        else:
            events.append(
                StaffMemberRegistered(**common, staff_id=person, role=StaffMemberRole(role.value))
            )
    if supervisors:
        events.append(
            StreetRegistered(
                district_id=district,
                occurred_at=now,
                actor=ROUTING,
                street_code=street[0],
                name_zh=street[1],
                supervisors=supervisors,
            )
        )
    if liaison:
        events.append(
            StationRegistered(
                district_id=district,
                occurred_at=now,
                actor=ROUTING,
                station_code=desk,
                name_zh="测试联络站",
                kind=StationKind.COMMUNITY,
                street_code=street[0],
                liaison_officers=liaison,
            )
        )
    if duty:
        events.append(
            DepartmentRegistered(
                district_id=district,
                occurred_at=now,
                actor=ROUTING,
                department_code=STAFF_DESK,
                name_zh="测试职能部门",
                duty_staff=duty,
            )
        )
    return events
