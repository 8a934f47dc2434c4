"""The directory as routing sees it: a district's streets, communities, stations and
representatives at one moment (a snapshot built from the projection), with the lookups
that station choice and scoring need. No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from contracts.directory import (
    ReceptionRule,
    RepresentativeLevel,
    RoutingPolicyPublished,
    StationKind,
    TaxonomyPublished,
    WorkCalendarPublished,
)

EARTH_RADIUS_M = 6_371_008.8


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lat, long) points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Street:
    """A street (街道) and its working committee."""

    code: str
    name_zh: str
    committee_name_zh: str | None = None
    supervisors: frozenset[str] = frozenset()

    @property
    def committee(self) -> str:
        """The committee's name, e.g. 东湖街道人大工委."""
        return self.committee_name_zh or f"{self.name_zh}人大工委"


@dataclass(frozen=True, slots=True)
class Community:
    """A community (社区), its street and electoral district."""

    name: str
    street_code: str
    electoral_district: str | None = None
    position: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Station:
    """A liaison station."""

    code: str
    name_zh: str
    kind: StationKind
    street_code: str
    communities: frozenset[str] = frozenset()
    position: tuple[float, float] | None = None
    address: str | None = None
    star_rating: int | None = None
    head_representative_id: str | None = None
    liaison_officers: frozenset[str] = frozenset()
    active: bool = True


@dataclass(frozen=True, slots=True)
class Representative:
    """A people's-congress representative, with what routing matches on."""

    id: str
    name_zh: str
    level: RepresentativeLevel = RepresentativeLevel.DISTRICT
    electoral_district: str | None = None
    residence_community: str | None = None
    expertise: frozenset[str] = frozenset()
    contact_point: str | None = None
    leading_cadre: bool = False
    stations: frozenset[str] = frozenset()
    """The stations the representative is grouped into now (编组进站)."""
    active: bool = True
    reception_rules: tuple[ReceptionRule, ...] = ()
    """Their recurring reception days (``ReceptionRulesPublished``)."""


@dataclass(frozen=True, slots=True)
class ReceptionDay:
    """A day a representative receives residents at a station."""

    representative_id: str
    station_code: str
    day: date


@dataclass(frozen=True, slots=True)
class Department:
    """A functional department the stations can summon (吹哨)."""

    code: str
    name_zh: str
    duty_staff: frozenset[str] = frozenset()
    report_in: str = "1wd"
    respond_in: str = "5wd"
    categories: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A commissioner, district office staff or department staff member."""

    id: str
    role: str
    name_zh: str | None = None
    street_code: str | None = None
    communities: frozenset[str] = frozenset()
    department_code: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Spokesperson:
    """A citizen spokesperson (群众代言员) on a station's roster."""

    id: str
    station_code: str
    name_zh: str
    community: str | None = None
    appointed_on: date | None = None
    active: bool = True


# A station kind's rank when several serve the same community: the closest to residents.
KIND_RANK: dict[StationKind, int] = {
    StationKind.COMMUNITY: 0,
    StationKind.CONTACT_POINT: 1,
    StationKind.HOME: 2,
    StationKind.INDUSTRY: 3,
}


