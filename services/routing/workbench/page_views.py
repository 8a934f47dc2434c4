"""What the workbench's pages show, built from the API's own models.

Pure: the case, its history and the list rows come as the API answers them
(:mod:`services.routing.api_models`), the district's calendar and directory as routing
holds them, the time as ``now``. The pages therefore show the API's facts, arranged for
people: deadlines counted down in working time, overdue first, the classification and
the assignment explained, the history in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.routing.api_models import CaseDetail, CaseSummary, HistoryEntry
from services.routing.case_state import ALLOWED, CaseStatus
from services.routing.deadlines import WorkCalendar
from services.routing.directory import Directory
from services.routing.staff_commands import STAFF_COMMANDS
from services.routing.workbench.countdown import Countdown, countdown
from services.routing.workbench.i18n import COMMAND_HELP

_PRIORITY_RANK = {"urgent": 0, "important": 1, "normal": 2}

# The order of the buttons on a case: the usual next steps first.
ACTION_ORDER = (
    "accept",
    "reply",
    "resolve",
    "escalate",
    "close",
    "transfer",
    "classify",
    "convert",
    "merge",
    "link",
    "reopen",
)


@dataclass(frozen=True)
class Row:
    """A case in a list, with its deadline counted down."""

    case: CaseSummary
    due: Countdown | None
    station_name: str | None
    representative_name: str | None
    category_name: str | None

    @property
    def overdue(self) -> bool:
        """Recorded overdue, or its deadline passed already."""
        return self.case.overdue or (self.due is not None and self.due.overdue)


def rows(
    cases: list[CaseSummary],
    calendar: WorkCalendar,
    directory: Directory | None,
    categories: dict[str, str],
    now: datetime,
) -> list[Row]:
    """List rows, overdue first, then urgent matters, then the nearest deadline."""
    made = []
    for case in cases:
        due = (
            countdown(calendar, now, datetime.fromisoformat(case.next_due))
            if case.next_due
            else None
        )
        station = directory.stations.get(case.station_code or "") if directory else None
        rep = directory.representatives.get(case.representative_id or "") if directory else None
        made.append(
            Row(
                case,
                due,
                station.name_zh if station else None,
                rep.name_zh if rep else None,
                categories.get(case.category_code or ""),
            )
        )
    return sorted(
        made,
        key=lambda r: (
            not r.overdue,
            _PRIORITY_RANK.get(r.case.priority, 3),
            r.case.next_due or "9999",
        ),
    )


@dataclass(frozen=True)
class Action:
    """A command the person may give now, with its form's fields."""

    name: str
    zh: str
    en: str


@dataclass(frozen=True)
class Actions:
    """What the person may do on the case now, and what the status does not allow."""

    allowed: list[Action] = field(default_factory=list)
    not_now: list[Action] = field(default_factory=list)
    status_zh: str = ""
    status_en: str = ""


def actions(detail: CaseDetail, role: str, may_act: bool) -> Actions:
    """The buttons of a case: the commands its status allows (``case_state.ALLOWED``)
    that the person's role may give; the role's others, greyed, with the status why."""
    if not may_act:
        return Actions(status_zh=detail.status_label.zh, status_en=detail.status_label.en)
    status = CaseStatus(detail.status)
    mine = {c.name: c for c in STAFF_COMMANDS if role in {r.value for r in c.roles}}
    order = [*ACTION_ORDER, *(n for n in mine if n not in ACTION_ORDER)]
    allowed: list[Action] = []
    not_now: list[Action] = []
    for name in order:
        if name not in mine or name not in ALLOWED:
            continue
        zh, _, en = mine[name].summary.partition(" / ")
        zh, en = COMMAND_HELP.get(name, (zh, en or zh))
        (allowed if status in ALLOWED[name] else not_now).append(Action(name, zh, en))
    return Actions(allowed, not_now, detail.status_label.zh, detail.status_label.en)


@dataclass(frozen=True)
class Explanation:
    """Why the case is what and where it is."""

    matched: list[str]
    priority_words: list[str]
    model_words: list[str]
    classifier_version: int | None
    assigned_reason: str | None
    candidates: list[dict[str, Any]]


def explanation(history: list[HistoryEntry], names: dict[str, str]) -> Explanation:
    """The classification's words and the latest assignment's reason and candidates."""
    opened: dict[str, Any] = history[0].data if history else {}
    assigned: dict[str, Any] = {}
    for entry in history:
        if entry.type == "CaseAssigned":
            assigned = entry.data
    candidates = [
        {
            "representative_id": c["representative_id"],
            "name": names.get(c["representative_id"], c["representative_id"]),
            "score": c["score"],
            "parts": sorted(c.get("components", {}).items(), key=lambda kv: -kv[1]),
        }
        for c in assigned.get("candidates", [])
    ]
    return Explanation(
        matched=list(opened.get("matched_keywords", [])),
        priority_words=list(opened.get("priority_keywords", [])),
        model_words=list(opened.get("classifier_evidence", [])),
        classifier_version=opened.get("classifier_version"),
        assigned_reason=assigned.get("reason"),
        candidates=candidates,
    )


_SHOWN = (
    "message",
    "result",
    "reason",
    "note",
    "title",
    "to_name",
    "to_station_code",
    "to_representative_id",
    "to_district_id",
    "station_code",
    "representative_id",
    "category_code",
    "priority",
    "into_case_id",
    "related_case_id",
    "relation",
    "deadline",
    "escalated_to",
)


@dataclass(frozen=True)
class Field:
    """A field of a command's form the page has no dedicated markup for."""

    name: str
    required: bool
    choices: tuple[str, ...] = ()


def generic_fields(name: str) -> list[Field]:
    """The fields of a command's body, for a plain form (commands added to the table
    get a working form before they get a page of their own)."""
    command = next(c for c in STAFF_COMMANDS if c.name == name)
    found = []
    for field_name, info in command.body.model_fields.items():
        choices = tuple(getattr(info.annotation, "__args__", ()))
        literal = all(isinstance(c, str) for c in choices) and choices
        found.append(Field(field_name, info.is_required(), choices if literal else ()))
    return found


def history_details(
    entry: HistoryEntry, labels: Mapping[str, Mapping[str, str]] | None = None
) -> list[tuple[str, str]]:
    """The fields of an event worth a line in the history, each value in words where
    ``labels`` has words for it (a station's or a representative's name, a category's,
    a priority's), the code itself otherwise."""
    words = labels or {}

    def shown(key: str, value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(shown(key, v) for v in value)
        return words.get(key, {}).get(str(value), str(value))

    return [
        (key, shown(key, value))
        for key in _SHOWN
        if (value := entry.data.get(key)) not in (None, "", [])
    ]


def local_time(calendar: WorkCalendar, iso: str) -> str:
    """A moment in the district's time zone, to the minute."""
    return f"{calendar.local(datetime.fromisoformat(iso)):%Y-%m-%d %H:%M}"
