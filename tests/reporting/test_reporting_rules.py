"""The pure rules of reporting: how a case's events become its facts and steps, periods
in a district's time zone, the indicated rating, who sees what, the charts; and the
tables the code writes agree with the migration."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import pytest

from contracts import Actor, ActorRole
from contracts.cases import CaseEvent
from eventkit.identity import Principal, Role
from services.reporting.assessment import DEFAULT_CRITERIA, Criteria, Criterion, assess
from services.reporting.case_facts import CaseFacts, StepKind, fold_case
from services.reporting.charts import Line, line_chart
from services.reporting.errors import InvalidPeriod, OutOfScope
from services.reporting.periods import Period, month, period
from services.reporting.scope import scope_for
from services.reporting.stats import CaseStats
from services.reporting.tables import ASOF_SCHEMA, SCHEMA, TABLES
from tests.reporting.history import SHANGHAI, Case, History, local

STAFF = Actor(id="staff", role=ActorRole.LIAISON)


def fold(history: History) -> tuple[CaseFacts, list[tuple[str, str | None, bool | None]]]:
    """The facts of the history's one case and its steps (kind, representative, on time)."""
    facts: CaseFacts | None = None
    steps = []
    for version, (at, event) in enumerate(history.ordered(), start=1):
        assert isinstance(event, CaseEvent)
        facts, new = fold_case(facts, event, at, version)
        steps += [(s.kind, s.representative_id, s.on_time) for s in new]
    assert facts is not None
    return facts, steps


def opened() -> tuple[History, Case]:
    h = History()
    case = h.case(
        "K1",
        local(3, 2),
        category="road",
        station="s1",
        representative="r1",
        community="东湖社区",
        street="dh",
    )
    return h, case


def test_a_transfer_within_the_district_credits_the_old_holder_and_assigns_the_new() -> None:
    h, case = opened()
    case.transfer(local(3, 3), "s2", "r2").accept(local(3, 3, 10))
    facts, steps = fold(h)
    assert (facts.station_code, facts.representative_id, facts.status) == (
        "s2",
        "r2",
        "in_progress",
    )
    assert facts.transferred_count == 1
    assert (StepKind.TRANSFERRED, "r1", None) in steps
    assert [s for s in steps if s[0] == StepKind.ASSIGNED] == [
        (StepKind.ASSIGNED, "r1", None),
        (StepKind.ASSIGNED, "r2", None),
    ]
    assert (StepKind.RESPONDED, "r2", True) in steps


def test_a_transfer_to_another_district_ends_the_case_here() -> None:
    h, case = opened()
    case.transfer_out(local(3, 3), "other", "K1X")
    facts, steps = fold(h)
    assert facts.status == "transferred_out"
    assert facts.transferred_to_district == "other"
    assert facts.closed_at == local(3, 3)
    assert steps[-1] == (StepKind.TRANSFERRED_OUT, "r1", None)


def test_a_late_response_is_late_and_only_the_first_response_settles_it() -> None:
    h, case = opened()
    case.missed(local(3, 3, 9), "response").reply(local(3, 3, 10))
    case.accept(local(3, 3, 11))
    facts, steps = fold(h)
    assert facts.responded_on_time is False
    assert facts.first_response_at == local(3, 3, 10)
    assert [s for s in steps if s[0] == StepKind.RESPONDED] == [(StepKind.RESPONDED, "r1", False)]
    assert (StepKind.ACCEPTED, "r1", False) in steps


def test_a_reopened_case_starts_a_new_round_for_its_resolution() -> None:
    h, case = opened()
    case.accept(local(3, 2, 10)).missed(local(3, 7), "resolution").resolve(local(3, 8))
    case.reopen(local(3, 9), representative="r3").resolve(local(3, 10))
    facts, steps = fold(h)
    assert facts.reopened_count == 1
    assert facts.representative_id == "r3"
    assert (facts.resolution_seq, facts.resolved_on_time, facts.resolution_missed) == (
        2,
        True,
        False,
    )
    assert facts.first_resolved_at == local(3, 8)
    assert [s[2] for s in steps if s[0] == StepKind.RESOLVED] == [False, True]


def test_a_suggestion_is_answered_by_the_first_reply_after_it_on_time_or_not() -> None:
    h, case = opened()
    case.accept(local(3, 2, 10)).convert(local(3, 3), "r4", "关于增设信号灯的建议")
    case.reply(local(6, 20)).close(local(6, 21))
    facts, steps = fold(h)
    assert facts.status == "closed"
    assert facts.converted_at == local(3, 3)
    assert facts.suggestion_answered_at == local(6, 20)
    assert [s for s in steps if s[0] == StepKind.ANSWERED] == [(StepKind.ANSWERED, "r4", False)]
    assert (StepKind.CONVERTED, "r4", None) in steps


def test_a_withdrawn_case_is_marked_and_a_reopening_unmarks_it() -> None:
    h, case = opened()
    case.withdraw(local(3, 3))
    facts, _ = fold(h)
    assert (facts.status, facts.withdrawn, facts.first_response_at) == ("closed", True, None)
    case.reopen(local(3, 4))
    facts, _ = fold(h)
    assert (facts.status, facts.withdrawn) == ("in_progress", False)


