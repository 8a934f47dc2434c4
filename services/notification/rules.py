"""Who is told of what: the rules from events to recipients, decided without I/O.

Each :class:`Rule` names the events it reacts to, whom it tells (an :class:`Audience`),
the template, and the channels it allows. :func:`plan` turns one event and what the
service knows around it (:class:`Facts`) into the deliveries to make: one per recipient
and channel. A district may switch a rule off or narrow its channels
(:class:`RuleSetting`); the escalation ladder is routing's (``CaseOverdue`` names the
rung), never a ladder of notification's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from contracts.base import Event
from contracts.cases import (
    CaseAssigned,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    Priority,
    SuggestionAnswered,
)
from contracts.intake import Channel as IntakeChannel
from contracts.intake import OpinionSubmitted
from services.notification.contact_book import Channel, ContactEntry, channels_for

STAFF_TAKEN = frozenset(
    {
        IntakeChannel.WALK_IN,
        IntakeChannel.VISIT,
        IntakeChannel.SPOKESPERSON,
        IntakeChannel.HOTLINE_12345,
    }
)
"""Channels on which staff took the opinion down: the resident never saw the web page,
so they are sent a receipt with their tracking link."""


class Audience(StrEnum):
    """Whom a rule tells."""

    ASSIGNEE = "assignee"
    """The representative the case went to, else the liaison officers of its station."""
    NEW_REPRESENTATIVE = "new_representative"
    """The representative a case was transferred to."""
    STATION_STAFF = "station_staff"
    """The station's liaison officers and its head."""
    RESIDENT = "resident"
    """The resident, when they left a phone number and agreed to be contacted."""
    RUNG = "rung"
    """The rung of the escalation ladder routing chose for a missed deadline."""
    DEPARTMENT = "department"
    """The department a whistle was blown to: a registered department's duty staff, else
    the contact the book lists under the name the whistle gives."""
    CASE_REPRESENTATIVE = "case_representative"
    """The representative of a reopened case."""


@dataclass(frozen=True)
class Rule:
    """One rule (see the module's note)."""

    name: str
    events: frozenset[str]
    audience: Audience
    template: str
    channels: tuple[Channel, ...]
    every_channel: bool = False
    """Tell on every allowed channel the person has (urgent matters), not only their
    preferred ones."""
    summary: str = ""


RULES: tuple[Rule, ...] = (
    Rule(
        "urgent_case",
        frozenset({"CaseAssigned"}),
        Audience.STATION_STAFF,
        "urgent_case",
        ("sms", "wecom", "dingtalk", "email", "webhook"),
        every_channel=True,
        summary="要事立即告知联络站联络员和站长 / an urgent case: the station's staff at once",
    ),
    Rule(
        "case_assigned",
        frozenset({"CaseAssigned"}),
        Audience.ASSIGNEE,
        "case_assigned",
        ("email", "wecom", "dingtalk", "sms", "webhook"),
        summary="新案件分派给代表或联络员 / a case assigned: its representative or liaison",
    ),
    Rule(
        "case_transferred",
        frozenset({"CaseTransferred"}),
        Audience.NEW_REPRESENTATIVE,
        "case_transferred",
        ("email", "wecom", "dingtalk", "sms", "webhook"),
        summary="案件转给代表 / a case transferred to a representative",
    ),
    Rule(
        "receipt",
        frozenset({"OpinionSubmitted"}),
        Audience.RESIDENT,
        "receipt",
        ("sms",),
        summary="工作人员代为登记的诉求回执 / a receipt for an opinion staff took down",
    ),
    Rule(
        "resident_replied",
        frozenset({"CaseReplied"}),
        Audience.RESIDENT,
        "resident_replied",
        ("sms",),
        summary="答复居民 / the answer, to the resident",
    ),
    Rule(
        "resident_resolved",
        frozenset({"CaseResolved"}),
        Audience.RESIDENT,
        "resident_resolved",
        ("sms",),
        summary="办结告知并邀请评价 / resolved, with the rating link",
    ),
    Rule(
        "resident_suggestion",
        frozenset({"CaseConvertedToSuggestion"}),
        Audience.RESIDENT,
        "resident_suggestion",
        ("sms",),
        summary="转为代表建议 / turned into a representative suggestion",
    ),
    Rule(
        "overdue",
        frozenset({"CaseOverdue"}),
        Audience.RUNG,
        "overdue",
        ("email", "wecom", "dingtalk", "sms", "webhook"),
        summary="超期督办：告知路由选定的层级 / a missed deadline: the rung routing chose",
    ),
    Rule(
        "department_whistle",
        frozenset({"CaseEscalated"}),
        Audience.DEPARTMENT,
        "department_whistle",
        ("webhook", "email", "wecom", "dingtalk", "sms"),
        summary="吹哨：告知被召集的部门 / a whistle: the department summoned",
    ),
    Rule(
        "department_reminder",
        frozenset({"CaseOverdue"}),
        Audience.DEPARTMENT,
        "department_reminder",
        ("webhook", "email", "wecom", "dingtalk", "sms"),
        summary="部门超期催办：告知被召集的部门 / a department's missed deadline: the department",
    ),
    Rule(
        "resident_suggestion_answered",
        frozenset({"SuggestionAnswered"}),
        Audience.RESIDENT,
        "resident_suggestion_answered",
        ("sms",),
        summary="代表建议已答复 / the suggestion's answer, to the resident",
    ),
    Rule(
        "case_reopened",
        frozenset({"CaseReopened"}),
        Audience.CASE_REPRESENTATIVE,
        "case_reopened",
        ("email", "wecom", "dingtalk", "sms", "webhook"),
        summary="案件重新办理 / a case reopened: its representative",
    ),
)
"""Every rule, by name; ``RULES_BY_NAME`` looks one up."""

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}

