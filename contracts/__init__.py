"""Minqing's public language: the events, their topics and their schemas."""

from __future__ import annotations

from contracts import cases, directory, intake, notifications
from contracts.base import Actor, ActorRole, Event, LatLong
from contracts.cases import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseLinked,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    Priority,
    ScoredCandidate,
)
from contracts.directory import (
    DistrictRegistered,
    ReceptionDayScheduled,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    RepresentativeLevel,
    RepresentativeRegistered,
    StationKind,
    StationRegistered,
)
from contracts.intake import (
    Channel,
    FeedbackSubmitted,
    Location,
    OnBehalfOf,
    OpinionSubmitted,
    OpinionSubmittedV1,
    OpinionWithdrawn,
    SubmitterRef,
)
from contracts.notifications import NotificationFailed, NotificationSent
from contracts.registry import EventRegistry, UnknownEventType, serialize

registry = EventRegistry()
for _module in (intake, cases, directory, notifications):
    registry.register(*_module.EVENTS)
    for _event_type, _from_version, _upcaster in getattr(_module, "UPCASTERS", ()):
        registry.upcaster(_event_type, _from_version, _upcaster)


def ce_type(event_type: str, schema_version: int) -> str:
    """The CloudEvents ``type`` of an event: ``cn.minqing.<context>.<EventName>.v<N>``."""
    model = registry.model(event_type, schema_version)
    return f"cn.minqing.{model.context}.{event_type}.v{schema_version}"


__all__ = [
    "Actor",
    "ActorRole",
    "CaseAccepted",
    "CaseAssigned",
    "CaseClosed",
    "CaseConvertedToSuggestion",
    "CaseEscalated",
    "CaseLinked",
    "CaseOpened",
    "CaseOverdue",
    "CaseReopened",
    "CaseReplied",
    "CaseResolved",
    "CaseTransferred",
    "Channel",
    "DistrictRegistered",
    "Event",
    "EventRegistry",
    "FeedbackSubmitted",
    "LatLong",
    "Location",
    "NotificationFailed",
    "NotificationSent",
    "OnBehalfOf",
    "OpinionSubmitted",
    "OpinionSubmittedV1",
    "OpinionWithdrawn",
    "Priority",
    "ReceptionDayScheduled",
    "RepresentativeJoinedStation",
    "RepresentativeLeftStation",
    "RepresentativeLevel",
    "RepresentativeRegistered",
    "ScoredCandidate",
    "StationKind",
    "StationRegistered",
    "SubmitterRef",
    "UnknownEventType",
    "ce_type",
    "registry",
    "serialize",
]
