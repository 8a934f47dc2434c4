"""What each event changes in the projection tables, as data: :class:`Put` a row,
:class:`Patch` some columns of one.

Pure. The live consumer turns the changes into SQL in the event's transaction
(:mod:`services.reporting.projection`); a rebuild applies them to tables in memory
(:class:`MemoryTables`) and copies those into the shadow slot. One function decides
both, so a rebuild cannot disagree with the live projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from contracts import cases
from contracts.base import Event
from contracts.directory import (
    ActivityRecorded,
    CommunityRegistered,
    DistrictRegistered,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    RepresentativeRegistered,
    RepresentativeRetired,
    StationMoved,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    TaxonomyPublished,
)
from contracts.intake import FeedbackSubmitted, QrScansRecorded
from services.reporting.tables import (
    ACTIVITIES,
    CATEGORIES,
    COMMUNITIES,
    DISTRICTS,
    MEMBERSHIPS,
    RATINGS,
    REPRESENTATIVES,
    SCANS,
    STATIONS,
    STREETS,
    TABLES,
    Table,
)


@dataclass(frozen=True, slots=True)
class Put:
    """Insert ``row`` (in the table's column order), replacing the row with its key."""

    table: Table
    row: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Patch:
    """Set some columns of the row with ``key``, if there is one."""

    table: Table
    key: tuple[Any, ...]
    values: Mapping[str, Any]


Change = Put | Patch

DIRECTORY_EVENTS: Final[tuple[type[Event], ...]] = (
    DistrictRegistered,
    StreetRegistered,
    CommunityRegistered,
    TaxonomyPublished,
    StationRegistered,
    StationMoved,
    StationRetired,
    RepresentativeRegistered,
    RepresentativeRetired,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    ActivityRecorded,
)
"""The directory events reporting projects (names, streets, stations, members, staff,
representatives' activities)."""


def directory_changes(event: Event, at: datetime) -> list[Change]:
    """What a directory event changes (nothing for the kinds reporting does not keep)."""
    d = event.district_id
    row: tuple[Any, ...]
    key: tuple[Any, ...]
    match event:
        case DistrictRegistered():
            return [Put(DISTRICTS, (d, event.name_zh, event.name_en, event.timezone))]
        case StreetRegistered():
            row = (d, event.street_code, event.name_zh, list(event.supervisors))
            return [Put(STREETS, row)]
        case CommunityRegistered():
            return [Put(COMMUNITIES, (d, event.community, event.street_code))]
        case TaxonomyPublished():
            return [
                Put(CATEGORIES, (d, c.code, c.name_zh, c.name_en, event.version))
                for c in event.categories
            ]
        case StationRegistered():
            row = (
                d,
                event.station_code,
                event.name_zh,
                event.kind.value,
                event.street_code,
                event.star_rating,
                list(event.liaison_officers),
                True,
            )
            return [Put(STATIONS, row)]
        case StationMoved():
            key = (d, event.station_code)
            return [Patch(STATIONS, key, {"street_code": event.street_code})]
        case StationRetired():
            return [Patch(STATIONS, (d, event.station_code), {"active": False})]
        case RepresentativeRegistered():
            row = (
                d,
                event.representative_id,
                event.name_zh,
                event.level.value,
                True,
                event.electoral_district,
                event.leading_cadre,
            )
            return [Put(REPRESENTATIVES, row)]
        case RepresentativeRetired():
            return [Patch(REPRESENTATIVES, (d, event.representative_id), {"active": False})]
        case RepresentativeJoinedStation():
            row = (d, event.representative_id, event.station_code, at, None)
            return [Put(MEMBERSHIPS, row)]
        case RepresentativeLeftStation():
            key = (d, event.representative_id, event.station_code)
            return [Patch(MEMBERSHIPS, key, {"left_at": at})]
        case ActivityRecorded():
            # Recorded again: replaced. Residents are counted, never named.
            row = (
                d,
                event.activity_id,
                event.station_code,
                event.kind.value,
                event.title,
                event.held_on,
                event.starts_at,
                event.ends_at,
                list(event.representatives),
                list(event.spokespersons),
                event.residents_met,
                event.opinions_taken,
                event.summary,
                at,
            )
            return [Put(ACTIVITIES, row)]
    return []


def rating_changes(
    event: FeedbackSubmitted, at: datetime, district_id: str | None = None
) -> list[Change]:
    """A resident's rating of one resolution (the comment is never kept), counted in the
    rated case's district (``district_id``: the case's, when it continues the opinion
    in another district after a transfer; the event's otherwise)."""
    row = (
        event.case_id,
        event.resolution_seq,
        district_id or event.district_id,
        event.satisfaction,
        event.resolved,
        at,
    )
    return [Put(RATINGS, row)]


def scan_changes(event: QrScansRecorded, at: datetime) -> list[Change]:
    """A station's QR page views and opinions of a day, as of this event (the latest
    event of a station's day holds the day's totals)."""
    row = (event.district_id, event.station_code, event.day, event.scans, event.opinions, at)
    return [Put(SCANS, row)]


HANDLED: Final[tuple[type[Event], ...]] = (
    *DIRECTORY_EVENTS,
    FeedbackSubmitted,
    QrScansRecorded,
    *cases.EVENTS,
)
"""Every event type reporting projects: its consumer handles these, and a rebuild folds
exactly these (the consumer's version gate counts only the types it handles)."""


class MemoryTables:
    """Projection tables in memory, for a rebuild: ``rows[table][key] = row``."""

    def __init__(self, tables: Iterable[Table] = TABLES.values()) -> None:
        self.rows: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {t.name: {} for t in tables}
        self.dirty: dict[str, set[tuple[Any, ...]]] = {t.name: set() for t in tables}

    def apply(self, changes: Iterable[Change]) -> None:
        """Apply ``changes`` as the SQL writer would, noting which keys changed."""
        for change in changes:
            table = change.table
            rows = self.rows[table.name]
            if isinstance(change, Put):
                key = table.key_of(change.row)
                rows[key] = change.row
            else:
                key = change.key
                old = rows.get(key)
                if old is None:
                    continue
                new = list(old)
                for column, value in change.values.items():
                    new[table.columns.index(column)] = value
                rows[key] = tuple(new)
            self.dirty[table.name].add(key)
