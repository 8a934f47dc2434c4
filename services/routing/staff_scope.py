"""Who a staff member is in the directory, and which cases are theirs to see and work.

Pure: decided from the directory snapshot routing already holds. The only question asked
of the directory is (district, person id, role): does this person hold this role now?
Everything else (which stations are a liaison officer's, which streets a supervisor's)
follows from the same snapshot, so a person who leaves a station loses its cases at the
next request, and a retired person signs in nowhere.

Scope follows the person (docs/security.md): a liaison officer works the cases of their
stations, a street supervisor those of the stations on their streets, a representative
their own; a community commissioner (社区专员) those of the stations serving their
communities (or their street, when no community is named); the district office
(区人大办公室) and a district administrator the whole district; an auditor and the 12345
hotline read the whole district and change nothing. Department staff work whistles, not
cases: their own routes show only what was whistled to their department.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventkit.identity import Principal, Role
from eventkit.refusals import Forbidden
from eventkit.staff_rule import DIRECTORY_ROLES, Listing
from services.routing.directory import Directory

WHOLE_DISTRICT_READERS = frozenset({Role.DISTRICT_ADMIN, Role.AUDITOR, Role.HOTLINE})
"""Roles that see every case of their district."""

ACTING_ROLES = frozenset(
    {Role.LIAISON, Role.REPRESENTATIVE, Role.STREET_SUPERVISOR, Role.DISTRICT_ADMIN}
)
"""Roles that may change cases (each within its scope, each command by its own roles)."""

CONTACT_ROLES = ACTING_ROLES
"""Roles that may open a resident's contact details, within their scope: those who call
residents back. An auditor opens them only through ``minqing audit case``."""


def listing(directory: Directory | None, person_id: str, role: Role) -> Listing:
    """Whether ``person_id`` holds ``role`` in the district of ``directory`` now (the
    roster the other services keep answers the same from the same events:
    :mod:`eventkit.staff_roster`)."""
    if role not in DIRECTORY_ROLES:
        return Listing.UNLISTED_ROLE
    if directory is None:
        return Listing.NOT_LISTED
    if role is Role.REPRESENTATIVE:
        rep = directory.representatives.get(person_id)
        held = rep is not None and rep.active
    elif role is Role.LIAISON:
        held = any(person_id in s.liaison_officers for s in directory.stations.values() if s.active)
    elif role is Role.STREET_SUPERVISOR:
        held = any(person_id in s.supervisors for s in directory.streets.values())
    elif role is Role.SPOKESPERSON:
        spokesperson = directory.spokespersons.get(person_id)
        held = spokesperson is not None and spokesperson.active
    elif role is Role.DEPARTMENT:
        held = bool(directory.departments_of(person_id))
    else:
        member = directory.staff.get(person_id)
        held = member is not None and member.active and member.role == role.value
    return Listing.HOLDS if held else Listing.NOT_LISTED


def role_in_directory(directory: Directory, person_id: str) -> Role | None:
    """The role the directory lists ``person_id`` in (representative first), if any."""
    for role in (
        Role.REPRESENTATIVE,
        Role.LIAISON,
        Role.STREET_SUPERVISOR,
        Role.COMMUNITY_COMMISSIONER,
        Role.DISTRICT_OFFICE,
        Role.DEPARTMENT,
        Role.SPOKESPERSON,
    ):
        if listing(directory, person_id, role) is Listing.HOLDS:
            return role
    return None


@dataclass(frozen=True)
class Scope:
    """The cases a staff member may see, and whether they may change them."""

    principal: Principal
    stations: frozenset[str] | None
    """The stations whose cases are theirs; None: the whole district (or, with
    ``representative_id``, none by station)."""
    representative_id: str | None = None
    """A representative's own cases."""
    readable: bool = True
    may_act: bool = False

    @property
    def whole_district(self) -> bool:
        """Whether every case of the district is in scope."""
        return self.readable and self.stations is None and self.representative_id is None

    def covers(self, station_code: str | None, representative_id: str | None) -> bool:
        """Whether a case at ``station_code`` assigned to ``representative_id`` is theirs."""
        if not self.readable:
            return False
        if self.representative_id is not None:
            return representative_id == self.representative_id
        if self.stations is None:
            return True
        return station_code is not None and station_code in self.stations

    def list_filters(self) -> dict[str, Any]:
        """The filters of :func:`services.routing.views.list_cases` that keep to scope."""
        if self.representative_id is not None:
            return {"representative_id": self.representative_id}
        if self.stations is not None:
            return {"stations": sorted(self.stations)}
        return {}

    def queue_filters(self) -> dict[str, Any] | None:
        """What the person's queue holds (None: the role has no queue of its own).

        A representative: their open cases; a liaison officer: their stations' liaison
        and triage queues; a street supervisor: escalated or overdue cases of their
        streets; a district administrator: unplaced or overdue cases of the district.
        """
        role = self.principal.role
        mine = {**self.list_filters(), "open_only": True}
        if role is Role.REPRESENTATIVE:
            return mine
        if role is Role.LIAISON:
            return {**mine, "queues": ["liaison", "triage"]}
        if role is Role.STREET_SUPERVISOR:
            return {**mine, "escalated_or_overdue": True}
        if role is Role.DISTRICT_ADMIN:
            return {**mine, "unplaced_or_overdue": True}
        return None


def scope_of(principal: Principal, directory: Directory | None) -> Scope:
    """The scope of ``principal`` in their district's ``directory``."""
    role = principal.role
    if role in WHOLE_DISTRICT_READERS:
        return Scope(principal, None, may_act=role is Role.DISTRICT_ADMIN)
    if role is Role.REPRESENTATIVE:
        return Scope(principal, None, representative_id=principal.subject, may_act=True)
    if role is Role.LIAISON and directory is not None:
        return Scope(
            principal, frozenset(directory.stations_of_liaison(principal.subject)), may_act=True
        )
    if role is Role.STREET_SUPERVISOR and directory is not None:
        streets = set(directory.streets_of_supervisor(principal.subject))
        stations = frozenset(c for c, s in directory.stations.items() if s.street_code in streets)
        return Scope(principal, stations, may_act=True)
    if role is Role.COMMUNITY_COMMISSIONER and directory is not None:
        member = directory.staff.get(principal.subject)
        if member is None:
            return Scope(principal, frozenset(), readable=False)
        stations = frozenset(
            code
            for code, station in directory.stations.items()
            if set(station.communities) & member.communities
            or (not member.communities and station.street_code == member.street_code)
        )
        return Scope(principal, stations, may_act=True)
    if role is Role.DISTRICT_OFFICE:
        return Scope(principal, None, may_act=True)
    return Scope(principal, frozenset(), readable=False)


class OutOfScope(Forbidden):
    """The case is not within the staff member's scope."""

    code = "out-of-scope"

    def __init__(self, case_id: str) -> None:
        super().__init__(
            "此案件不在您的负责范围内",
            "This case is not within your responsibility",
            "联络员只能处理本站案件，街道工委只能处理本街道案件，代表只能处理分派给本人的案件",
            "A liaison officer works their stations' cases, a street supervisor their "
            "streets', a representative their own",
        )
        self.case_id = case_id


class ReadOnly(Forbidden):
    """The role reads and does not act."""

    code = "read-only"

    def __init__(self) -> None:
        super().__init__("当前角色只能查阅，不能办理", "Your role may read but not act")
