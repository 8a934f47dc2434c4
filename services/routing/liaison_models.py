"""What the liaison API answers, as models (every field declared, unknown ones refused),
built by :mod:`services.routing.liaison_views`."""

from __future__ import annotations

from services.routing.api_models import Answer, Label, WhistleView


class DepartmentView(Answer):
    code: str
    name_zh: str
    duty_staff: list[str]
    report_in: str
    respond_in: str
    categories: list[str]
    active: bool


class DepartmentList(Answer):
    departments: list[DepartmentView]


class PersonView(Answer):
    """A person the directory knows, in one role (a person may hold several)."""

    person_id: str
    role: str
    name_zh: str | None
    active: bool


class PeopleList(Answer):
    people: list[PersonView]


class SpokespersonView(Answer):
    """A citizen spokesperson (群众代言员) and the opinions they took down."""

    spokesperson_id: str
    name_zh: str
    community: str | None
    appointed_on: str | None
    active: bool
    opinions_collected: int
    """Opinions they submitted for residents in the period (all time without one)."""


class Roster(Answer):
    station_code: str
    spokespersons: list[SpokespersonView]


class ScheduledDayView(Answer):
    """A reception day of a representative at a station, as planned and changed."""

    representative_id: str
    representative_name: str
    leading_cadre: bool
    station_code: str
    day: str
    starts_at: str | None
    ends_at: str | None
    status: str
    """``scheduled``, ``cancelled`` or ``moved``."""
    status_label: Label
    moved_to: str | None
    moved_from: str | None
    reason: str | None


class ScheduleList(Answer):
    days: list[ScheduledDayView]


class ActivityView(Answer):
    """Representatives' work held at a station (the registers' entries)."""

    activity_id: str
    station_code: str
    kind: str
    kind_label: Label
    title: str
    held_on: str
    starts_at: str | None
    ends_at: str | None
    representatives: list[str]
    spokespersons: list[str]
    residents_met: int
    opinions_taken: int
    reception_day: str | None
    location: str | None
    summary: str | None
    recorded_by: str


class ActivityList(Answer):
    activities: list[ActivityView]


class DepartmentWhistle(Answer):
    """A whistle to the caller's department, with what the case says (never the
    resident)."""

    case_id: str
    case_status: str
    category_code: str | None
    priority: str
    community: str | None
    whistle: WhistleView


class DepartmentQueue(Answer):
    departments: list[str]
    whistles: list[DepartmentWhistle]


class DepartmentCase(Answer):
    """What a summoned department sees of a case: the matter and its own whistles."""

    case_id: str
    status: str
    status_label: Label
    category_code: str | None
    priority: str
    community: str | None
    address: str | None
    text: str
    opened_at: str
    whistles: list[WhistleView]


class Planned(Answer):
    """How many reception days a planning round added."""

    added: int


class Done(Answer):
    """A change was made (or was already so)."""

    ok: bool
