"""The directory: district files and changes, as events and read models (real database)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from contracts.base import LatLong
from eventkit.store import EventStore
from services.routing.bootstrap import Routing
from services.routing.district_file import (
    DirectoryChanges,
    DistrictFile,
    DistrictFileError,
    ReceptionEntry,
    RepresentativeEntry,
    StationEntry,
    TaxonomyEntry,
    parse_district_file,
)
from services.routing.liaison_plan import rule_days, rules_of
from tests.every_district import every_district
from tests.routing.routing_support import ADMIN, DEMO_FILE


async def event_types(pool: asyncpg.Pool) -> Counter[str]:
    rows = await every_district(pool).fetch("SELECT event_type FROM eventstore.events")
    return Counter(r["event_type"] for r in rows)


async def test_importing_the_demo_district_emits_the_directory_and_fills_the_read_models(
    service: Routing, demo_file: DistrictFile, pool: asyncpg.Pool
) -> None:
    plan = await service.directory.change("demo", demo_file, ADMIN)

    counts = await event_types(pool)
    assert counts == Counter(plan.summary)
    assert counts["DistrictRegistered"] == 1
    assert counts["StreetRegistered"] == 3
    assert counts["StationRegistered"] == 21
    assert counts["RepresentativeRegistered"] == 60
    assert counts["TaxonomyPublished"] == 1
    kinds = {
        r["kind"]: r["n"]
        for r in await every_district(pool).fetch(
            "SELECT kind, count(*) AS n FROM routing.stations WHERE active GROUP BY kind"
        )
    }
    assert set(kinds) == {"home", "community", "industry", "contact_point"}
    assert sum(kinds.values()) == 20
    assert (
        await every_district(pool).fetchval(
            "SELECT count(*) FROM routing.representatives WHERE active"
        )
        == 59
    )
    levels = {
        r["level"]
        for r in await every_district(pool).fetch(
            "SELECT DISTINCT level FROM routing.representatives"
        )
    }
    assert levels == {"national", "provincial", "municipal", "district"}
    streams = {
        r["stream_id"]
        for r in await every_district(pool).fetch("SELECT stream_id FROM eventstore.events")
    }
    assert {"district-demo", "station-demo.dh_home", "representative-demo.r001"} <= streams


async def test_importing_the_same_file_again_changes_nothing(
    demo: Routing, demo_file: DistrictFile, pool: asyncpg.Pool
) -> None:
    before = await every_district(pool).fetchval("SELECT count(*) FROM eventstore.events")

    plan = await demo.directory.change("demo", demo_file, ADMIN)

    assert plan.events == []
    assert await every_district(pool).fetchval("SELECT count(*) FROM eventstore.events") == before


async def test_a_station_moves_and_a_representative_changes_station_without_losing_history(
    demo: Routing, demo_file: DistrictFile, pool: asyncpg.Pool, store: EventStore
) -> None:
    moved = StationEntry(
        **{
            **next(s for s in demo_file.stations if s.code == "dh_hubin").model_dump(),
            "address": "示范区湖滨街88号新址",
            "position": LatLong(lat=30.2779, long=120.1620),
        }
    )
    rep = next(r for r in demo_file.representatives if r.id == "r003")
    rep_moved = RepresentativeEntry(**{**rep.model_dump(), "stations": ["dh_hubin"]})

    plan = await demo.directory.change(
        "demo", DirectoryChanges(stations=[moved], representatives=[rep_moved]), ADMIN
    )

    assert plan.summary == {
        "StationMoved": 1,
        "RepresentativeLeftStation": 1,
        "RepresentativeJoinedStation": 1,
    }
    station = await every_district(pool).fetchrow(
        "SELECT address, lat FROM routing.stations WHERE station_code = 'dh_hubin'"
    )
    assert station is not None
    assert tuple(station) == ("示范区湖滨街88号新址", 30.2779)
    stays = await every_district(pool).fetch(
        "SELECT station_code, left_at IS NULL AS current FROM routing.memberships "
        "WHERE representative_id = 'r003' ORDER BY joined_at, station_code"
    )
    assert [tuple(r) for r in stays] == [("dh_donghu", False), ("dh_hubin", True)]
    history = [r.event_type for r in await store.read_stream("station-demo.dh_hubin")]
    # The station's stream also holds its roster and activities (docs/liaison.md).
    assert [t for t in history if t.startswith("Station")] == ["StationRegistered", "StationMoved"]


async def test_retiring_keeps_the_station_and_the_representative_in_the_record(
    demo: Routing, pool: asyncpg.Pool, store: EventStore
) -> None:
    await demo.directory.retire_station("demo", "dh_market", "市场搬迁", ADMIN)
    await demo.directory.retire_representative("demo", "r002", "任期届满", ADMIN)
    await demo.directory.retire_representative(
        "demo", "r002", "再次", ADMIN
    )  # already retired: nothing

    station = await every_district(pool).fetchrow(
        "SELECT active, retired_reason FROM routing.stations WHERE station_code = 'dh_market'"
    )
    assert station is not None
    assert tuple(station) == (False, "市场搬迁")
    rep_events = [r.event_type for r in await store.read_stream("representative-demo.r002")]
    assert rep_events[-3:] == [
        "RepresentativeLeftStation",
        "RepresentativeLeftStation",
        "RepresentativeRetired",
    ]
    current = await every_district(pool).fetchval(
        "SELECT count(*) FROM routing.memberships WHERE representative_id = 'r002' "
        "AND left_at IS NULL"
    )
    assert current == 0


async def test_a_changed_taxonomy_is_published_as_a_new_version(
    demo: Routing, demo_file: DistrictFile, pool: asyncpg.Pool
) -> None:
    assert demo_file.taxonomy is not None
    categories = [c.model_dump() for c in demo_file.taxonomy.categories]
    categories[0]["keywords"] = [*categories[0]["keywords"], "窨井"]
    taxonomy = TaxonomyEntry.model_validate(
        {**demo_file.taxonomy.model_dump(), "categories": categories}
    )

    plan = await demo.directory.change("demo", DirectoryChanges(taxonomy=taxonomy), ADMIN)

    assert plan.summary == {"TaxonomyPublished": 1}
    version = await every_district(pool).fetchval(
        "SELECT (taxonomy->>'version')::int FROM routing.districts WHERE district_id = 'demo'"
    )
    assert version == 2


async def test_a_file_with_dangling_references_is_refused_with_every_problem(
    demo: Routing, pool: asyncpg.Pool
) -> None:
    before = await every_district(pool).fetchval("SELECT count(*) FROM eventstore.events")
    changes = DirectoryChanges(
        stations=[StationEntry(code="x1", name_zh="新站", kind="community", street="nowhere")],
        representatives=[
            RepresentativeEntry(
                id="r999", name_zh="测试", level="district", stations=["ghost"], contact_point="x9"
            )
        ],
    )

    with pytest.raises(DistrictFileError) as refused:
        await demo.directory.change("demo", changes, ADMIN)

    problems = " ".join(refused.value.problems)
    assert "nowhere" in problems
    assert "ghost" in problems
    assert "x9" in problems
    assert await every_district(pool).fetchval("SELECT count(*) FROM eventstore.events") == before


def test_a_file_that_is_not_yaml_or_has_unknown_fields_is_refused() -> None:
    with pytest.raises(DistrictFileError, match="YAML"):
        parse_district_file("district: [unclosed")
    with pytest.raises(DistrictFileError, match="colour"):
        parse_district_file("district: {code: demo, name_zh: 示范区, colour: red}")


def test_recurring_reception_days_are_expanded_ahead() -> None:
    entry = ReceptionEntry.model_validate({"station": "s", "monthly": {"week": 3, "weekday": 2}})

    [rule] = rules_of([entry])
    days = rule_days(rule, date(2026, 9, 28), horizon_days=100)

    # The third Tuesday of October, November and December 2026.
    assert days == [date(2026, 10, 20), date(2026, 11, 17), date(2026, 12, 15)]


def test_the_cli_imports_a_district_file_and_a_repeat_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "MINQING_DATABASE_URL": database_url, "MINQING_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "minqing.cli", "directory", "import", str(DEMO_FILE)]

    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert first.returncode == 0, first.stderr
    assert "RepresentativeRegistered" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        DEMO_FILE.read_text(encoding="utf-8").replace("street: dh\n", "street: zz\n", 1),
        encoding="utf-8",
    )
    refused = subprocess.run(
        [*command[:-1], str(broken)], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "zz" in refused.stderr
