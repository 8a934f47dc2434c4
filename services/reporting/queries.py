"""Reading the projections: the directory, and every figure of docs/metrics.md, counted
by the database (set-based, one query per table of figures).

A :class:`Reader` reads one schema's live slots on one connection; the views open it in
a read-only repeatable-read transaction, so the figures of one page or report agree with
each other even while the consumer writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from eventkit.db import Conn
from services.reporting.case_facts import StepKind
from services.reporting.periods import Period
from services.reporting.projection import live_slots
from services.reporting.scope import Scope
from services.reporting.stats import Activity, CaseStats
from services.reporting.tables import SCHEMA


@dataclass(frozen=True)
class District:
    district_id: str
    name_zh: str
    name_en: str | None
    timezone: str


@dataclass(frozen=True)
class Street:
    street_code: str
    name_zh: str
    supervisors: tuple[str, ...]


@dataclass(frozen=True)
class Station:
    station_code: str
    name_zh: str
    kind: str
    street_code: str
    star_rating: int | None
    liaison_officers: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class Representative:
    representative_id: str
    name_zh: str
    level: str
    active: bool
    stations: dict[str, str | None]
    """The stations they belong to now, each with its street."""


@dataclass(frozen=True)
class Day:
    """One local day of a station's activity (docs/metrics.md, "per station per day")."""

    day: date
    assigned: int = 0
    responded: int = 0
    responded_on_time: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    closed: int = 0
    reopened: int = 0
    escalated: int = 0
    overdue: int = 0
    ratings: int = 0
    satisfied_ratings: int = 0


_DAY_FIGURES: Final = tuple(f for f in Day.__dataclass_fields__ if f != "day")


@dataclass(frozen=True)
class Entry:
    """One line of a representative's archive (履职档案)."""

    recorded_at: datetime
    kind: str
    case_id: str
    station_code: str | None
    counterpart: str | None
    on_time: bool | None
    note: str | None


@dataclass(frozen=True)
class NotableCase:
    """A case worth a look, by its facts only (no text from or about the resident)."""

    case_id: str
    category_code: str | None
    community: str | None
    station_code: str | None
    representative_id: str | None
    status: str
    opened_at: datetime
    overdue_count: int
    reopened_count: int
    escalated_count: int
    satisfaction: int | None


DIMENSIONS: Final[dict[str, str]] = {
    "district": "district_id",
    "street": "unit_street",
    "station": "station_code",
    "representative": "representative_id",
    "channel": "channel",
    "category": "category_code",
    "community": "community",
    "month": "date_trunc('month', opened_at AT TIME ZONE tz)::date",
    "week": "date_trunc('week', opened_at AT TIME ZONE tz)::date",
}
"""What case figures can be grouped by (a week starts on Monday, local time)."""

_CASES = """
WITH c AS (
    SELECT c.*, coalesce(st.street_code, c.street_code) AS unit_street
      FROM {s}.cases c
      LEFT JOIN {s}.stations st
        ON st.slot = $2 AND st.district_id = c.district_id AND st.station_code = c.station_code
     WHERE c.slot = $1 AND c.district_id = $3 AND c.opened_at >= $4 AND c.opened_at < $5
), scoped AS (
    SELECT * FROM c
     WHERE ($6::text[] IS NULL OR unit_street = ANY($6::text[]))
       AND ($7::text[] IS NULL OR station_code = ANY($7::text[]))
       AND ($10::text[] IS NULL OR representative_id = ANY($10::text[]))
), latest AS (
    -- The latest rating of the latest resolution rated: the resident's own or one staff
    -- took down on a callback (回访), whichever the store recorded last.
    SELECT DISTINCT ON (case_id) case_id, satisfaction FROM (
        SELECT r.case_id, r.resolution_seq, r.recorded_at, r.satisfaction
          FROM {s}.ratings r JOIN scoped USING (case_id)
         WHERE r.slot = $9
        UNION ALL
        SELECT case_id, callback_seq, callback_at, callback_satisfaction
          FROM scoped WHERE callback_seq IS NOT NULL
    ) rated
     ORDER BY case_id, resolution_seq DESC, recorded_at DESC
), f AS (
    SELECT scoped.*, latest.satisfaction, $8::text AS tz,
           status NOT IN ('merged', 'transferred_out') AND NOT withdrawn AS counted,
           status NOT IN ('merged', 'transferred_out') AND NOT withdrawn
               AND converted_at IS NULL AS for_resolution
      FROM scoped LEFT JOIN latest USING (case_id)
)
"""

