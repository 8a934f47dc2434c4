"""The directory events a district file (or an admin's change) implies.

:func:`plan_changes` compares what a :class:`~services.routing.district_file.DirectoryChanges`
describes with the district as it is (a :class:`~services.routing.directory.DistrictConfig`)
and returns only the differences, so importing the same file twice changes nothing, and a
station or representative removed from service keeps its history (it is retired, never
deleted). Pure: the caller passes the current directory, the time and the actor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from contracts.base import Actor, Event, LatLong
from contracts.directory import (
    ActivityRecorded,
    CommunityRegistered,
    DistrictRegistered,
    ReceptionDayScheduled,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    RepresentativeRegistered,
    RepresentativeRetired,
    RoutingPolicyPublished,
    StationMoved,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    TaxonomyPublished,
    WorkCalendarPublished,
)
from services.routing.deadlines import Allowance
from services.routing.directory import Directory, DistrictConfig
from services.routing.district_file import (
    NOT_IN_FILE,
    CalendarEntry,
    DirectoryChanges,
    DistrictFileError,
    FileEntry,
    PolicyEntry,
    RepresentativeEntry,
    StationEntry,
    TaxonomyEntry,
)
from services.routing.liaison_plan import liaison_problems, plan_liaison, plan_reception, rules_of


@dataclass
class Plan:
    """The events to append, in order, and what they mean in words."""

    events: list[Event] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        """Append an event and count it by type."""
        self.events.append(event)
        self.summary[event.event_type] = self.summary.get(event.event_type, 0) + 1


# --------------------------------------------------------------------------- planning


def plan_changes(
    current: DistrictConfig | None,
    changes: DirectoryChanges,
    *,
    district_id: str,
    actor: Actor,
    now: datetime,
    today: date,
    retire_missing: bool = False,
    activities: Mapping[str, ActivityRecorded] | None = None,
) -> Plan:
    """The directory events that bring ``current`` to what ``changes`` describes.

    Parts that ``changes`` leaves out are left alone; with ``retire_missing``, stations
    and representatives absent from ``changes`` are retired (for a whole-file import).
    ``activities`` are the recorded activities among those ``changes`` names, by id.
    Raises :class:`DistrictFileError` listing every reference that does not resolve.
    """
    if changes.district is not None and changes.district.code != district_id:
        raise DistrictFileError(
            [f"区代码不符 / the file is for district {changes.district.code}, not {district_id}"]
        )
    if current is None and changes.district is None:
        raise DistrictFileError([f"区 {district_id} 尚未登记 / district {district_id} is unknown"])
    _validate(current, changes)
    plan = Plan()
    base: dict[str, Any] = {"district_id": district_id, "occurred_at": now, "actor": actor}
    directory = current.directory if current else None

    if changes.district is not None:
        d = changes.district
        if (
            current is None
            or directory is None
            or (directory.name_zh, current.name_en, directory.timezone)
            != (d.name_zh, d.name_en, d.timezone)
        ):
            plan.add(
                DistrictRegistered(
                    **base, name_zh=d.name_zh, name_en=d.name_en, timezone=d.timezone
                )
            )

    for street in changes.streets:
        old = directory.streets.get(street.code) if directory else None
        if (
            old is None
            or old.name_zh != street.name_zh
            or old.committee_name_zh != street.committee_name_zh
            or old.supervisors != frozenset(street.supervisors)
        ):
            plan.add(
                StreetRegistered(
                    **base,
                    street_code=street.code,
                    name_zh=street.name_zh,
                    committee_name_zh=street.committee_name_zh,
                    supervisors=sorted(street.supervisors),
                )
            )
        for community in street.communities:
            known = directory.communities.get(community.name) if directory else None
            position = _point(community.position)
            if known is None or (
                known.street_code,
                known.electoral_district,
                known.position,
            ) != (street.code, community.electoral_district, position):
                plan.add(
                    CommunityRegistered(
                        **base,
                        community=community.name,
                        street_code=street.code,
                        electoral_district=community.electoral_district,
                        position=community.position,
                    )
                )

    streets_zh = {s.code: s.name_zh for s in changes.streets}
    if directory:
        streets_zh = {c: s.name_zh for c, s in directory.streets.items()} | streets_zh
    listed_stations = {s.code for s in changes.stations}
    for station in changes.stations:
        _plan_station(plan, base, directory, station, streets_zh)
    if retire_missing and directory:
        for code, old_station in sorted(directory.stations.items()):
            if code not in listed_stations and old_station.active:
                plan.add(StationRetired(**base, station_code=code, reason=NOT_IN_FILE))

    plan_liaison(plan.add, base, directory, changes, activities or {})

    listed_reps = {r.id for r in changes.representatives}
    scheduled = set(current.scheduled) if current else set()
    for rep in changes.representatives:
        _plan_representative(plan, base, directory, rep, scheduled, today)
    if retire_missing and directory:
        for rep_id, old_rep in sorted(directory.representatives.items()):
            if rep_id not in listed_reps and old_rep.active:
                for code in sorted(old_rep.stations):
                    plan.add(
                        RepresentativeLeftStation(
                            **base, representative_id=rep_id, station_code=code
                        )
                    )
                plan.add(
                    RepresentativeRetired(
                        **base,
                        representative_id=rep_id,
                        reason="不在区目录文件中 / not in the file",
                    )
                )

    if changes.taxonomy is not None:
        payload = changes.taxonomy.model_dump()
        old_tax = current.taxonomy if current else None
        if old_tax is None or _rules(old_tax, TaxonomyEntry) != payload:
            version = old_tax.version + 1 if old_tax else 1
            plan.add(TaxonomyPublished(**base, version=version, **payload))
    if changes.calendar is not None:
        payload = changes.calendar.model_dump()
        old_cal = current.calendar if current else None
        if old_cal is None or _rules(old_cal, CalendarEntry) != payload:
            version = old_cal.version + 1 if old_cal else 1
            plan.add(WorkCalendarPublished(**base, version=version, **payload))
    if changes.policy is not None:
        payload = changes.policy.model_dump()
        old_policy = current.policy if current else None
        if old_policy is None or _rules(old_policy, PolicyEntry) != payload:
            version = old_policy.version + 1 if old_policy else 1
            plan.add(RoutingPolicyPublished(**base, version=version, **payload))
    return plan


def _rules(published: Event, entry: type[FileEntry]) -> dict[str, Any]:
    """The rule part of a published event, in the shape of its file entry."""
    data = published.model_dump()
    return entry.model_validate({k: data[k] for k in entry.model_fields}).model_dump()


def _point(position: LatLong | None) -> tuple[float, float] | None:
    return (position.lat, position.long) if position is not None else None


def _plan_station(
    plan: Plan,
    base: dict[str, Any],
    directory: Directory | None,
    station: StationEntry,
    streets_zh: dict[str, str],
) -> None:
    old = directory.stations.get(station.code) if directory else None
    if station.retired:
        if old is not None and old.active:
            plan.add(
                StationRetired(**base, station_code=station.code, reason=station.retired_reason)
            )
        if old is not None:
            return
    details = (
        station.name_zh,
        station.kind,
        station.star_rating,
        station.head,
        frozenset(station.liaison_officers),
    )
    place = (
        station.street,
        frozenset(station.communities),
        station.address,
        _point(station.position),
    )
    registered = StationRegistered(
        **base,
        station_code=station.code,
        name_zh=station.name_zh,
        kind=station.kind,
        street_code=station.street,
        street_name_zh=streets_zh.get(station.street),
        communities=list(station.communities),
        address=station.address,
        position=station.position,
        star_rating=station.star_rating,
        head_representative_id=station.head,
        liaison_officers=list(station.liaison_officers),
    )
    if old is None or not old.active:
        plan.add(registered)
        if station.retired:
            plan.add(
                StationRetired(**base, station_code=station.code, reason=station.retired_reason)
            )
        return
    old_details = (
        old.name_zh,
        old.kind,
        old.star_rating,
        old.head_representative_id,
        old.liaison_officers,
    )
    old_place = (old.street_code, old.communities, old.address, old.position)
    if old_details != details:
        plan.add(registered)
    elif old_place != place:
        plan.add(
            StationMoved(
                **base,
                station_code=station.code,
                street_code=station.street,
                communities=list(station.communities),
                address=station.address,
                position=station.position,
            )
        )


def _plan_representative(
    plan: Plan,
    base: dict[str, Any],
    directory: Directory | None,
    rep: RepresentativeEntry,
    scheduled: set[tuple[str, str, date]],
    today: date,
) -> None:
    old = directory.representatives.get(rep.id) if directory else None
    ids = {"representative_id": rep.id}
    if rep.retired:
        if old is not None and old.active:
            for code in sorted(old.stations):
                plan.add(RepresentativeLeftStation(**base, **ids, station_code=code))
            plan.add(RepresentativeRetired(**base, **ids, reason=rep.retired_reason))
        if old is not None:
            return
    details = (
        rep.name_zh,
        rep.level,
        rep.electoral_district,
        rep.residence_community,
        frozenset(rep.expertise),
        rep.contact_point,
        rep.leading_cadre,
    )
    old_details = (
        (
            old.name_zh,
            old.level,
            old.electoral_district,
            old.residence_community,
            old.expertise,
            old.contact_point,
            old.leading_cadre,
        )
        if old is not None
        else None
    )
    if old is None or not old.active or old_details != details:
        plan.add(
            RepresentativeRegistered(
                **base,
                **ids,
                name_zh=rep.name_zh,
                level=rep.level,
                electoral_district=rep.electoral_district,
                residence_community=rep.residence_community,
                expertise=list(rep.expertise),
                contact_point=rep.contact_point,
                leading_cadre=rep.leading_cadre,
            )
        )
    if rep.retired:  # recorded for the history only
        plan.add(RepresentativeRetired(**base, **ids, reason=rep.retired_reason))
        return
    current_stations = old.stations if old is not None and old.active else frozenset()
    wanted = list(dict.fromkeys(rep.stations))
    for code in sorted(current_stations - set(wanted)):
        plan.add(RepresentativeLeftStation(**base, **ids, station_code=code))
    for code in wanted:
        if code not in current_stations:
            plan.add(RepresentativeJoinedStation(**base, **ids, station_code=code))
    for entry in rep.reception:
        key = (rep.id, entry.station, entry.day) if entry.day is not None else None
        if key is not None and key not in scheduled:
            scheduled.add(key)
            plan.add(
                ReceptionDayScheduled(
                    **base,
                    **ids,
                    station_code=entry.station,
                    day=entry.day,
                    starts_at=entry.starts_at,
                    ends_at=entry.ends_at,
                )
            )
    plan_reception(plan.add, base, directory, rep.id, rules_of(rep.reception), scheduled, today)


def _validate(current: DistrictConfig | None, changes: DirectoryChanges) -> None:
    directory = current.directory if current else None
    problems: list[str] = []
    streets = {s.code for s in changes.streets} | set(directory.streets if directory else ())
    communities = {c.name for s in changes.streets for c in s.communities}
    communities |= set(directory.communities if directory else ())
    stations = {s.code: not s.retired for s in changes.stations}
    if directory:
        stations = {c: s.active for c, s in directory.stations.items()} | stations
    reps = {r.id for r in changes.representatives} | set(
        directory.representatives if directory else ()
    )

    def dup(kind: str, codes: Iterable[str]) -> None:
        seen: set[str] = set()
        for code in codes:
            if code in seen:
                problems.append(f"{kind} {code} 重复 / listed twice")
            seen.add(code)

    dup("街道 street", (s.code for s in changes.streets))
    dup("社区 community", (c.name for s in changes.streets for c in s.communities))
    dup("联络站 station", (s.code for s in changes.stations))
    dup("代表 representative", (r.id for r in changes.representatives))
    for station in changes.stations:
        if station.street not in streets:
            problems.append(f"联络站 {station.code}: 街道 {station.street} 不存在 / unknown street")
        for name in station.communities:
            if name not in communities:
                problems.append(f"联络站 {station.code}: 社区 {name} 不存在 / unknown community")
        if station.head is not None and station.head not in reps:
            problems.append(f"联络站 {station.code}: 站长 {station.head} 不是代表 / unknown head")
    for rep in changes.representatives:
        for code in [*rep.stations, *(e.station for e in rep.reception)]:
            if not stations.get(code, False) and not rep.retired:
                problems.append(
                    f"代表 {rep.id}: 联络站 {code} 不存在或已撤销 / unknown or retired station"
                )
        if rep.contact_point is not None and rep.contact_point not in stations:
            problems.append(
                f"代表 {rep.id}: 联系点 {rep.contact_point} 不存在 / unknown contact point"
            )
        for entry in rep.reception:
            rules = sum(x is not None for x in (entry.day, entry.monthly, entry.weekly))
            if rules != 1:
                problems.append(
                    f"代表 {rep.id}: 接待日须且只须给出 day、monthly、weekly 之一 / "
                    "a reception entry needs exactly one of day, monthly, weekly"
                )
    problems += liaison_problems(directory, changes, streets, communities, stations, reps)
    if changes.taxonomy is not None:
        tax = changes.taxonomy
        dup("分类 category", (c.code for c in tax.categories))
        codes = {c.code for c in tax.categories}
        if tax.urgent_category is not None and tax.urgent_category not in codes:
            problems.append(f"分类 {tax.urgent_category} 不存在 / unknown urgent_category")
        if tax.default_deadlines.normal is None:
            problems.append("须给出一般事项的默认期限 / default_deadlines.normal is required")
        for pair in _pairs(tax):
            for text in (pair.response, pair.resolution):
                Allowance.parse(text)
    if problems:
        raise DistrictFileError(problems)


def _pairs(tax: TaxonomyEntry) -> list[Any]:
    tables = [tax.default_deadlines, *(c.deadlines for c in tax.categories if c.deadlines)]
    return [p for t in tables for p in (t.normal, t.important, t.urgent) if p is not None]
