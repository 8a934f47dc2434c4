"""Minqing's public language: the events, their topics and their schemas."""

from __future__ import annotations

from contracts import audit, cases, directory, intake, notifications
from contracts.audit import AuditSealed, PersonalDataOpened, SealedStream
from contracts.base import Actor, ActorRole, Event, LatLong
from contracts.cases import (
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
    Priority,
    ScoredCandidate,
)
from contracts.directory import (
    CalendarYear,
    ClassifierTrained,
    CommunityRegistered,
    DeadlinePair,
    DistrictRegistered,
    PriorityDeadlines,
    ReceptionDayScheduled,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    RepresentativeLevel,
    RepresentativeRegistered,
    RepresentativeRetired,
    RoutingPolicyPublished,
    ScoreWeights,
    StationKind,
    StationMoved,
    StationRegistered,
    StationRetired,
    StorePosition,
    StreetRegistered,
    TaxonomyCategory,
    TaxonomyPublished,
    WorkCalendarPublished,
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

REGISTRY = EventRegistry()
"""Every event of every context, with the upcasters of their older versions."""
for _module in (intake, cases, directory, notifications, audit):
    REGISTRY.register(*_module.EVENTS)
    for _event_type, _from_version, _upcaster in getattr(_module, "UPCASTERS", ()):
        REGISTRY.upcaster(_event_type, _from_version, _upcaster)


__all__ = [
    "REGISTRY",
    "Actor",
    "ActorRole",
    "AuditSealed",
    "CalendarYear",
    "CaseAccepted",
    "CaseAssigned",
    "CaseClassified",
    "CaseClosed",
    "CaseConvertedToSuggestion",
    "CaseEscalated",
    "CaseLinked",
    "CaseMerged",
    "CaseOpened",
    "CaseOverdue",
    "CaseReopened",
    "CaseReplied",
    "CaseResolved",
    "CaseTransferred",
    "Channel",
    "ClassifierTrained",
    "CommunityRegistered",
    "DeadlinePair",
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
    "PersonalDataOpened",
    "Priority",
    "PriorityDeadlines",
    "ReceptionDayScheduled",
    "RepresentativeJoinedStation",
    "RepresentativeLeftStation",
    "RepresentativeLevel",
    "RepresentativeRegistered",
    "RepresentativeRetired",
    "RoutingPolicyPublished",
    "ScoreWeights",
    "ScoredCandidate",
    "SealedStream",
    "StationKind",
    "StationMoved",
    "StationRegistered",
    "StationRetired",
    "StorePosition",
    "StreetRegistered",
    "SubmitterRef",
    "TaxonomyCategory",
    "TaxonomyPublished",
    "UnknownEventType",
    "WorkCalendarPublished",
    "serialize",
]