_FIGURES = """
    count(*) AS received,
    count(*) FILTER (WHERE counted) AS counted,
    count(*) FILTER (WHERE status = 'merged') AS merged,
    count(*) FILTER (WHERE withdrawn) AS withdrawn,
    count(*) FILTER (WHERE status = 'transferred_out') AS transferred_out,
    count(*) FILTER (WHERE counted AND converted_at IS NOT NULL) AS suggestions,
    count(*) FILTER (WHERE counted AND status IN ('triage', 'assigned', 'in_progress',
                                                  'escalated')) AS open,
    count(*) FILTER (WHERE counted AND (first_response_at IS NOT NULL OR response_missed))
        AS response_settled,
    count(*) FILTER (WHERE counted AND responded_on_time) AS response_on_time,
    count(*) FILTER (WHERE for_resolution AND (status IN ('resolved', 'closed')
                                               OR resolution_missed)) AS resolution_settled,
    count(*) FILTER (WHERE for_resolution AND status IN ('resolved', 'closed')) AS resolved,
    count(*) FILTER (WHERE for_resolution AND status IN ('resolved', 'closed')
                           AND resolved_on_time) AS resolved_on_time,
    count(*) FILTER (WHERE for_resolution AND satisfaction IS NOT NULL) AS rated,
    count(*) FILTER (WHERE for_resolution AND satisfaction >= 4) AS satisfied,
    coalesce(sum(satisfaction) FILTER (WHERE for_resolution), 0)::int AS satisfaction_sum,
    count(*) FILTER (WHERE counted AND overdue_count > 0) AS overdue,
    count(*) FILTER (WHERE counted AND reopened_count > 0) AS reopened,
    count(*) FILTER (WHERE counted AND escalated_count > 0) AS escalated,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM first_response_at - opened_at) / 3600
    ) FILTER (WHERE counted AND first_response_at IS NOT NULL) AS median_response_hours,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM first_resolved_at - opened_at) / 3600
    ) FILTER (WHERE for_resolution AND first_resolved_at IS NOT NULL) AS median_resolution_hours
"""
_FIGURE_NAMES: Final = (
    "received",
    "counted",
    "merged",
    "withdrawn",
    "transferred_out",
    "suggestions",
    "open",
    "response_settled",
    "response_on_time",
    "resolution_settled",
    "resolved",
    "resolved_on_time",
    "rated",
    "satisfied",
    "satisfaction_sum",
    "overdue",
    "reopened",
    "escalated",
    "median_response_hours",
    "median_resolution_hours",
)


_RATINGS = """
    SELECT r.case_id, r.resolution_seq, r.satisfaction, r.recorded_at
      FROM {s}.ratings r
     WHERE r.slot = $2 AND r.recorded_at >= $3 AND r.recorded_at < $4
    UNION ALL
    SELECT c.case_id, c.resolution_seq, c.note::int, c.recorded_at
      FROM {s}.case_steps c
     WHERE c.slot = $1 AND c.kind = 'callback' AND c.district_id = $5
       AND c.recorded_at >= $3 AND c.recorded_at < $4
"""
"""Every rating recorded in a period: the residents' own and the callbacks staff took
down (a callback step's note is its rating)."""


