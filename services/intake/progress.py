"""A case's progress as the resident and Open311 clients see it, from the case events.

Pure: :func:`evolve` folds one case event into the progress and returns the step it adds
to the timeline (``tracking_views.describe`` puts a step into plain words, with the
:class:`Names` of stations, representatives and categories looked up by the caller).

Open311 knows two statuses (open, closed); mySociety's extension used by FixMyStreet
knows more (investigating, in_progress, fixed, internal_referral, duplicate, reopen...).
Each step carries the extended status it means; :func:`open311_status` gives the plain one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from contracts import (
    CallbackRecorded,
    CaseAccepted,
    CaseAssigned,
    CaseClassified,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseLinked,
    CaseMerged,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    DepartmentReportedIn,
    DepartmentResponded,
    SuggestionAnswered,
)
from contracts.cases import CaseEvent


class Stage(StrEnum):
    """Where a case stands, in the resident's terms."""

    SUBMITTED = "submitted"  # 已提交: no case yet
    OPENED = "opened"  # 已受理
    ASSIGNED = "assigned"  # 已分派
    IN_PROGRESS = "in_progress"  # 办理中
    RESOLVED = "resolved"  # 已办结
    CLOSED = "closed"  # 已结项
    MERGED = "merged"  # 已合并 (duplicate of another case)
    TRANSFERRED_OUT = "transferred_out"  # 已转外区
    WITHDRAWN = "withdrawn"  # 已撤回


STAGE_WORDS: dict[Stage, tuple[str, str]] = {
    Stage.SUBMITTED: ("已提交，等待受理", "Submitted, waiting to be taken up"),
    Stage.OPENED: ("已受理", "Taken up"),
    Stage.ASSIGNED: ("已分派", "Assigned"),
    Stage.IN_PROGRESS: ("办理中", "Being handled"),
    Stage.RESOLVED: ("已办结", "Resolved"),
    Stage.CLOSED: ("已结项", "Closed"),
    Stage.MERGED: ("已合并办理", "Merged with another case"),
    Stage.TRANSFERRED_OUT: ("已转交外区办理", "Transferred to another district"),
    Stage.WITHDRAWN: ("已撤回", "Withdrawn"),
}

CLOSED_STAGES = frozenset(
    {Stage.RESOLVED, Stage.CLOSED, Stage.MERGED, Stage.TRANSFERRED_OUT, Stage.WITHDRAWN}
)