RULE_EVENTS: frozenset[str] = frozenset(e for rule in RULES for e in rule.events)
"""The event types some rule reacts to (the others only reach subscribers and the feed)."""


@dataclass(frozen=True)
class RuleSetting:
    """A district's override of a rule: switched off, or fewer channels."""

    enabled: bool = True
    channels: tuple[Channel, ...] | None = None


@dataclass(frozen=True)
class CaseFacts:
    """What the service knows of a case, before the event at hand."""

    case_id: str
    opinion_id: str
    priority: str
    category_code: str | None
    station_code: str | None
    representative_id: str | None
    assigned_before: bool
    """Whether the case was assigned before this event (a first assignment is its opening)."""
    community: str | None = None
    response_due: datetime | None = None
    resolution_due: datetime | None = None


@dataclass(frozen=True)
class StationFacts:
    code: str
    name: str
    street_code: str | None
    head_representative_id: str | None
    liaison_officers: tuple[str, ...]


@dataclass(frozen=True)
class ResidentFacts:
    """The resident of an opinion, as far as the rules may know: whether to tell them."""

    subject_id: str | None
    reachable: bool
    """They left a phone number (sealed) and a tracking code was sealed with it."""
    consent: bool
    channel: str
    district_id: str | None = None
    """The district that took the opinion down, when not the case's (a case transferred
    from another district): where the resident's sealed contact and key are."""


@dataclass(frozen=True)
class Facts:
    """What the service knows around one event, loaded before :func:`plan` decides."""

    event: Event
    case: CaseFacts | None = None
    station: StationFacts | None = None
    street_supervisors: tuple[str, ...] = ()
    district_admins: tuple[str, ...] = ()
    departments: Mapping[str, str] = field(default_factory=dict)
    """Department name → the staff id of its contact."""
    department_staff: tuple[str, ...] = ()
    """The duty staff of the registered department the event names (a whistle to it, or
    a deadline it missed)."""
    resident: ResidentFacts | None = None
    contacts: Mapping[str, ContactEntry] = field(default_factory=dict)


@dataclass(frozen=True)
class Planned:
    """One delivery to make."""

    rule: str
    recipient_kind: str
    """``staff`` or ``resident``."""
    recipient: str
    """The staff id, or the resident's subject id."""
    channel: Channel
    template: str


def staff_needed(event: Event, facts: Facts) -> set[str]:
    """The staff ids whose contacts :func:`plan` may need for ``event`` (to load them)."""
    return {r for rule in RULES if event.event_type in rule.events for r in _staff(rule, facts)}


def plan(facts: Facts, settings: Mapping[str, RuleSetting] | None = None) -> list[Planned]:
    """The deliveries ``facts.event`` calls for under the district's rule settings."""
    settings = settings or {}
    out: list[Planned] = []
    for rule in RULES:
        if facts.event.event_type not in rule.events:
            continue
        setting = settings.get(rule.name, RuleSetting())
        if not setting.enabled:
            continue
        allowed = tuple(c for c in rule.channels if c in (setting.channels or rule.channels))
        if not allowed:
            continue
        if rule.audience is Audience.RESIDENT:
            resident = facts.resident
            if _tells_resident(rule, facts) and resident is not None and resident.subject_id:
                out.extend(
                    Planned(rule.name, "resident", resident.subject_id, c, rule.template)
                    for c in allowed
                    if c == "sms"
                )
            continue
        for staff_id in _staff(rule, facts):
            contact = facts.contacts.get(staff_id)
            for channel in channels_for(contact, allowed, every=rule.every_channel):
                out.append(Planned(rule.name, "staff", staff_id, channel, rule.template))
    return _unique(out)