@dataclass(frozen=True)
class Directory:
    """One district's directory at one moment."""

    district_id: str
    name_zh: str
    timezone: str = "Asia/Shanghai"
    streets: Mapping[str, Street] = field(default_factory=dict)
    communities: Mapping[str, Community] = field(default_factory=dict)
    stations: Mapping[str, Station] = field(default_factory=dict)
    representatives: Mapping[str, Representative] = field(default_factory=dict)
    reception_days: tuple[ReceptionDay, ...] = ()
    """The days still to be held (cancelled and moved-from days left out)."""
    departments: Mapping[str, Department] = field(default_factory=dict)
    staff: Mapping[str, StaffMember] = field(default_factory=dict)
    spokespersons: Mapping[str, Spokesperson] = field(default_factory=dict)

    def active_department(self, code: str | None) -> Department | None:
        """The department of ``code`` if it is registered and not retired."""
        found = self.departments.get(code) if code else None
        return found if found is not None and found.active else None

    def department_named(self, name: str) -> Department | None:
        """The active department called ``name`` (a whistle naming it in words)."""
        return next((d for d in self.departments.values() if d.active and d.name_zh == name), None)

    def departments_of(self, staff_id: str) -> list[str]:
        """The departments ``staff_id`` acts for: as a registered member of its staff, or
        as one of its duty staff."""
        codes = {c for c, d in self.departments.items() if d.active and staff_id in d.duty_staff}
        member = self.staff.get(staff_id)
        if member is not None and member.active and member.department_code:
            codes.add(member.department_code)
        return sorted(codes)

    def active_station(self, code: str | None) -> Station | None:
        """The station of ``code`` if it exists and is not retired."""
        station = self.stations.get(code) if code else None
        return station if station is not None and station.active else None

    def stations_serving(self, community: str) -> list[Station]:
        """Active stations that serve ``community``, the closest kind first."""
        found = [s for s in self.stations.values() if s.active and community in s.communities]
        return sorted(found, key=lambda s: (KIND_RANK[s.kind], s.code))

    def nearest_station(self, point: tuple[float, float]) -> tuple[Station, float] | None:
        """The active station closest to ``point`` (ties: lower code), with its distance."""
        best: tuple[float, str, Station] | None = None
        for station in self.stations.values():
            if station.active and station.position is not None:
                key = (round(distance_m(point, station.position), 1), station.code, station)
                if best is None or key[:2] < best[:2]:
                    best = key
        return None if best is None else (best[2], best[0])

    def nearest_community(
        self, point: tuple[float, float], within_m: float = 1000.0
    ) -> Community | None:
        """The community whose centre is closest to ``point``, if within ``within_m``."""
        best: tuple[float, str, Community] | None = None
        for community in self.communities.values():
            if community.position is not None:
                d = distance_m(point, community.position)
                if d <= within_m and (best is None or (d, community.name) < best[:2]):
                    best = (d, community.name, community)
        return None if best is None else best[2]

    def candidates_at(self, station_code: str) -> list[Representative]:
        """Active representatives grouped into the station or having it as contact point."""
        return sorted(
            (
                r
                for r in self.representatives.values()
                if r.active and (station_code in r.stations or r.contact_point == station_code)
            ),
            key=lambda r: r.id,
        )

    def next_reception(self, representative_id: str, station_code: str, today: date) -> date | None:
        """The representative's next reception day at the station, today included."""
        days = [
            r.day
            for r in self.reception_days
            if r.representative_id == representative_id
            and r.station_code == station_code
            and r.day >= today
        ]
        return min(days) if days else None

    def street_of(self, station_code: str | None) -> Street | None:
        """The street of a station."""
        station = self.stations.get(station_code) if station_code else None
        return self.streets.get(station.street_code) if station else None

    def stations_of_liaison(self, staff_id: str) -> list[str]:
        """The codes of the stations whose liaison officers include ``staff_id``."""
        return sorted(c for c, s in self.stations.items() if staff_id in s.liaison_officers)

    def streets_of_supervisor(self, staff_id: str) -> list[str]:
        """The codes of the streets whose supervisors include ``staff_id``."""
        return sorted(c for c, s in self.streets.items() if staff_id in s.supervisors)


def reception_index(days: Iterable[ReceptionDay]) -> tuple[ReceptionDay, ...]:
    """Reception days in a stable order."""
    return tuple(sorted(days, key=lambda r: (r.day, r.representative_id, r.station_code)))


@dataclass(frozen=True)
class DistrictConfig:
    """A district's directory and published rules as they are now."""

    directory: Directory
    name_en: str | None = None
    taxonomy: TaxonomyPublished | None = None
    calendar: WorkCalendarPublished | None = None
    policy: RoutingPolicyPublished | None = None
    scheduled: frozenset[tuple[str, str, date]] = frozenset()
    """(representative, station, day) already scheduled."""
