"""Reading what the registers (六簿一表), the archives' activities and the stations' QR
figures are made of, from one schema's live slots (a :class:`~services.reporting.queries.
Reader`'s connection and slots).

Activities belong to the local day they were held (``held_on``, as the station recorded
it); everything about cases is cut on when the store recorded it, as every other figure
(docs/metrics.md).
"""

from __future__ import annotations

from services.reporting.case_facts import StepKind
from services.reporting.periods import Period
from services.reporting.queries import Reader
from services.reporting.registers import HeldActivity, Member, Received, Scans, Suggestion


async def held_activities(
    r: Reader,
    district_id: str,
    period: Period,
    *,
    station_code: str | None = None,
    representative_id: str | None = None,
) -> list[HeldActivity]:
    """Activities held in ``period`` at a station, or attended by a representative."""
    rows = await r.conn.fetch(
        f"""
        SELECT activity_id, station_code, kind, title, held_on, starts_at, ends_at,
               representatives, spokespersons, residents_met, opinions_taken, summary
          FROM {r.schema}.activities
         WHERE slot = $1 AND district_id = $2 AND held_on BETWEEN $3 AND $4
           AND ($5::text IS NULL OR station_code = $5)
           AND ($6::text IS NULL OR $6 = ANY(representatives))
         ORDER BY held_on, starts_at NULLS LAST, activity_id
        """,
        r.directory_slot,
        district_id,
        period.first_day,
        period.last_day,
        station_code,
        representative_id,
    )
    return [
        HeldActivity(
            **{
                **dict(row.items()),
                "representatives": tuple(row["representatives"]),
                "spokespersons": tuple(row["spokespersons"]),
            }
        )
        for row in rows
    ]


async def members(r: Reader, district_id: str, station_code: str, period: Period) -> list[Member]:
    """The station's representatives: those who belong to it now and those who left it
    during or after ``period``. (The directory learns a membership when a district file
    or an admin records it, often long after the representative was grouped into the
    station: a stay recorded after the period still counts for it.)"""
    rows = await r.conn.fetch(
        f"""
        SELECT p.representative_id, p.name_zh, p.level, p.electoral_district, p.leading_cadre,
               m.joined_at, m.left_at, p.active
          FROM {r.schema}.memberships m
          JOIN {r.schema}.representatives p
            ON p.slot = m.slot AND p.district_id = m.district_id
           AND p.representative_id = m.representative_id
         WHERE m.slot = $1 AND m.district_id = $2 AND m.station_code = $3
           AND (m.left_at IS NULL OR m.left_at >= $4)
         ORDER BY p.leading_cadre DESC, p.representative_id
        """,
        r.directory_slot,
        district_id,
        station_code,
        period.start,
    )
    return [Member(**dict(row.items())) for row in rows]


async def suggestions(
    r: Reader, district_id: str, station_code: str, period: Period
) -> list[Suggestion]:
    """Suggestions made in ``period`` from the station's cases."""
    rows = await r.conn.fetch(
        f"""
        SELECT c.case_id, c.representative_id, c.converted_at, s.note AS title,
               c.suggestion_reply_due AS reply_due, c.suggestion_answered_at AS answered_at,
               c.suggestion_answered_by AS answered_by, c.status
          FROM {r.schema}.cases c
          LEFT JOIN {r.schema}.case_steps s
            ON s.slot = c.slot AND s.case_id = c.case_id AND s.kind = '{StepKind.CONVERTED}'
         WHERE c.slot = $1 AND c.district_id = $2 AND c.station_code = $3
           AND c.converted_at >= $4 AND c.converted_at < $5
         ORDER BY c.converted_at, c.case_id
        """,
        r.cases_slot,
        district_id,
        station_code,
        period.start,
        period.end,
    )
    return [Suggestion(**dict(row.items())) for row in rows]


async def received(
    r: Reader, district_id: str, station_code: str, period: Period
) -> list[Received]:
    """Cases the station holds that were received in ``period``, with the rating each
    counts with (docs/metrics.md: the latest, the resident's own or a callback)."""
    rows = await r.conn.fetch(
        f"""
        WITH c AS (
            SELECT * FROM {r.schema}.cases
             WHERE slot = $1 AND district_id = $2 AND station_code = $3
               AND opened_at >= $4 AND opened_at < $5
        ), rated AS (
            SELECT DISTINCT ON (case_id) case_id, satisfaction, source FROM (
                SELECT x.case_id, x.resolution_seq, x.recorded_at, x.satisfaction,
                       'resident' AS source
                  FROM {r.schema}.ratings x JOIN c USING (case_id) WHERE x.slot = $6
                UNION ALL
                SELECT case_id, callback_seq, callback_at, callback_satisfaction, 'callback'
                  FROM c WHERE callback_seq IS NOT NULL
            ) all_ratings
             ORDER BY case_id, resolution_seq DESC, recorded_at DESC
        )
        SELECT c.case_id, c.opened_at, c.channel, c.category_code, c.community,
               c.representative_id, c.status, c.first_response_at, c.resolved_at,
               rated.satisfaction, rated.source AS rating_source
          FROM c LEFT JOIN rated USING (case_id)
         ORDER BY c.opened_at, c.case_id
        """,
        r.cases_slot,
        district_id,
        station_code,
        period.start,
        period.end,
        r.ratings_slot,
    )
    return [Received(**dict(row.items())) for row in rows]


async def case_counts(
    r: Reader, district_id: str, station_code: str, period: Period
) -> dict[str, dict[str, int]]:
    """Per representative, the steps at the station in ``period`` the duty register
    counts: cases assigned, resolved, suggestions made."""
    k = StepKind
    rows = await r.conn.fetch(
        f"""
        SELECT representative_id,
               count(DISTINCT case_id) FILTER (WHERE kind = '{k.ASSIGNED}') AS assigned,
               count(*) FILTER (WHERE kind = '{k.RESOLVED}') AS resolved,
               count(*) FILTER (WHERE kind = '{k.CONVERTED}') AS suggestions
          FROM {r.schema}.case_steps
         WHERE slot = $1 AND district_id = $2 AND station_code = $3
           AND recorded_at >= $4 AND recorded_at < $5 AND representative_id IS NOT NULL
         GROUP BY representative_id
        """,
        r.cases_slot,
        district_id,
        station_code,
        period.start,
        period.end,
    )
    return {
        row["representative_id"]: {k: row[k] for k in ("assigned", "resolved", "suggestions")}
        for row in rows
    }


async def scans(
    r: Reader, district_id: str, period: Period, station_codes: list[str] | None = None
) -> dict[str, Scans]:
    """Each station's QR page views and opinions submitted from it in ``period``."""
    rows = await r.conn.fetch(
        f"""
        SELECT station_code, sum(scans)::int AS scans, sum(opinions)::int AS opinions
          FROM {r.schema}.scans
         WHERE slot = $1 AND district_id = $2 AND day BETWEEN $3 AND $4
           AND ($5::text[] IS NULL OR station_code = ANY($5::text[]))
         GROUP BY station_code
        """,
        r.scans_slot,
        district_id,
        period.first_day,
        period.last_day,
        station_codes,
    )
    return {row["station_code"]: Scans(**dict(row.items())) for row in rows}