def _tells_resident(rule: Rule, facts: Facts) -> bool:
    resident = facts.resident
    if resident is None or not resident.reachable or not resident.consent:
        return False
    if rule.name == "receipt":
        event = facts.event
        return isinstance(event, OpinionSubmitted) and event.channel in STAFF_TAKEN
    return True


def _staff(rule: Rule, facts: Facts) -> list[str]:
    """The staff ids ``rule`` tells of ``facts.event``, in a stable order, no repeats."""
    event, case, station = facts.event, facts.case, facts.station
    found: list[str] = []
    match rule.audience:
        case Audience.STATION_STAFF:
            urgent = case is not None and case.priority == Priority.URGENT.value
            first = case is not None and not case.assigned_before
            if isinstance(event, CaseAssigned) and urgent and first and station is not None:
                found = [*station.liaison_officers]
                if station.head_representative_id:
                    found.append(station.head_representative_id)
        case Audience.ASSIGNEE:
            if isinstance(event, CaseAssigned):
                if event.representative_id:
                    found = [event.representative_id]
                elif station is not None:
                    found = [*station.liaison_officers]
                else:
                    found = [*facts.district_admins]  # not placed anywhere: the district
        case Audience.NEW_REPRESENTATIVE:
            if isinstance(event, CaseTransferred) and event.to_representative_id:
                found = [event.to_representative_id]
        case Audience.RUNG:
            if isinstance(event, CaseOverdue):
                found = _rung(event, station, facts)
        case Audience.DEPARTMENT:
            if isinstance(event, CaseEscalated) and event.to_level == "department":
                if event.department_code is not None and facts.department_staff:
                    found = [*facts.department_staff]
                else:
                    staff = facts.departments.get(event.to_name)
                    found = [staff] if staff else []
            elif isinstance(event, CaseOverdue) and event.department_code is not None:
                found = [*facts.department_staff]
        case Audience.CASE_REPRESENTATIVE:
            if isinstance(event, CaseReopened):
                rep = event.representative_id or (case.representative_id if case else None)
                found = [rep] if rep else []
        case Audience.RESIDENT:
            found = []
    return list(dict.fromkeys(found))


def _rung(event: CaseOverdue, station: StationFacts | None, facts: Facts) -> list[str]:
    if event.escalation_level == "station_head":
        head = station.head_representative_id if station else None
        return [head] if head else []
    if event.escalation_level == "street":
        return [*facts.street_supervisors]
    if event.escalation_level == "district":
        return [*facts.district_admins]
    return []


def _unique(planned: Sequence[Planned]) -> list[Planned]:
    """One delivery per (recipient, channel): a person both station staff of an urgent case
    and its assignee hears once per channel, by the first rule that told them."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in planned:
        key = (p.recipient_kind, p.recipient, p.channel)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def template_context(event: Event, case: CaseFacts | None) -> dict[str, Any]:
    """What the templates may say about ``event``: the case's facts and the event's own
    fields that a message needs. Never a resident's personal data (opened at send time,
    and only for the resident's own messages)."""
    data: dict[str, Any] = {"event_type": event.event_type, "district_id": event.district_id}
    if case is not None:
        data.update(
            case_id=case.case_id,
            category_code=case.category_code,
            priority=case.priority,
            station_code=case.station_code,
            representative_id=case.representative_id,
            community=case.community,
            response_due=_iso(case.response_due),
            resolution_due=_iso(case.resolution_due),
        )
    match event:
        case CaseAssigned():
            data.update(
                station_code=event.station_code,
                representative_id=event.representative_id,
                queue=event.queue,
            )
        case CaseTransferred():
            data.update(
                station_code=event.to_station_code or data.get("station_code"),
                representative_id=event.to_representative_id,
                reason=event.reason,
            )
        case CaseReplied():
            data["message"] = event.message
        case CaseResolved():
            data["result"] = event.result
        case CaseConvertedToSuggestion():
            data["title"] = event.title
            data["reply_due"] = _iso(event.reply_due)
        case CaseOverdue():
            data.update(
                deadline=event.deadline,
                due=event.due.isoformat(),
                escalated_to=event.escalated_to,
                escalation_level=event.escalation_level,
                next_due=_iso(event.next_due),
                subject=event.subject,
                department_code=event.department_code,
            )
        case CaseEscalated():
            data.update(
                to_name=event.to_name,
                reason=event.reason,
                due=_iso(event.due),
                report_due=_iso(event.report_due),
                department_code=event.department_code,
            )
        case SuggestionAnswered():
            data.update(answer=event.answer, answered_by=event.answered_by)
        case CaseReopened():
            data.update(
                reason=event.reason,
                resolution_due=_iso(event.resolution_due) or data.get("resolution_due"),
            )
        case OpinionSubmitted():
            data["opinion_id"] = event.opinion_id
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