class UpdateStatus(StrEnum):
    """mySociety's extended Open311 statuses, as FixMyStreet reads them."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    IN_PROGRESS = "in_progress"
    ACTION_SCHEDULED = "action_scheduled"
    INTERNAL_REFERRAL = "internal_referral"
    NOT_COUNCILS_RESPONSIBILITY = "not_councils_responsibility"
    DUPLICATE = "duplicate"
    FIXED = "fixed"
    CLOSED = "closed"
    REOPEN = "reopen"


@dataclass(frozen=True)
class Step:
    """One line of a case's timeline: what happened, when, and what status it means."""

    event_id: str
    kind: str
    """The case event's type, e.g. ``CaseAssigned``."""
    at: datetime
    status: UpdateStatus
    station_code: str | None = None
    representative_id: str | None = None
    queue: str | None = None
    category_code: str | None = None
    to_name: str | None = None
    to_level: str | None = None
    to_district_id: str | None = None
    note: str | None = None
    """The text the event carries: a reply or a result (for the resident), a title or an
    answer to a suggestion, and also staff's own reasons and notes (internal: never
    shown, see :data:`RESIDENT_NOTES`). Kept so that a later decision about what to
    show needs no replay."""
    due: datetime | None = None
    relation: str | None = None
    withdrawn: bool = False
    deadline: str | None = None
    """Which deadline passed (response, resolution, escalation)."""
    media_url: str | None = None
    """The resolution's first piece of evidence (a staff member's photo: public only with
    the step)."""
    resolution_seq: int | None = None
    public: bool = False
    """Staff marked the note (and the evidence) fit for anyone to read
    (``CaseReplied.public``, ``CaseResolved.public``); steps stored before the mark
    existed read as not public."""

    def to_json(self) -> dict[str, Any]:
        """The step as JSON-ready data (stored in ``intake.case_steps.step``)."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["due"] = self.due.isoformat() if self.due else None
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        """A step stored by :meth:`to_json`."""
        values = dict(data)
        values["at"] = datetime.fromisoformat(values["at"])
        values["due"] = datetime.fromisoformat(values["due"]) if values.get("due") else None
        values["status"] = UpdateStatus(values["status"])
        return cls(**values)


@dataclass(frozen=True)
class CaseProgress:
    """Where one case stands."""

    case_id: str
    opinion_id: str
    district_id: str
    stage: Stage
    opened_at: datetime
    updated_at: datetime
    category_code: str | None = None
    priority: str | None = None
    station_code: str | None = None
    representative_id: str | None = None
    response_due: datetime | None = None
    resolution_due: datetime | None = None
    resolution_seq: int = 0
    """How many times the case was resolved; feedback is once per resolution."""
    last_status: UpdateStatus = UpdateStatus.OPEN
    last_note: str | None = None
    """The latest text of any step, internal ones included: for the record, never shown."""
    public_note: str | None = None
    """The latest text staff marked public, since the case was last reopened: what
    Open311's ``status_notes`` may quote."""
    linked_case_id: str | None = None
    history: tuple[str, ...] = field(default_factory=tuple)
    """Kinds of the steps so far, oldest first."""

    @property
    def resolved(self) -> bool:
        """Whether the case stands resolved (or closed after a resolution)."""
        return self.stage in {Stage.RESOLVED, Stage.CLOSED} and self.resolution_seq >= 1

    def to_json(self) -> dict[str, Any]:
        """The progress as JSON-ready data (stored in ``intake.cases.progress``)."""
        data = asdict(self)
        for key in ("opened_at", "updated_at", "response_due", "resolution_due"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        data["stage"] = self.stage.value
        data["last_status"] = self.last_status.value
        data["history"] = list(self.history)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseProgress:
        """Progress stored by :meth:`to_json`."""
        values = dict(data)
        for key in ("opened_at", "updated_at", "response_due", "resolution_due"):
            values[key] = datetime.fromisoformat(values[key]) if values.get(key) else None
        values["stage"] = Stage(values["stage"])
        values["last_status"] = UpdateStatus(values["last_status"])
        values["history"] = tuple(values.get("history") or ())
        return cls(**values)


class NotOpened(ValueError):
    """A case event for a case whose CaseOpened was never seen."""


def evolve(
    progress: CaseProgress | None, event: CaseEvent, event_id: str
) -> tuple[CaseProgress, Step]:
    """The progress after ``event`` and the timeline step it adds."""
    at = event.occurred_at
    if isinstance(event, CaseOpened):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.OPEN,
            category_code=event.category_code,
            due=event.resolution_due,
        )
        opened = CaseProgress(
            case_id=event.case_id,
            opinion_id=event.opinion_id,
            district_id=event.district_id,
            stage=Stage.OPENED,
            opened_at=at,
            updated_at=at,
            category_code=event.category_code,
            priority=event.priority.value,
            response_due=event.response_due,
            resolution_due=event.resolution_due,
        )
        return _after(opened, step), step
    if progress is None:
        raise NotOpened(f"{event.event_type} for case {event.case_id} before CaseOpened")
    current = progress
    if isinstance(event, CaseAssigned):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.INVESTIGATING,
            station_code=event.station_code,
            representative_id=event.representative_id,
            queue=event.queue,
        )
        current = replace(
            current,
            stage=Stage.OPENED if event.queue == "triage" else Stage.ASSIGNED,
            station_code=event.station_code,
            representative_id=event.representative_id,
        )
    elif isinstance(event, CaseAccepted):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.IN_PROGRESS,
            station_code=current.station_code,
            representative_id=current.representative_id,
        )
        current = replace(current, stage=Stage.IN_PROGRESS)
    elif isinstance(event, CaseReplied):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.IN_PROGRESS,
            note=event.message,
            public=event.public,
        )
        if current.stage not in CLOSED_STAGES:
            current = replace(current, stage=Stage.IN_PROGRESS)
    elif isinstance(event, CaseEscalated):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.INTERNAL_REFERRAL,
            to_name=event.to_name,
            to_level=event.to_level,
            due=event.due,
            note=event.reason,
        )
        current = replace(current, stage=Stage.IN_PROGRESS)
    elif isinstance(event, CaseTransferred):
        leaves = event.to_district_id is not None and event.to_district_id != current.district_id
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.NOT_COUNCILS_RESPONSIBILITY if leaves else UpdateStatus.INTERNAL_REFERRAL,
            station_code=event.to_station_code,
            representative_id=event.to_representative_id,
            to_district_id=event.to_district_id,
            note=event.reason,
        )
        current = replace(
            current,
            stage=Stage.TRANSFERRED_OUT if leaves else Stage.ASSIGNED,
            station_code=event.to_station_code or current.station_code,
            representative_id=event.to_representative_id,
        )
    elif isinstance(event, CaseResolved):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.FIXED,
            note=event.result,
            media_url=str(event.evidence_urls[0]) if event.evidence_urls else None,
            resolution_seq=event.resolution_seq,
            public=event.public,
        )
        current = replace(
            current,
            stage=Stage.RESOLVED,
            resolution_seq=max(current.resolution_seq, event.resolution_seq),
        )
    elif isinstance(event, CaseClosed):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.CLOSED,
            note=event.note,
            withdrawn=event.withdrawn,
        )
        current = replace(current, stage=Stage.WITHDRAWN if event.withdrawn else Stage.CLOSED)
    elif isinstance(event, CaseReopened):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.REOPEN,
            representative_id=event.representative_id or current.representative_id,
            note=event.reason,
        )
        current = replace(
            current,
            stage=Stage.IN_PROGRESS,
            representative_id=event.representative_id or current.representative_id,
            resolution_due=event.resolution_due or current.resolution_due,
            public_note=None,  # the result it quoted no longer stands
        )
    elif isinstance(event, CaseOverdue):
        step = Step(
            event_id,
            event.event_type,
            at,
            current.last_status,
            due=event.due,
            to_name=event.escalated_to,
            deadline=event.deadline,
        )
    elif isinstance(event, CaseLinked):
        duplicate = event.relation in {"duplicate", "merged"}
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.DUPLICATE if duplicate else current.last_status,
            relation=event.relation,
        )
        if duplicate:
            current = replace(current, stage=Stage.MERGED, linked_case_id=event.related_case_id)
    elif isinstance(event, CaseClassified):
        step = Step(
            event_id,
            event.event_type,
            at,
            current.last_status,
            category_code=event.category_code,
            due=event.resolution_due,
        )
        current = replace(
            current,
            category_code=event.category_code,
            priority=event.priority.value,
            response_due=event.response_due or current.response_due,
            resolution_due=event.resolution_due or current.resolution_due,
        )
    elif isinstance(event, CaseMerged):
        step = Step(event_id, event.event_type, at, UpdateStatus.DUPLICATE, relation="merged")
        current = replace(current, stage=Stage.MERGED, linked_case_id=event.into_case_id)
    elif isinstance(event, CaseConvertedToSuggestion):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.ACTION_SCHEDULED,
            representative_id=event.representative_id,
            note=event.title,
            due=event.reply_due,
        )
        current = replace(current, stage=Stage.IN_PROGRESS)
    elif isinstance(event, SuggestionAnswered):
        step = Step(
            event_id,
            event.event_type,
            at,
            UpdateStatus.ACTION_SCHEDULED,
            to_name=event.answered_by,
            note=event.answer,
        )
    elif isinstance(event, DepartmentReportedIn | DepartmentResponded):
        note = event.action if isinstance(event, DepartmentResponded) else None
        step = Step(event_id, event.event_type, at, UpdateStatus.IN_PROGRESS, note=note)
    elif isinstance(event, CallbackRecorded):
        step = Step(
            event_id,
            event.event_type,
            at,
            current.last_status,
            resolution_seq=event.resolution_seq,
            note=f"{event.satisfaction}/5",
        )
    else:  # a case event this code does not know yet: keep it in the record, plainly
        step = Step(event_id, event.event_type, at, current.last_status)
    return _after(current, step), step


def _after(progress: CaseProgress, step: Step) -> CaseProgress:
    return replace(
        progress,
        updated_at=max(progress.updated_at, step.at),
        last_status=step.status,
        last_note=step.note if step.note is not None else progress.last_note,
        public_note=step.note if step.public and step.note else progress.public_note,
        history=(*progress.history, step.kind),
    )


def open311_status(stage: Stage) -> str:
    """GeoReport v2's status: ``closed`` once the matter was resolved, else ``open``."""
    return "closed" if stage in CLOSED_STAGES else "open"


# --- plain words ----------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """Names looked up for a timeline: stations, representatives, categories, districts."""

    stations: Mapping[str, str] = field(default_factory=dict)
    representatives: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """code → (name_zh, name_en)."""
    districts: Mapping[str, str] = field(default_factory=dict)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
