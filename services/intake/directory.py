"""Intake's view of the directory: districts, stations, representatives, the taxonomy.

Learned from the directory events on ``minqing.directory.v1`` (``directory_handlers.py``
writes ``intake.districts``, ``intake.stations``...) and read here, briefly cached where
the submission path needs it, by submissions, the QR form, the station list, Open311 and
the tracking timeline.

Row-level security: each read runs in a transaction scoped to the district it is about.
Three are about every district by nature and declare it (``ALL_DISTRICTS``): a QR code
names its station by its code alone (which district it is in is what the read finds
out), Open311's discovery lists the districts, and a matter transferred to another
district is told with that district's names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from eventkit.db import ALL_DISTRICTS, district_transaction
from services.intake.submission_rules import StationInfo
from services.intake.taxonomy import Taxonomy, published_taxonomy

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
        """What the submission rules need of it."""
        return StationInfo(
            self.district_id, self.station_code, self.name_zh, self.retired, self.communities
        )


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


@dataclass(frozen=True)
class ReceptionDay:
    """A representative's reception day at a station, as residents are shown it."""

    day: date
    starts_at: dt_time | None
    ends_at: dt_time | None
    status: str
    """``scheduled``, ``cancelled`` or ``moved`` (to ``moved_to``)."""
    moved_to: date | None
    name: str
    leading_cadre: bool


async def _fetch(
    pool: asyncpg.Pool, district_id: str, query: str, *args: object
) -> list[asyncpg.Record]:
    async with district_transaction(pool, district_id) as conn:
        return list(await conn.fetch(query, *args))


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
        # The code alone: its district is what this finds out.
        rows = await _fetch(
            self._pool, ALL_DISTRICTS, f"{_STATIONS} WHERE s.station_code = $1", station_code
        )
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
        rows = await _fetch(
            self._pool,
            district_id,
            "SELECT district_id, name_zh, name_en, timezone FROM intake.districts "
            "WHERE district_id = $1",
            district_id,
        )
        district = (
            None
            if not rows
            else District(
                rows[0]["district_id"],
                rows[0]["name_zh"],
                rows[0]["name_en"],
                _timezone(rows[0][3]),
            )
        )
        if len(self._districts) > 10_000:
            self._districts.clear()
        self._districts[district_id] = (now, district)
        return district

    async def district_ids(self) -> list[str]:
        """Every registered district."""
        rows = await _fetch(
            self._pool, ALL_DISTRICTS, "SELECT district_id FROM intake.districts ORDER BY 1"
        )
        return [r["district_id"] for r in rows]

    async def stations(self, district_id: str) -> list[Station]:
        """The district's open stations: homes first, then by street and code."""
        rows = await _fetch(
            self._pool,
            district_id,
            f"""{_STATIONS}
             WHERE s.district_id = $1 AND s.retired_at IS NULL
             ORDER BY s.street_code NULLS LAST, s.kind <> 'home', s.station_code
            """,
            district_id,
        )
        return [_station(r) for r in rows]

    async def station(self, district_id: str, station_code: str) -> Station | None:
        """One station of a district."""
        rows = await _fetch(
            self._pool,
            district_id,
            f"{_STATIONS} WHERE s.district_id = $1 AND s.station_code = $2",
            district_id,
            station_code,
        )
        return _station(rows[0]) if rows else None

    async def communities_near(self, station: Station) -> tuple[str, ...]:
        """The communities a station serves, or else those of its street (a contact point
        in a market serves no community of its own)."""
        if station.communities:
            return station.communities
        rows = await _fetch(
            self._pool,
            station.district_id,
            "SELECT community FROM intake.communities "
            "WHERE district_id = $1 AND street_code = $2 ORDER BY community",
            station.district_id,
            station.street_code,
        )
        return tuple(r["community"] for r in rows)

    async def representatives_of(self, district_id: str, station_code: str) -> list[str]:
        """Names of the representatives grouped into a station (编组进站)."""
        rows = await _fetch(
            self._pool,
            district_id,
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

    async def reception_days(
        self, district_id: str, station_code: str, since: date, days: int = 31
    ) -> list[ReceptionDay]:
        """The station's reception days from ``since`` on, cancelled and moved ones
        included (the QR page says so), with who receives and whether they are a leading
        cadre (领导干部接待日)."""
        rows = await _fetch(
            self._pool,
            district_id,
            """
            SELECT d.day, d.starts_at, d.ends_at, d.status, d.moved_to,
                   coalesce(r.name_zh, d.representative_id) AS name,
                   coalesce(r.leading_cadre, false) AS leading_cadre
              FROM intake.reception_days d
              LEFT JOIN intake.representatives r USING (district_id, representative_id)
             WHERE d.district_id = $1 AND d.station_code = $2 AND d.day BETWEEN $3 AND $4
               AND r.retired_at IS NULL
             ORDER BY d.day, d.starts_at NULLS LAST, name
            """,
            district_id,
            station_code,
            since,
            since + timedelta(days=days),
        )
        return [ReceptionDay(**dict(r.items())) for r in rows]

    async def names(
        self,
        district_ids: Sequence[str],
        station_codes: Sequence[str],
        representative_ids: Sequence[str],
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Names of the given stations and representatives of some districts (a case
        transferred to another district is handled by that district's people)."""
        wanted = sorted(set(district_ids))
        # Several districts (a transfer): the query names them, in the scope of all.
        async with district_transaction(
            self._pool, wanted[0] if len(wanted) == 1 else ALL_DISTRICTS
        ) as conn:
            stations = await conn.fetch(
                "SELECT station_code, name_zh FROM intake.stations "
                "WHERE district_id = ANY($1::text[]) AND station_code = ANY($2::text[])",
                wanted,
                list(set(station_codes)),
            )
            reps = await conn.fetch(
                "SELECT representative_id, name_zh FROM intake.representatives "
                "WHERE district_id = ANY($1::text[]) AND representative_id = ANY($2::text[])",
                wanted,
                list(set(representative_ids)),
            )
        return (
            {r["station_code"]: r["name_zh"] for r in stations},
            {r["representative_id"]: r["name_zh"] for r in reps},
        )

    async def district_names(self) -> dict[str, str]:
        """district id → Chinese name, for transfers to another district."""
        rows = await _fetch(
            self._pool, ALL_DISTRICTS, "SELECT district_id, name_zh FROM intake.districts"
        )
        return {r["district_id"]: r["name_zh"] for r in rows}


class TaxonomySource:
    """Each district's taxonomy as last published (briefly cached): empty until routing
    has published one."""

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
        self._published: dict[str, tuple[float, Taxonomy]] = {}

    async def for_district(self, district_id: str) -> Taxonomy:
        """The district's published taxonomy; no categories before the first one."""
        now = self._clock()
        cached = self._published.get(district_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        rows = await _fetch(
            self._pool,
            district_id,
            "SELECT categories FROM intake.taxonomies WHERE district_id = $1",
            district_id,
        )
        taxonomy = published_taxonomy(district_id, (rows[0]["categories"] if rows else None) or ())
        self._published[district_id] = (now, taxonomy)
        return taxonomy
