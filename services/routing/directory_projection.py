"""The directory's read model in schema ``routing``, written in the transaction of its
events, and the district's configuration read back from it.

Directory events update the directory tables one by one; :func:`load_config` gives what
routing knows of a district (its directory, taxonomy, calendar and policy) as one
:class:`~services.routing.directory.DistrictConfig`, versioned so that a cached copy can
tell when it is stale.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from contracts.base import Event
from contracts.directory import (
    ActivityRecorded,
    ClassifierTrained,
    CommunityRegistered,
    DepartmentRegistered,
    DepartmentRetired,
    DistrictRegistered,
    ReceptionDayCancelled,
    ReceptionDayMoved,
    ReceptionDayScheduled,
    ReceptionRule,
    ReceptionRulesPublished,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    RepresentativeLevel,
    RepresentativeRegistered,
    RepresentativeRetired,
    RoutingPolicyPublished,
    SpokespersonRegistered,
    SpokespersonRetired,
    StaffMemberRegistered,
    StaffMemberRetired,
    StationKind,
    StationMoved,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    TaxonomyPublished,
    WorkCalendarPublished,
)
from contracts.registry import serialize
from eventkit.db import Conn
from services.routing.directory import (
    Community,
    Department,
    Directory,
    DistrictConfig,
    ReceptionDay,
    Representative,
    Spokesperson,
    StaffMember,
    Station,
    Street,
    reception_index,
)
from services.routing.liaison_projection import apply_liaison

DIRECTORY_CATEGORIES = ("district", "station", "representative")

R = TypeVar("R", bound=Event)


# --------------------------------------------------------------------------- directory


async def project_directory(conn: Conn, events: Sequence[Event]) -> None:
    """Apply directory events to the directory tables and bump their districts' version."""
    touched: set[str] = set()
    for event in events:
        await _apply_directory(conn, event)
        touched.add(event.district_id)
    if touched:
        await conn.execute(
            "UPDATE routing.districts SET config_version = config_version + 1, updated_at = now() "
            "WHERE district_id = ANY($1::text[])",
            sorted(touched),
        )