def test_a_merged_case_ends_and_an_event_before_the_opening_is_refused() -> None:
    h, case = opened()
    case.merge(local(3, 3), "K0")
    facts, _ = fold(h)
    assert (facts.status, facts.merged_into) == ("merged", "K0")
    orphan = History()
    orphan.case("K2", local(3, 2)).accept(local(3, 3))
    accepted = orphan.ordered()[-1][1]
    assert isinstance(accepted, CaseEvent)
    with pytest.raises(ValueError, match="before CaseOpened"):
        fold_case(None, accepted, local(3, 3), 3)


def test_a_month_in_shanghai_runs_from_its_local_midnight() -> None:
    march = month("2026-03", SHANGHAI)
    assert (march.start.isoformat(), march.end.isoformat()) == (
        "2026-03-01T00:00:00+08:00",
        "2026-04-01T00:00:00+08:00",
    )
    assert march.previous() == Period(date(2026, 2, 1), date(2026, 2, 28), SHANGHAI)
    ten = period("2026-03-11", "2026-03-20", SHANGHAI, local(3, 25))
    assert ten.previous() == Period(date(2026, 3, 1), date(2026, 3, 10), SHANGHAI)
    spring = period("2026-02-15", "2026-04-10", SHANGHAI, local(4, 20))
    assert [(m.first_day.day, m.last_day.day) for m in spring.months()] == [
        (15, 28),
        (1, 31),
        (1, 10),
    ]
    default = period(None, None, SHANGHAI, local(4, 1, 0, 30) - timedelta(hours=1))
    assert default.first_day == date(2026, 3, 1)  # 23:30 on 31 March is still March
    assert (march.label("zh"), march.label("en")) == ("2026年3月", "March 2026")
    with pytest.raises(InvalidPeriod):
        month("2026-13", SHANGHAI)
    with pytest.raises(InvalidPeriod):
        period("2020-01-01", "2026-01-01", SHANGHAI, local(4, 1))


def test_the_indicated_rating_gives_each_point_with_its_reason() -> None:
    stats = CaseStats(
        counted=20,
        response_settled=20,
        response_on_time=19,
        resolution_settled=18,
        resolved=16,
        rated=10,
        satisfied=9,
        overdue=2,
    )
    criteria = Criteria(
        criteria=[
            Criterion(metric="response_rate", threshold=0.95),
            Criterion(metric="resolution_rate", threshold=0.9),
            Criterion(metric="satisfaction_rate", threshold=0.8),
            Criterion(metric="satisfaction_rate", threshold=0.95, points=2),
            Criterion(metric="overdue_share", threshold=0.1),
        ]
    )
    result = assess(criteria, stats, None, 3)
    assert [p.points for p in result.details] == [1, 0, 1, 0, 1]
    assert (result.stars, result.points, result.possible, result.official_stars) == (3, 3, 6, 3)
    assert result.details[1].reason_zh == "解决率 88.9%（16/18），低于 90.0%，不得分"
    assert result.details[4].reason_en == "overdue share 10.0% (2/20), at most 10.0%: 1 point"
    quiet = assess(
        DEFAULT_CRITERIA, CaseStats(counted=4, response_settled=4, response_on_time=4), None, 5
    )
    assert quiet.stars is None
    assert quiet.points == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        Criteria.model_validate({"criteria": [{"metric": "satisfaction_rate", "threshold": 90}]})


def test_each_role_sees_its_part_of_the_district() -> None:
    supervisor = scope_for(Principal("ss", Role.STREET_SUPERVISOR, "demo"), ["dh"], [])
    assert supervisor.sees_street("dh")
    assert not supervisor.sees_street("xs")
    assert supervisor.sees_station("dh_home", "dh")
    assert not supervisor.sees_station("xs_home", "xs")
    liaison = scope_for(Principal("lo", Role.LIAISON, "demo"), [], ["dh_home"])
    assert liaison.sees_station("dh_home", "dh")
    assert not liaison.sees_station("dh_donghu", "dh")
    assert liaison.sees_representative("r2", {"dh_home": "dh"})
    assert not liaison.sees_representative("r1", {"dh_donghu": "dh"})
    representative = scope_for(Principal("r1", Role.REPRESENTATIVE, "demo"), [], [])
    assert representative.sees_representative("r1", {})
    assert not representative.sees_representative("r2", {})
    with pytest.raises(OutOfScope):
        representative.require_wide()
    with pytest.raises(OutOfScope):
        scope_for(Principal("h", Role.HOTLINE, "demo"), [], [])


def test_a_chart_breaks_its_line_where_there_is_no_value_and_escapes_its_words() -> None:
    svg = str(
        line_chart(
            "<b>三率</b>",
            ["一", "二", "三", "四"],
            [Line("响应率", [0.5, None, 0.7, 0.9])],
            percent=True,
        )
    )
    assert svg.count("<polyline") == 1  # the run after the gap; a lone point has no line
    assert svg.count("<circle") == 3
    assert "&lt;b&gt;三率&lt;/b&gt;" in svg
    assert "<b>" not in svg


async def test_the_tables_the_code_writes_are_those_the_migration_made(
    pool: asyncpg.Pool,
) -> None:
    for schema in (SCHEMA, ASOF_SCHEMA):
        for table in TABLES.values():
            columns = await pool.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                schema,
                table.name,
            )
            assert tuple(c["column_name"] for c in columns) == ("slot", *table.columns)
            key = await pool.fetch(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = $1::regclass AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)",
                f"{schema}.{table.name}",
            )
            assert tuple(k["attname"] for k in key) == ("slot", *table.key)
