"""Intake's view of the directory: districts, stations and representatives.

Learned from the directory events on ``minqing.directory.v1`` (the handlers below write
``intake.districts``, ``intake.stations``...) and read by submissions, the QR form, the
station list and the tracking timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from contracts import (
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
from eventkit.consumer import Consumer, HandlerContext
from services.intake.domain import StationInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class District:
    """A district (the tenant) as registered."""

    district_id: str
    name_zh: str
    name_en: str | None
    timezone: ZoneInfo


@dataclass(frozen=True)
class Station:
    """A liaison station as shown to residents."""

    district_id: str
    station_code: str
    name_zh: str
    kind: str
    street_code: str | None
    street_name_zh: str | None
    communities: tuple[str, ...]
    address: str | None
    lat: float | None
    long: float | None
    star_rating: int | None
    retired: bool

    def info(self) -> StationInfo:
        """What the domain's decisions need of it."""
        return StationInfo(
            self.district_id, self.station_code, self.name_zh, self.retired, self.communities
        )

    def to_json(self) -> dict[str, Any]:
        """The station for the JSON API."""
        return {
            "district": self.district_id,
            "station_code": self.station_code,
            "name_zh": self.name_zh,
            "kind": self.kind,
            "street_code": self.street_code,
            "street_name_zh": self.street_name_zh,
            "communities": list(self.communities),
            "address": self.address,
            "position": (
                {"lat": self.lat, "long": self.long}
                if self.lat is not None and self.long is not None
                else None
            ),
            "star_rating": self.star_rating,
        }


def _timezone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return SHANGHAI


def _station(row: asyncpg.Record) -> Station:
    return Station(
        district_id=row["district_id"],
        station_code=row["station_code"],
        name_zh=row["name_zh"],
        kind=row["kind"],
        street_code=row["street_code"],
        street_name_zh=row["street_name_zh"],
        communities=tuple(row["communities"] or ()),
        address=row["address"],
        lat=row["lat"],
        long=row["long"],
        star_rating=row["star_rating"],
        retired=row["retired_at"] is not None,
    )


_STATIONS = """
    SELECT s.district_id, s.station_code, s.name_zh, s.kind, s.street_code,
           coalesce(s.street_name_zh, st.name_zh) AS street_name_zh, s.communities, s.address,
           s.lat, s.long, s.star_rating, s.retired_at
      FROM intake.stations s
      LEFT JOIN intake.streets st
        ON st.district_id = s.district_id AND st.street_code = s.street_code
"""