async def _apply_directory(conn: Conn, event: Event) -> None:
    d, at = event.district_id, event.occurred_at
    match event:
        case DistrictRegistered():
            await conn.execute(
                """
                INSERT INTO routing.districts
                    (district_id, name_zh, name_en, timezone, registered_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $5)
                ON CONFLICT (district_id) DO UPDATE SET name_zh = excluded.name_zh,
                    name_en = excluded.name_en, timezone = excluded.timezone,
                    updated_at = excluded.updated_at
                """,
                d,
                event.name_zh,
                event.name_en,
                event.timezone,
                at,
            )
        case StreetRegistered():
            await conn.execute(
                """
                INSERT INTO routing.streets
                    (district_id, street_code, name_zh, committee_name_zh, supervisors)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (district_id, street_code) DO UPDATE SET name_zh = excluded.name_zh,
                    committee_name_zh = excluded.committee_name_zh,
                    supervisors = excluded.supervisors
                """,
                d,
                event.street_code,
                event.name_zh,
                event.committee_name_zh,
                event.supervisors,
            )
        case CommunityRegistered():
            lat, long = _latlong(event.position)
            await conn.execute(
                """
                INSERT INTO routing.communities
                    (district_id, community, street_code, electoral_district, lat, long)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (district_id, community) DO UPDATE SET
                    street_code = excluded.street_code,
                    electoral_district = excluded.electoral_district,
                    lat = excluded.lat, long = excluded.long
                """,
                d,
                event.community,
                event.street_code,
                event.electoral_district,
                lat,
                long,
            )
        case StationRegistered():
            lat, long = _latlong(event.position)
            await conn.execute(
                """
                INSERT INTO routing.stations (district_id, station_code, name_zh, kind,
                    street_code, street_name_zh, communities, address, lat, long, star_rating,
                    head_representative_id, liaison_officers, active, registered_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, true, $14)
                ON CONFLICT (district_id, station_code) DO UPDATE SET
                    name_zh = excluded.name_zh, kind = excluded.kind,
                    street_code = excluded.street_code, street_name_zh = excluded.street_name_zh,
                    communities = excluded.communities, address = excluded.address,
                    lat = excluded.lat, long = excluded.long, star_rating = excluded.star_rating,
                    head_representative_id = excluded.head_representative_id,
                    liaison_officers = excluded.liaison_officers, active = true,
                    retired_at = NULL, retired_reason = NULL
                """,
                d,
                event.station_code,
                event.name_zh,
                event.kind.value,
                event.street_code,
                event.street_name_zh,
                event.communities,
                event.address,
                lat,
                long,
                event.star_rating,
                event.head_representative_id,
                event.liaison_officers,
                at,
            )
        case StationMoved():
            lat, long = _latlong(event.position)
            await conn.execute(
                """
                UPDATE routing.stations s SET street_code = $3, communities = $4, address = $5,
                    lat = $6, long = $7,
                    street_name_zh = coalesce((SELECT name_zh FROM routing.streets t
                        WHERE t.district_id = $1 AND t.street_code = $3), s.street_name_zh)
                 WHERE district_id = $1 AND station_code = $2
                """,
                d,
                event.station_code,
                event.street_code,
                event.communities,
                event.address,
                lat,
                long,
            )
        case StationRetired():
            await conn.execute(
                "UPDATE routing.stations SET active = false, retired_at = $3, retired_reason = $4 "
                "WHERE district_id = $1 AND station_code = $2",
                d,
                event.station_code,
                at,
                event.reason,
            )
        case RepresentativeRegistered():
            await conn.execute(
                """
                INSERT INTO routing.representatives (district_id, representative_id, name_zh,
                    level, electoral_district, residence_community, expertise, contact_point,
                    leading_cadre, active, registered_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10)
                ON CONFLICT (district_id, representative_id) DO UPDATE SET
                    name_zh = excluded.name_zh, level = excluded.level,
                    electoral_district = excluded.electoral_district,
                    residence_community = excluded.residence_community,
                    expertise = excluded.expertise, contact_point = excluded.contact_point,
                    leading_cadre = excluded.leading_cadre, active = true,
                    retired_at = NULL, retired_reason = NULL
                """,
                d,
                event.representative_id,
                event.name_zh,
                event.level.value,
                event.electoral_district,
                event.residence_community,
                event.expertise,
                event.contact_point,
                event.leading_cadre,
                at,
            )
        case RepresentativeRetired():
            await conn.execute(
                "UPDATE routing.representatives SET active = false, retired_at = $3, "
                "retired_reason = $4 WHERE district_id = $1 AND representative_id = $2",
                d,
                event.representative_id,
                at,
                event.reason,
            )
        case RepresentativeJoinedStation():
            await conn.execute(
                """
                INSERT INTO routing.memberships
                    (district_id, representative_id, station_code, joined_at)
                SELECT $1, $2, $3, $4
                 WHERE NOT EXISTS (SELECT 1 FROM routing.memberships WHERE district_id = $1
                       AND representative_id = $2 AND station_code = $3 AND left_at IS NULL)
                ON CONFLICT DO NOTHING
                """,
                d,
                event.representative_id,
                event.station_code,
                at,
            )
        case RepresentativeLeftStation():
            await conn.execute(
                "UPDATE routing.memberships SET left_at = $4 WHERE district_id = $1 "
                "AND representative_id = $2 AND station_code = $3 AND left_at IS NULL",
                d,
                event.representative_id,
                event.station_code,
                at,
            )
        case ReceptionDayScheduled():
            await conn.execute(
                """
                INSERT INTO routing.reception_days
                    (district_id, representative_id, station_code, day, starts_at, ends_at)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (district_id, representative_id, station_code, day) DO UPDATE SET
                    starts_at = excluded.starts_at, ends_at = excluded.ends_at
                """,
                d,
                event.representative_id,
                event.station_code,
                event.day,
                event.starts_at,
                event.ends_at,
            )
        case (
            ReceptionDayCancelled()
            | ReceptionDayMoved()
            | ReceptionRulesPublished()
            | DepartmentRegistered()
            | DepartmentRetired()
            | StaffMemberRegistered()
            | StaffMemberRetired()
            | SpokespersonRegistered()
            | SpokespersonRetired()
            | ActivityRecorded()
        ):
            await apply_liaison(conn, event)
        case TaxonomyPublished():
            await _set_rules(conn, d, "taxonomy", event)
        case WorkCalendarPublished():
            await _set_rules(conn, d, "calendar", event)
        case RoutingPolicyPublished():
            await _set_rules(conn, d, "policy", event)
        case ClassifierTrained():
            # The version in use, as the stream says (the fitted arrays are kept in
            # routing.classifier_models, which a rebuild leaves alone).
            await conn.execute(
                "UPDATE routing.districts SET classifier_version = $2 WHERE district_id = $1",
                d,
                event.version,
            )


async def _set_rules(conn: Conn, district_id: str, column: str, event: Event) -> None:
    # ``column`` is one of three literals above, never input.
    await conn.execute(
        f"UPDATE routing.districts SET {column} = $2 WHERE district_id = $1",
        district_id,
        serialize(event),
    )


def _latlong(position: Any) -> tuple[float | None, float | None]:
    return (position.lat, position.long) if position is not None else (None, None)


async def config_version(conn: Conn, district_id: str) -> int | None:
    """The district's directory version (None when the district is unknown)."""
    value = await conn.fetchval(
        "SELECT config_version FROM routing.districts WHERE district_id = $1", district_id
    )
    return None if value is None else int(value)


