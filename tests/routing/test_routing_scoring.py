"""Station choice and the representative's score (unit tests, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contracts import Actor, ActorRole, Priority
from contracts.directory import RoutingPolicyPublished, ScoreWeights, StationKind
from services.routing.assignment import Matter, Place, assign, choose_station, community_of, score
from services.routing.directory import (
    Community,
    Directory,
    ReceptionDay,
    Representative,
    Station,
    Street,
)

TODAY = date(2026, 10, 12)
POLICY = RoutingPolicyPublished(
    district_id="demo",
    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    actor=Actor(id="admin", role=ActorRole.DISTRICT_ADMIN),
    version=1,
    weights=ScoreWeights(),
    max_open_cases=10,
    reception_horizon_days=10,
)
PROPERTY = frozenset({"物业管理", "老旧小区改造"})


def directory(*representatives: Representative, days: tuple[ReceptionDay, ...] = ()) -> Directory:
    stations = {
        "home": Station(
            "home",
            "东湖街道人大代表之家",
            StationKind.HOME,
            "dh",
            frozenset({"东湖社区", "湖滨社区"}),
            (30.2735, 120.1560),
        ),
        "donghu": Station(
            "donghu", "东湖社区联络站", StationKind.COMMUNITY, "dh", frozenset({"东湖社区"}), None
        ),
        "hubin": Station(
            "hubin",
            "湖滨社区联络站",
            StationKind.COMMUNITY,
            "dh",
            frozenset({"湖滨社区"}),
            (30.2771, 120.1611),
        ),
        "closed": Station(
            "closed",
            "老街联络站",
            StationKind.COMMUNITY,
            "dh",
            frozenset({"老街社区"}),
            (30.2700, 120.1500),
            active=False,
        ),
    }
    return Directory(
        district_id="demo",
        name_zh="示范区",
        streets={"dh": Street("dh", "东湖街道")},
        communities={
            "东湖社区": Community("东湖社区", "dh", "第一选区", (30.2741, 120.1551)),
            "湖滨社区": Community("湖滨社区", "dh", "第一选区", (30.2768, 120.1604)),
            "老街社区": Community("老街社区", "dh", "第二选区", (30.2700, 120.1500)),
        },
        stations=stations,
        representatives={r.id: r for r in representatives},
        reception_days=days,
    )


def rep(rep_id: str, **fields: object) -> Representative:
    defaults: dict[str, object] = {"name_zh": f"代表{rep_id}", "stations": frozenset({"donghu"})}
    defaults.update(fields)
    return Representative(rep_id, **defaults)  # type: ignore[arg-type]


def matter(priority: Priority = Priority.NORMAL, community: str | None = "东湖社区") -> Matter:
    d = directory()
    return Matter(
        community=d.communities.get(community) if community else None,
        expertise=PROPERTY,
        priority=priority,
        today=TODAY,
    )


def test_the_scanned_station_comes_first() -> None:
    choice = choose_station(directory(), Place("hubin", "东湖社区", (30.2735, 120.1560)))

    assert choice.station is not None
    assert (choice.station.code, choice.rule) == ("hubin", "qr")


def test_then_the_station_serving_the_community_the_closest_kind_first() -> None:
    choice = choose_station(directory(), Place(None, "东湖社区", None))

    assert choice.station is not None
    # Both the home and the community station serve it: the community station wins.
    assert (choice.station.code, choice.rule) == ("donghu", "community")


def test_then_the_nearest_active_station_to_the_point() -> None:
    # Right next to the retired station: it is skipped.
    choice = choose_station(directory(), Place("closed", "老街社区", (30.2700, 120.1500)))

    assert choice.station is not None
    assert (choice.station.code, choice.rule) == ("home", "nearest")
    assert choice.distance_m is not None
    assert 650 < choice.distance_m < 750


def test_else_no_station_at_all() -> None:
    choice = choose_station(directory(), Place(None, "外区社区", None))

    assert (choice.station, choice.rule) == (None, "none")


def test_a_point_inside_a_community_gives_that_community() -> None:
    community = community_of(directory(), Place(None, None, (30.2740, 120.1552)))

    assert community is not None
    assert community.name == "东湖社区"


def test_each_part_of_the_score_is_weighted_and_recorded() -> None:
    d = directory(
        rep(
            "r1",
            electoral_district="第一选区",
            residence_community="东湖社区",
            expertise=frozenset({"物业管理"}),
            contact_point="donghu",
            leading_cadre=True,
        ),
        days=(ReceptionDay("r1", "donghu", date(2026, 10, 17)),),
    )
    station = d.stations["donghu"]

    normal = score(d, station, d.representatives["r1"], matter(), 4, POLICY)
    important = score(d, station, d.representatives["r1"], matter(Priority.IMPORTANT), 4, POLICY)

    assert normal.components == {
        "electoral_district": 3.0,
        "residence": 2.0,
        "expertise": 3.0,
        "contact_point": 1.5,
        "workload": 1.2,  # 2 x (1 - 4/10)
        "reception": 0.5,  # 1 x (1 - 5/10): five days ahead, horizon ten
        "leading_cadre": 0.0,  # only for important and urgent matters
    }
    assert normal.score == 11.2
    assert important.components["leading_cadre"] == 2.0
    assert important.score == 13.2


def test_living_in_a_community_the_station_serves_is_half_a_residence_match() -> None:
    d = directory(rep("r1", residence_community="湖滨社区", stations=frozenset({"home"})))

    result = score(d, d.stations["home"], d.representatives["r1"], matter(), 0, POLICY)

    assert result.components["residence"] == 1.0


def test_the_best_score_wins_and_the_top_three_are_recorded() -> None:
    d = directory(
        rep("r1", expertise=frozenset({"物业管理"})),
        rep("r2", expertise=frozenset({"物业管理"}), electoral_district="第一选区"),
        rep("r3"),
        rep("r4", residence_community="东湖社区"),
    )
    choice = choose_station(d, Place("donghu", "东湖社区", None))

    result = assign(d, choice, matter(), classified=True, open_cases={}, policy=POLICY)

    assert result.representative_id == "r2"
    assert result.queue == "representative"
    assert [c.representative_id for c in result.candidates] == ["r2", "r1", "r4"]
    assert "r2" in result.reason


def test_ties_go_to_the_lighter_workload_then_the_lower_id() -> None:
    d = directory(rep("r9"), rep("r1"), rep("r5"))
    choice = choose_station(d, Place("donghu", None, None))
    flat = POLICY.model_copy(update={"weights": ScoreWeights(workload=0.0)})

    by_load = assign(
        d, choice, matter(), classified=True, open_cases={"r1": 3, "r5": 3, "r9": 1}, policy=flat
    )
    by_id = assign(d, choice, matter(), classified=True, open_cases={}, policy=flat)

    assert by_load.representative_id == "r9"
    assert [c.representative_id for c in by_id.candidates] == ["r1", "r5", "r9"]


def test_the_workload_spreads_cases_fairly() -> None:
    d = directory(rep("r1"), rep("r2"))
    choice = choose_station(d, Place("donghu", None, None))

    result = assign(d, choice, matter(), classified=True, open_cases={"r1": 2}, policy=POLICY)

    assert result.representative_id == "r2"


def test_a_representative_at_the_cap_is_not_available_except_for_urgent_matters() -> None:
    d = directory(rep("r1"))
    choice = choose_station(d, Place("donghu", None, None))
    full = {"r1": 10}

    normal = assign(d, choice, matter(), classified=True, open_cases=full, policy=POLICY)
    urgent = assign(
        d, choice, matter(Priority.URGENT), classified=True, open_cases=full, policy=POLICY
    )

    assert (normal.queue, normal.representative_id) == ("liaison", None)
    assert "联络员" in normal.reason
    assert (urgent.queue, urgent.representative_id) == ("representative", "r1")


def test_retired_representatives_and_those_of_other_stations_are_not_candidates() -> None:
    d = directory(
        rep("r1", active=False),
        rep("r2", stations=frozenset({"hubin"})),
        rep("r3", stations=frozenset(), contact_point="donghu"),
    )
    choice = choose_station(d, Place("donghu", None, None))

    result = assign(d, choice, matter(), classified=True, open_cases={}, policy=POLICY)

    assert [c.representative_id for c in result.candidates] == ["r3"]


def test_an_unclassified_matter_waits_in_the_stations_triage_queue() -> None:
    d = directory(rep("r1"))
    choice = choose_station(d, Place("donghu", None, None))

    result = assign(d, choice, matter(), classified=False, open_cases={}, policy=POLICY)

    assert (result.station_code, result.queue, result.representative_id) == (
        "donghu",
        "triage",
        None,
    )
    assert result.candidates == ()


def test_without_a_station_the_matter_waits_in_the_district_triage_queue() -> None:
    choice = choose_station(directory(rep("r1")), Place(None, None, None))

    result = assign(directory(), choice, matter(), classified=True, open_cases={}, policy=POLICY)

    assert (result.station_code, result.queue) == (None, "triage")


@pytest.mark.parametrize("weight", [0.0, 5.0])
def test_the_weights_are_the_districts(weight: float) -> None:
    d = directory(rep("r1", expertise=frozenset({"物业管理"})))
    policy = POLICY.model_copy(update={"weights": ScoreWeights(expertise=weight)})

    result = score(d, d.stations["donghu"], d.representatives["r1"], matter(), 0, policy)

    assert result.components["expertise"] == weight