class Directory:
    """Reads of the directory tables, with a short cache for the submission path."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._ttl = cache_seconds
        self._clock = clock
        self._stations_by_code: dict[str, tuple[float, list[StationInfo]]] = {}
        self._districts: dict[str, tuple[float, District | None]] = {}

    async def stations_with_code(self, station_code: str) -> list[StationInfo]:
        """Every station with this code, in every district (cached briefly)."""
        now = self._clock()
        cached = self._stations_by_code.get(station_code)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        rows = await self._pool.fetch(f"{_STATIONS} WHERE s.station_code = $1", station_code)
        found = [_station(r).info() for r in rows]
        if len(self._stations_by_code) > 10_000:
            self._stations_by_code.clear()
        self._stations_by_code[station_code] = (now, found)
        return found

    async def district(self, district_id: str) -> District | None:
        """The district, or None when it is not registered (cached briefly)."""
        now = self._clock()
        cached = self._districts.get(district_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        row = await self._pool.fetchrow(
            "SELECT district_id, name_zh, name_en, timezone FROM intake.districts "
            "WHERE district_id = $1",
            district_id,
        )
        district = (
            None
            if row is None
            else District(row["district_id"], row["name_zh"], row["name_en"], _timezone(row[3]))
        )
        if len(self._districts) > 10_000:
            self._districts.clear()
        self._districts[district_id] = (now, district)
        return district

    async def district_ids(self) -> list[str]:
        """Every registered district."""
        rows = await self._pool.fetch("SELECT district_id FROM intake.districts ORDER BY 1")
        return [r["district_id"] for r in rows]

    async def stations(self, district_id: str) -> list[Station]:
        """The district's open stations: homes first, then by street and code."""
        rows = await self._pool.fetch(
            f"""{_STATIONS}
             WHERE s.district_id = $1 AND s.retired_at IS NULL
             ORDER BY s.street_code NULLS LAST, s.kind <> 'home', s.station_code
            """,
            district_id,
        )
        return [_station(r) for r in rows]

    async def station(self, district_id: str, station_code: str) -> Station | None:
        """One station of a district."""
        row = await self._pool.fetchrow(
            f"{_STATIONS} WHERE s.district_id = $1 AND s.station_code = $2",
            district_id,
            station_code,
        )
        return None if row is None else _station(row)

    async def communities_near(self, station: Station) -> tuple[str, ...]:
        """The communities a station serves, or else those of its street (a contact point
        in a market serves no community of its own)."""
        if station.communities:
            return station.communities
        rows = await self._pool.fetch(
            "SELECT community FROM intake.communities "
            "WHERE district_id = $1 AND street_code = $2 ORDER BY community",
            station.district_id,
            station.street_code,
        )
        return tuple(r["community"] for r in rows)

    async def representatives_of(self, district_id: str, station_code: str) -> list[str]:
        """Names of the representatives grouped into a station (编组进站)."""
        rows = await self._pool.fetch(
            """
            SELECT r.name_zh FROM intake.station_representatives s
              JOIN intake.representatives r USING (district_id, representative_id)
             WHERE s.district_id = $1 AND s.station_code = $2 AND r.retired_at IS NULL
             ORDER BY r.name_zh
            """,
            district_id,
            station_code,
        )
        return [r["name_zh"] for r in rows]

    async def names(
        self,
        district_ids: Sequence[str],
        station_codes: Sequence[str],
        representative_ids: Sequence[str],
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Names of the given stations and representatives of some districts (a case
        transferred to another district is handled by that district's people)."""
        stations = await self._pool.fetch(
            "SELECT station_code, name_zh FROM intake.stations "
            "WHERE district_id = ANY($1::text[]) AND station_code = ANY($2::text[])",
            list(set(district_ids)),
            list(set(station_codes)),
        )
        reps = await self._pool.fetch(
            "SELECT representative_id, name_zh FROM intake.representatives "
            "WHERE district_id = ANY($1::text[]) AND representative_id = ANY($2::text[])",
            list(set(district_ids)),
            list(set(representative_ids)),
        )
        return (
            {r["station_code"]: r["name_zh"] for r in stations},
            {r["representative_id"]: r["name_zh"] for r in reps},
        )

    async def district_names(self) -> dict[str, str]:
        """district id → Chinese name, for transfers to another district."""
        rows = await self._pool.fetch("SELECT district_id, name_zh FROM intake.districts")
        return {r["district_id"]: r["name_zh"] for r in rows}


# --- learning the directory from its events --------------------------------------------


async def _district_registered(event: DistrictRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.districts (district_id, name_zh, name_en, timezone)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (district_id) DO UPDATE
           SET name_zh = excluded.name_zh, name_en = excluded.name_en,
               timezone = excluded.timezone, updated_at = now()
        """,
        event.district_id,
        event.name_zh,
        event.name_en,
        event.timezone,
    )


async def _station_registered(event: StationRegistered, ctx: HandlerContext) -> None:
    # Registering a station again replaces its details (and reopens it).
    await ctx.conn.execute(
        """
        INSERT INTO intake.stations (district_id, station_code, name_zh, kind, street_code,
            street_name_zh, communities, address, lat, long, star_rating, retired_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)
        ON CONFLICT (district_id, station_code) DO UPDATE
           SET name_zh = excluded.name_zh, kind = excluded.kind,
               street_code = excluded.street_code, street_name_zh = excluded.street_name_zh,
               communities = excluded.communities, address = excluded.address,
               lat = excluded.lat, long = excluded.long, star_rating = excluded.star_rating,
               retired_at = NULL, updated_at = now()
        """,
        event.district_id,
        event.station_code,
        event.name_zh,
        event.kind.value,
        event.street_code,
        event.street_name_zh,
        list(event.communities),
        event.address,
        event.position.lat if event.position else None,
        event.position.long if event.position else None,
        event.star_rating,
    )


async def _representative_registered(event: RepresentativeRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.representatives (district_id, representative_id, name_zh, level)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (district_id, representative_id) DO UPDATE
           SET name_zh = excluded.name_zh, level = excluded.level, retired_at = NULL,
               updated_at = now()
        """,
        event.district_id,
        event.representative_id,
        event.name_zh,
        event.level.value,
    )


async def _joined(event: RepresentativeJoinedStation, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.station_representatives (district_id, station_code, representative_id)
        VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
        """,
        event.district_id,
        event.station_code,
        event.representative_id,
    )


async def _left(event: RepresentativeLeftStation, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        "DELETE FROM intake.station_representatives "
        "WHERE district_id = $1 AND station_code = $2 AND representative_id = $3",
        event.district_id,
        event.station_code,
        event.representative_id,
    )


async def _station_moved(event: StationMoved, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        UPDATE intake.stations
           SET street_code = $3, communities = $4, address = $5, lat = $6, long = $7,
               updated_at = now()
         WHERE district_id = $1 AND station_code = $2
        """,
        event.district_id,
        event.station_code,
        event.street_code,
        list(event.communities),
        event.address,
        event.position.lat if event.position else None,
        event.position.long if event.position else None,
    )


async def _station_retired(event: StationRetired, ctx: HandlerContext) -> None:
    # Its QR code takes no more submissions; its cases and their history stay.
    await ctx.conn.execute(
        "UPDATE intake.stations SET retired_at = $3, updated_at = now() "
        "WHERE district_id = $1 AND station_code = $2",
        event.district_id,
        event.station_code,
        event.occurred_at,
    )


async def _representative_retired(event: RepresentativeRetired, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        "UPDATE intake.representatives SET retired_at = $3, updated_at = now() "
        "WHERE district_id = $1 AND representative_id = $2",
        event.district_id,
        event.representative_id,
        event.occurred_at,
    )


async def _street_registered(event: StreetRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.streets (district_id, street_code, name_zh) VALUES ($1, $2, $3)
        ON CONFLICT (district_id, street_code) DO UPDATE
           SET name_zh = excluded.name_zh, updated_at = now()
        """,
        event.district_id,
        event.street_code,
        event.name_zh,
    )


async def _community_registered(event: CommunityRegistered, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.communities (district_id, community, street_code) VALUES ($1, $2, $3)
        ON CONFLICT (district_id, community) DO UPDATE SET street_code = excluded.street_code
        """,
        event.district_id,
        event.community,
        event.street_code,
    )


async def _taxonomy_published(event: TaxonomyPublished, ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        """
        INSERT INTO intake.taxonomies (district_id, version, categories, published_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (district_id) DO UPDATE
           SET version = excluded.version, categories = excluded.categories,
               published_at = excluded.published_at
         WHERE intake.taxonomies.version <= excluded.version
        """,
        event.district_id,
        event.version,
        [c.model_dump(mode="json") for c in event.categories],
        event.occurred_at,
    )


def register_directory_handlers(consumer: Consumer) -> None:
    """Teach ``consumer`` to keep intake's directory tables."""
    consumer.handles(DistrictRegistered)(_district_registered)
    consumer.handles(StationRegistered)(_station_registered)
    consumer.handles(StationMoved)(_station_moved)
    consumer.handles(StationRetired)(_station_retired)
    consumer.handles(RepresentativeRegistered)(_representative_registered)
    consumer.handles(RepresentativeRetired)(_representative_retired)
    consumer.handles(RepresentativeJoinedStation)(_joined)
    consumer.handles(RepresentativeLeftStation)(_left)
    consumer.handles(StreetRegistered)(_street_registered)
    consumer.handles(CommunityRegistered)(_community_registered)
    consumer.handles(TaxonomyPublished)(_taxonomy_published)
