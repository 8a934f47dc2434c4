"""Every figure of docs/metrics.md on the March history, against the expectations worked
out by hand in tests/reporting/march.py (projected by the live consumer, topics mixed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from eventkit.identity import Principal, Role
from services.reporting import views
from services.reporting.periods import Period, month, period
from services.reporting.queries import Reader
from services.reporting.stats import CaseStats
from tests.every_district import every_district
from tests.reporting.conftest import Loaded
from tests.reporting.history import SHANGHAI
from tests.reporting.march import MARCH_DISTRICT, MARCH_STATIONS, MARCH_STREETS

pytestmark = pytest.mark.asyncio(loop_scope="module")

MARCH = month("2026-03", SHANGHAI)
ADMIN = Principal("admin_demo", Role.DISTRICT_ADMIN, "demo")


def without_medians(stats: CaseStats) -> CaseStats:
    return replace(stats, key=(), median_response_hours=None, median_resolution_hours=None)


async def stats(march: Loaded, when: Period, by: tuple[str, ...] = ()) -> list[CaseStats]:
    async with every_district(march.pool).acquire() as conn:
        reader = await Reader.open(conn)
        return await reader.case_stats("demo", when, by)


async def test_the_district_figures_of_march_are_those_worked_out_by_hand(march: Loaded) -> None:
    (district,) = await stats(march, MARCH)
    assert without_medians(district) == MARCH_DISTRICT
    assert (district.response_rate.numerator, district.response_rate.denominator) == (5, 7)
    assert (district.resolution_rate.numerator, district.resolution_rate.denominator) == (4, 5)
    assert (district.satisfaction_rate.numerator, district.satisfaction_rate.denominator) == (2, 3)
    assert district.average_satisfaction == 4.0


async def test_a_case_at_half_past_eleven_on_the_last_evening_of_march_is_march_s(
    march: Loaded,
) -> None:
    april = month("2026-04", SHANGHAI)
    assert MARCH.start.isoformat() == "2026-03-01T00:00:00+08:00"
    assert MARCH.end.isoformat() == "2026-04-01T00:00:00+08:00"
    (april_stats,) = await stats(march, april)
    # C4 was recorded at 16:30 UTC on 31 March: 00:30 on 1 April in Shanghai.
    assert april_stats.received == 1
    by_day = await stats(march, period("2026-03-31", "2026-03-31", SHANGHAI, MARCH.end), ())
    assert by_day[0].received == 1  # C3, 23:30 on 31 March
    (february,) = await stats(march, month("2026-02", SHANGHAI))
    assert february.received == 2  # C0 and C12 (23:59 on 28 February)


async def test_streets_count_a_case_where_its_station_is_and_stations_their_own(
    march: Loaded,
) -> None:
    streets = {s.key[0]: (s.received, s.counted) for s in await stats(march, MARCH, ("street",))}
    assert streets == MARCH_STREETS
    stations = {s.key[0]: (s.received, s.counted) for s in await stats(march, MARCH, ("station",))}
    expected: dict[str | None, tuple[int, int]] = {**MARCH_STATIONS, None: (1, 1)}
    assert stations == expected
    dh_home = next(s for s in await stats(march, MARCH, ("station",)) if s.key == ("dh_home",))
    # C3 (pending resolution), C5 (transferred in, rated 3), C11 (unrated); C6 merged.
    assert (dh_home.response_on_time, dh_home.response_settled) == (3, 3)
    assert (dh_home.resolved, dh_home.resolution_settled) == (2, 2)
    assert (dh_home.satisfied, dh_home.rated) == (0, 1)


async def test_each_representative_is_counted_for_the_cases_they_hold(march: Loaded) -> None:
    held = {
        s.key[0]: (s.received, s.counted, s.resolved, s.rated)
        for s in await stats(march, MARCH, ("representative",))
    }
    assert held == {
        "r1": (3, 2, 2, 2),  # C1 C2 C7 (withdrawn)
        "r2": (4, 3, 2, 1),  # C3 C5 (transferred in) C6 (merged) C11
        "r3": (1, 0, 0, 0),  # C9, transferred to another district
        "r4": (1, 1, 0, 0),  # C8, a suggestion
        None: (1, 1, 0, 0),  # C10 in triage
    }


async def test_what_each_representative_did_in_march_is_counted_from_their_steps(
    march: Loaded,
) -> None:
    async with every_district(march.pool).acquire() as conn:
        activity = await (await Reader.open(conn)).activity("demo", MARCH)
    r1, r2, r3, r4 = (activity[r] for r in ("r1", "r2", "r3", "r4"))
    # r1: C1 C2 C7 assigned; C12 (February's) accepted and resolved in March.
    assert (r1.assigned, r1.accepted, r1.accepted_on_time) == (3, 3, 2)
    assert (r1.replies, r1.resolved, r1.resolved_on_time, r1.reopened) == (1, 4, 3, 1)
    assert (r1.overdue, r1.ratings, r1.satisfied_ratings) == (2, 3, 2)
    assert r1.average_satisfaction == pytest.approx(11 / 3)
    # r2: C3 (31 March 23:30), C5 (transferred to them), C6, C11; C3 accepted in April.
    assert (r2.assigned, r2.accepted, r2.resolved, r2.escalated) == (4, 2, 2, 1)
    assert (r2.ratings, r2.satisfied_ratings, r2.rating_sum) == (1, 0, 3)
    # r3: C5 and C9 assigned; C5 transferred away (C9 went to another district).
    assert (r3.assigned, r3.transferred_away, r3.resolved) == (2, 1, 0)
    assert (r4.assigned, r4.accepted_on_time, r4.suggestions_made) == (1, 1, 1)
    assert r4.suggestions_answered == 0  # answered on 10 April
    async with every_district(march.pool).acquire() as conn:
        april = await (await Reader.open(conn)).activity("demo", month("2026-04", SHANGHAI))
    assert april["r4"].suggestions_answered == 1
    assert april["r2"].accepted == 1  # C3


async def test_a_station_s_days_are_local_days(march: Loaded) -> None:
    async with every_district(march.pool).acquire() as conn:
        days = await (await Reader.open(conn)).station_days("demo", "dh_home", MARCH)
    by_day = {d.day: d for d in days}
    assert sorted(by_day) == [date(2026, 3, d) for d in (5, 6, 8, 9, 11, 12, 14, 15, 16, 31)]
    assert (by_day[date(2026, 3, 5)].assigned, by_day[date(2026, 3, 5)].responded) == (1, 1)
    assert by_day[date(2026, 3, 6)].escalated == 1
    assert (by_day[date(2026, 3, 11)].assigned, by_day[date(2026, 3, 11)].responded) == (1, 1)
    assert by_day[date(2026, 3, 14)].resolved_on_time == 1
    assert (by_day[date(2026, 3, 16)].ratings, by_day[date(2026, 3, 16)].satisfied_ratings) == (
        1,
        0,
    )
    assert by_day[date(2026, 3, 31)].assigned == 1  # C3 at 23:30


async def test_hot_spots_compare_community_and_category_with_the_month_before(
    march: Loaded,
) -> None:
    async with every_district(march.pool).acquire() as conn:
        ctx = await views.open_context(conn, ADMIN, "demo")
        found = await views.hotspots(ctx, MARCH)
    rows = [(h.community, h.category_code, h.count, h.previous, h.growth) for h in found.hotspots]
    assert rows == [
        ("东湖社区", "property", 3, 2, 0.5),  # C1 C2 C7 against C0 C12
        ("湖滨社区", "env", 3, 0, None),  # C3 C6 (merged: still raised) C11
        ("西山社区", "road", 2, 0, None),  # C5 C8; C9 went to another district
        (None, None, 1, 0, None),  # C10
    ]
    assert found.previous_period.first_day == "2026-02-01"


async def test_category_trends_count_by_month_and_by_monday_weeks(march: Loaded) -> None:
    spring = period("2026-02-01", "2026-04-30", SHANGHAI, MARCH.end)
    async with every_district(march.pool).acquire() as conn:
        ctx = await views.open_context(conn, ADMIN, "demo")
        monthly = await views.trends(ctx, spring, "month")
        weekly = await views.trends(ctx, MARCH, "week")
    assert monthly.buckets == ["2026-02-01", "2026-03-01", "2026-04-01"]
    series = {s.category_code: s.counts for s in monthly.series}
    assert series == {"property": [2, 3, 0], "env": [0, 3, 0], "road": [0, 2, 1], None: [0, 1, 0]}
    assert monthly.totals == [2, 9, 1]
    assert weekly.buckets[0] == "2026-02-23"  # the Monday of the week of 1 March
    assert sum(weekly.totals) == 9
    # C3 (Tuesday 31 March) falls in the week of Monday 30 March.
    assert weekly.totals[weekly.buckets.index("2026-03-30")] == 1