@dataclass(frozen=True)
class Filter:
    """Which cases of the district to count: those of some streets, some stations, some
    representatives (None: no limit of that kind)."""

    streets: frozenset[str] | None = None
    stations: frozenset[str] | None = None
    representatives: frozenset[str] | None = None

    @classmethod
    def of(cls, scope: Scope) -> Filter:
        """What a caller's scope lets them count."""
        return cls(scope.streets, scope.stations)

    def arrays(self) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
        return (
            sorted(self.streets) if self.streets is not None else None,
            sorted(self.stations) if self.stations is not None else None,
            sorted(self.representatives) if self.representatives is not None else None,
        )


EVERYTHING: Final = Filter()


class Reader:
    """Reads from one schema's live slots on one connection."""

    def __init__(self, conn: Conn, schema: str, slots: dict[str, int]) -> None:
        self.conn = conn
        self.schema = schema
        self.directory_slot = slots["directory"]
        self.cases_slot = slots["cases"]
        self.ratings_slot = slots["ratings"]
        self.scans_slot = slots.get("scans", 0)

    @classmethod
    async def open(cls, conn: Conn, schema: str = SCHEMA) -> Reader:
        """A reader of the slots live now."""
        return cls(conn, schema, await live_slots(conn, schema))

    # ------------------------------------------------------------------ directory

    async def district(self, district_id: str) -> District | None:
        row = await self.conn.fetchrow(
            f"SELECT district_id, name_zh, name_en, timezone FROM {self.schema}.districts "
            "WHERE slot = $1 AND district_id = $2",
            self.directory_slot,
            district_id,
        )
        return District(**dict(row.items())) if row is not None else None

    async def streets(self, district_id: str) -> list[Street]:
        rows = await self.conn.fetch(
            f"SELECT street_code, name_zh, supervisors FROM {self.schema}.streets "
            "WHERE slot = $1 AND district_id = $2 ORDER BY street_code",
            self.directory_slot,
            district_id,
        )
        return [Street(r["street_code"], r["name_zh"], tuple(r["supervisors"])) for r in rows]

    async def stations(self, district_id: str) -> list[Station]:
        rows = await self.conn.fetch(
            "SELECT station_code, name_zh, kind, street_code, star_rating, liaison_officers, "
            f"active FROM {self.schema}.stations WHERE slot = $1 AND district_id = $2 "
            "ORDER BY street_code, station_code",
            self.directory_slot,
            district_id,
        )
        return [
            Station(**{**dict(r.items()), "liaison_officers": tuple(r["liaison_officers"])})
            for r in rows
        ]

    async def representatives(self, district_id: str) -> list[Representative]:
        rows = await self.conn.fetch(
            f"""
            SELECT r.representative_id, r.name_zh, r.level, r.active,
                   coalesce(jsonb_object_agg(m.station_code, st.street_code)
                            FILTER (WHERE m.station_code IS NOT NULL), '{{}}') AS stations
              FROM {self.schema}.representatives r
              LEFT JOIN {self.schema}.memberships m
                ON m.slot = r.slot AND m.district_id = r.district_id
               AND m.representative_id = r.representative_id AND m.left_at IS NULL
              LEFT JOIN {self.schema}.stations st
                ON st.slot = r.slot AND st.district_id = r.district_id
               AND st.station_code = m.station_code
             WHERE r.slot = $1 AND r.district_id = $2
             GROUP BY r.representative_id, r.name_zh, r.level, r.active
             ORDER BY r.representative_id
            """,
            self.directory_slot,
            district_id,
        )
        return [
            Representative(
                r["representative_id"], r["name_zh"], r["level"], r["active"], r["stations"]
            )
            for r in rows
        ]

    async def categories(self, district_id: str) -> dict[str, tuple[str, str | None]]:
        rows = await self.conn.fetch(
            f"SELECT category_code, name_zh, name_en FROM {self.schema}.categories "
            "WHERE slot = $1 AND district_id = $2",
            self.directory_slot,
            district_id,
        )
        return {r["category_code"]: (r["name_zh"], r["name_en"]) for r in rows}

    async def communities(self, district_id: str) -> dict[str, str]:
        rows = await self.conn.fetch(
            f"SELECT community, street_code FROM {self.schema}.communities "
            "WHERE slot = $1 AND district_id = $2",
            self.directory_slot,
            district_id,
        )
        return {r["community"]: r["street_code"] for r in rows}

    # ------------------------------------------------------------------ case figures

    def _case_args(self, district_id: str, period: Period, only: Filter) -> list[Any]:
        streets, stations, representatives = only.arrays()
        return [
            self.cases_slot,
            self.directory_slot,
            district_id,
            period.start,
            period.end,
            streets,
            stations,
            period.tz.key,
            self.ratings_slot,
            representatives,
        ]

    async def case_stats(
        self,
        district_id: str,
        period: Period,
        by: tuple[str, ...] = (),
        only: Filter = EVERYTHING,
    ) -> list[CaseStats]:
        """The figures of the cases received in ``period``, per group of ``by``."""
        keys = [DIMENSIONS[d] for d in by]
        select = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
        group = f"GROUP BY {', '.join(f'k{i}' for i in range(len(keys)))}" if keys else ""
        sql = (
            _CASES.format(s=self.schema)
            + f"SELECT {select + ',' if select else ''} {_FIGURES} FROM f {group}"
        )
        rows = await self.conn.fetch(sql, *self._case_args(district_id, period, only))
        out = []
        for r in rows:
            if not keys and r["received"] == 0:
                continue
            figures = {n: r[n] for n in _FIGURE_NAMES}
            out.append(CaseStats(key=tuple(r[f"k{i}"] for i in range(len(keys))), **figures))
        return out

    async def notable_cases(
        self, district_id: str, period: Period, limit: int = 10, only: Filter = EVERYTHING
    ) -> list[NotableCase]:
        """Counted cases with the most trouble (missed deadlines, reopenings, whistles,
        low ratings), the worst first."""
        sql = (
            _CASES.format(s=self.schema)
            + f"""
            SELECT case_id, category_code, community, station_code, representative_id,
                   status, opened_at, overdue_count, reopened_count, escalated_count,
                   satisfaction
              FROM f
             WHERE counted AND (overdue_count > 0 OR reopened_count > 0
                                OR escalated_count > 0 OR satisfaction <= 2)
             ORDER BY overdue_count * 2 + reopened_count * 3 + escalated_count
                      + CASE WHEN satisfaction <= 2 THEN 3 ELSE 0 END DESC,
                      opened_at, case_id
             LIMIT {int(limit)}
        """
        )
        rows = await self.conn.fetch(sql, *self._case_args(district_id, period, only))
        return [NotableCase(**dict(r.items())) for r in rows]

    # ------------------------------------------------------------------ steps

    async def activity(
        self, district_id: str, period: Period, representative_ids: list[str] | None = None
    ) -> dict[str, Activity]:
        """What each representative did in ``period`` (their steps and their ratings)."""
        k = StepKind
        rows = await self.conn.fetch(
            f"""
            SELECT representative_id,
                   count(*) FILTER (WHERE kind = '{k.ASSIGNED}') AS assigned,
                   count(*) FILTER (WHERE kind = '{k.ACCEPTED}') AS accepted,
                   count(*) FILTER (WHERE kind = '{k.ACCEPTED}' AND on_time) AS accepted_on_time,
                   count(*) FILTER (WHERE kind = '{k.REPLIED}') AS replies,
                   count(DISTINCT case_id) FILTER (WHERE kind = '{k.REPLIED}') AS replied_cases,
                   count(*) FILTER (WHERE kind = '{k.RESOLVED}') AS resolved,
                   count(*) FILTER (WHERE kind = '{k.RESOLVED}' AND on_time) AS resolved_on_time,
                   count(*) FILTER (WHERE kind = '{k.REOPENED}') AS reopened,
                   count(*) FILTER (WHERE kind = '{k.ESCALATED}') AS escalated,
                   count(*) FILTER (WHERE kind = '{k.TRANSFERRED}') AS transferred_away,
                   count(*) FILTER (WHERE kind = '{k.OVERDUE}') AS overdue,
                   count(*) FILTER (WHERE kind = '{k.CONVERTED}') AS suggestions_made,
                   count(*) FILTER (WHERE kind = '{k.ANSWERED}') AS suggestions_answered
              FROM {self.schema}.case_steps
             WHERE slot = $1 AND district_id = $2 AND recorded_at >= $3 AND recorded_at < $4
               AND representative_id IS NOT NULL
               AND ($5::text[] IS NULL OR representative_id = ANY($5::text[]))
             GROUP BY representative_id
            """,
            self.cases_slot,
            district_id,
            period.start,
            period.end,
            representative_ids,
        )
        found = {r["representative_id"]: dict(r.items()) for r in rows}
        ratings = await self.conn.fetch(
            f"""
            WITH r AS ({_RATINGS.format(s=self.schema)})
            SELECT s.representative_id, count(*) AS ratings,
                   count(*) FILTER (WHERE r.satisfaction >= 4) AS satisfied_ratings,
                   sum(r.satisfaction)::int AS rating_sum
              FROM r
              JOIN {self.schema}.case_steps s
                ON s.slot = $1 AND s.case_id = r.case_id AND s.kind = '{k.RESOLVED}'
               AND s.resolution_seq = r.resolution_seq
             WHERE s.district_id = $5 AND s.representative_id IS NOT NULL
               AND ($6::text[] IS NULL OR s.representative_id = ANY($6::text[]))
             GROUP BY s.representative_id
            """,
            self.cases_slot,
            self.ratings_slot,
            period.start,
            period.end,
            district_id,
            representative_ids,
        )
        for r in ratings:
            found.setdefault(r["representative_id"], {"representative_id": r["representative_id"]})
            found[r["representative_id"]].update(dict(r.items()))
        attended = await self.conn.fetch(
            f"""
            SELECT rep AS representative_id, count(*) AS activities
              FROM {self.schema}.activities a, unnest(a.representatives) AS rep
             WHERE a.slot = $1 AND a.district_id = $2 AND a.held_on BETWEEN $3 AND $4
               AND ($5::text[] IS NULL OR rep = ANY($5::text[]))
             GROUP BY rep
            """,
            self.directory_slot,
            district_id,
            period.first_day,
            period.last_day,
            representative_ids,
        )
        counts = {r["representative_id"]: r["activities"] for r in attended}
        for rep_id in counts.keys() - found.keys():
            found[rep_id] = {"representative_id": rep_id}
        return {
            rep: Activity(**{**values, "activities": counts.get(rep, 0)})
            for rep, values in found.items()
        }

    async def station_activities(
        self, district_id: str, period: Period, station_codes: list[str] | None = None
    ) -> dict[str, int]:
        """Activities held at each station in ``period`` (by the day they were held)."""
        rows = await self.conn.fetch(
            f"SELECT station_code, count(*) AS n FROM {self.schema}.activities "
            "WHERE slot = $1 AND district_id = $2 AND held_on BETWEEN $3 AND $4 "
            "AND ($5::text[] IS NULL OR station_code = ANY($5::text[])) GROUP BY station_code",
            self.directory_slot,
            district_id,
            period.first_day,
            period.last_day,
            station_codes,
        )
        return {r["station_code"]: r["n"] for r in rows}

    async def station_days(self, district_id: str, station_code: str, period: Period) -> list[Day]:
        """The station's activity per local day of ``period`` (days with none left out)."""
        k = StepKind
        rows = await self.conn.fetch(
            f"""
            WITH steps AS (
                SELECT (recorded_at AT TIME ZONE $5)::date AS day,
                       count(DISTINCT case_id) FILTER (WHERE kind = '{k.ASSIGNED}') AS assigned,
                       count(*) FILTER (WHERE kind = '{k.RESPONDED}') AS responded,
                       count(*) FILTER (WHERE kind = '{k.RESPONDED}' AND on_time)
                           AS responded_on_time,
                       count(*) FILTER (WHERE kind = '{k.RESOLVED}') AS resolved,
                       count(*) FILTER (WHERE kind = '{k.RESOLVED}' AND on_time)
                           AS resolved_on_time,
                       count(*) FILTER (WHERE kind = '{k.CLOSED}') AS closed,
                       count(*) FILTER (WHERE kind = '{k.REOPENED}') AS reopened,
                       count(*) FILTER (WHERE kind = '{k.ESCALATED}') AS escalated,
                       count(*) FILTER (WHERE kind = '{k.OVERDUE}') AS overdue
                  FROM {self.schema}.case_steps
                 WHERE slot = $1 AND district_id = $2 AND station_code = $3
                   AND recorded_at >= $4::timestamptz AND recorded_at < $6::timestamptz
                 GROUP BY 1
            ), r AS (
                SELECT r.case_id, r.resolution_seq, r.satisfaction, r.recorded_at
                  FROM {self.schema}.ratings r
                 WHERE r.slot = $7 AND r.recorded_at >= $4::timestamptz
                   AND r.recorded_at < $6::timestamptz
                UNION ALL
                SELECT c.case_id, c.resolution_seq, c.note::int, c.recorded_at
                  FROM {self.schema}.case_steps c
                 WHERE c.slot = $1 AND c.kind = '{k.CALLBACK}' AND c.district_id = $2
                   AND c.recorded_at >= $4::timestamptz AND c.recorded_at < $6::timestamptz
            ), rated AS (
                SELECT (r.recorded_at AT TIME ZONE $5)::date AS day, count(*) AS ratings,
                       count(*) FILTER (WHERE r.satisfaction >= 4) AS satisfied_ratings
                  FROM r
                  JOIN {self.schema}.case_steps s
                    ON s.slot = $1 AND s.case_id = r.case_id AND s.kind = '{k.RESOLVED}'
                   AND s.resolution_seq = r.resolution_seq
                 WHERE s.district_id = $2 AND s.station_code = $3
                 GROUP BY 1
            )
            SELECT * FROM steps FULL JOIN rated USING (day) ORDER BY day
            """,
            self.cases_slot,
            district_id,
            station_code,
            period.start,
            period.tz.key,
            period.end,
            self.ratings_slot,
        )
        return [Day(r["day"], *(r[name] or 0 for name in _DAY_FIGURES)) for r in rows]

    async def archive(
        self,
        district_id: str,
        representative_id: str,
        period: Period,
        *,
        limit: int,
        offset: int,
    ) -> tuple[int, list[Entry]]:
        """The representative's steps in ``period``, newest first, and how many in all."""
        kinds = [
            StepKind.ASSIGNED,
            StepKind.ACCEPTED,
            StepKind.REPLIED,
            StepKind.RESOLVED,
            StepKind.REOPENED,
            StepKind.ESCALATED,
            StepKind.TRANSFERRED,
            StepKind.OVERDUE,
            StepKind.CONVERTED,
            StepKind.ANSWERED,
            StepKind.CLOSED,
        ]
        where = (
            f"FROM {self.schema}.case_steps WHERE slot = $1 AND district_id = $2 "
            "AND representative_id = $3 AND recorded_at >= $4 AND recorded_at < $5 "
            "AND kind = ANY($6::text[])"
        )
        args = [self.cases_slot, district_id, representative_id, period.start, period.end, kinds]
        total = await self.conn.fetchval(f"SELECT count(*) {where}", *args)
        rows = await self.conn.fetch(
            "SELECT recorded_at, kind, case_id, station_code, counterpart, on_time, note "
            f"{where} ORDER BY recorded_at DESC, case_id, kind LIMIT $7 OFFSET $8",
            *args,
            limit,
            offset,
        )
        return int(total), [Entry(**dict(r.items())) for r in rows]