async def load_config(conn: Conn, district_id: str) -> tuple[int, DistrictConfig] | None:
    """The district's directory and rules from the read model, with their version."""
    row = await conn.fetchrow("SELECT * FROM routing.districts WHERE district_id = $1", district_id)
    if row is None:
        return None
    streets = {
        r["street_code"]: Street(
            r["street_code"], r["name_zh"], r["committee_name_zh"], frozenset(r["supervisors"])
        )
        for r in await conn.fetch(
            "SELECT * FROM routing.streets WHERE district_id = $1", district_id
        )
    }
    communities = {
        r["community"]: Community(
            r["community"], r["street_code"], r["electoral_district"], _point(r)
        )
        for r in await conn.fetch(
            "SELECT * FROM routing.communities WHERE district_id = $1", district_id
        )
    }
    stations = {
        r["station_code"]: Station(
            code=r["station_code"],
            name_zh=r["name_zh"],
            kind=StationKind(r["kind"]),
            street_code=r["street_code"],
            communities=frozenset(r["communities"]),
            position=_point(r),
            address=r["address"],
            star_rating=r["star_rating"],
            head_representative_id=r["head_representative_id"],
            liaison_officers=frozenset(r["liaison_officers"]),
            active=r["active"],
        )
        for r in await conn.fetch(
            "SELECT * FROM routing.stations WHERE district_id = $1", district_id
        )
    }
    members: dict[str, set[str]] = {}
    for r in await conn.fetch(
        "SELECT representative_id, station_code FROM routing.memberships "
        "WHERE district_id = $1 AND left_at IS NULL",
        district_id,
    ):
        members.setdefault(r["representative_id"], set()).add(r["station_code"])
    representatives = {
        r["representative_id"]: Representative(
            id=r["representative_id"],
            name_zh=r["name_zh"],
            level=RepresentativeLevel(r["level"]),
            electoral_district=r["electoral_district"],
            residence_community=r["residence_community"],
            expertise=frozenset(r["expertise"]),
            contact_point=r["contact_point"],
            leading_cadre=r["leading_cadre"],
            stations=frozenset(members.get(r["representative_id"], ())),
            active=r["active"],
            reception_rules=tuple(
                ReceptionRule.model_validate(x) for x in _json(r["reception_rules"])
            ),
        )
        for r in await conn.fetch(
            "SELECT * FROM routing.representatives WHERE district_id = $1", district_id
        )
    }
    rows = await conn.fetch(
        "SELECT representative_id, station_code, day, status FROM routing.reception_days "
        "WHERE district_id = $1",
        district_id,
    )
    known = frozenset((r["representative_id"], r["station_code"], r["day"]) for r in rows)
    days = [
        ReceptionDay(r["representative_id"], r["station_code"], r["day"])
        for r in rows
        if r["status"] == "scheduled"
    ]
    directory = Directory(
        district_id=district_id,
        name_zh=row["name_zh"],
        timezone=row["timezone"],
        streets=streets,
        communities=communities,
        stations=stations,
        representatives=representatives,
        reception_days=reception_index(days),
        **await _liaison_directory(conn, district_id),
    )
    config = DistrictConfig(
        directory=directory,
        name_en=row["name_en"],
        taxonomy=_rules(TaxonomyPublished, row["taxonomy"]),
        calendar=_rules(WorkCalendarPublished, row["calendar"]),
        policy=_rules(RoutingPolicyPublished, row["policy"]),
        scheduled=known,
    )
    return int(row["config_version"]), config


async def _rows(conn: Conn, table: str, district_id: str) -> list[Any]:
    # ``table`` is a literal of this module, never input.
    return list(
        await conn.fetch(f"SELECT * FROM routing.{table} WHERE district_id = $1", district_id)
    )


async def _liaison_directory(conn: Conn, district_id: str) -> dict[str, Any]:
    """The district's departments, staff members and spokespersons."""
    departments = {
        r["department_code"]: Department(
            code=r["department_code"],
            name_zh=r["name_zh"],
            duty_staff=frozenset(r["duty_staff"]),
            report_in=r["report_in"],
            respond_in=r["respond_in"],
            categories=tuple(r["categories"]),
            active=r["active"],
        )
        for r in await _rows(conn, "departments", district_id)
    }
    staff = {
        r["staff_id"]: StaffMember(
            id=r["staff_id"],
            role=r["role"],
            name_zh=r["name_zh"],
            street_code=r["street_code"],
            communities=frozenset(r["communities"]),
            department_code=r["department_code"],
            active=r["active"],
        )
        for r in await _rows(conn, "staff_members", district_id)
    }
    spokespersons = {
        r["spokesperson_id"]: Spokesperson(
            id=r["spokesperson_id"],
            station_code=r["station_code"],
            name_zh=r["name_zh"],
            community=r["community"],
            appointed_on=r["appointed_on"],
            active=r["active"],
        )
        for r in await _rows(conn, "spokespersons", district_id)
    }
    return {"departments": departments, "staff": staff, "spokespersons": spokespersons}


def _json(data: Any) -> Any:
    return json.loads(data) if isinstance(data, str) else data


def _rules(model: type[R], data: Any) -> R | None:
    if data is None:
        return None
    if isinstance(data, str):
        data = json.loads(data)
    return model.model_validate(data)


def _point(row: Any) -> tuple[float, float] | None:
    return None if row["lat"] is None or row["long"] is None else (row["lat"], row["long"])
