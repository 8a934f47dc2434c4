"""Rebuilds: from the store into the shadow slots, equal to the live projections, while
the consumer goes on; ``--at`` equal to what the live projections showed then."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from eventkit.store import EventStore, RecordedEvent
from services.reporting.bootstrap import Reporting
from services.reporting.errors import RebuildRunning
from services.reporting.projection import live_slots
from services.reporting.tables import ASOF_SCHEMA, PROJECTIONS, SCHEMA, TABLES
from tests.every_district import every_district
from tests.reporting.conftest import project, rebuild_while_consuming
from tests.reporting.history import interleaved, local, random_cases, store_history
from tests.reporting.march import march_history

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(pool: asyncpg.Pool, schema: str = SCHEMA) -> Snapshot:
    """Every row of every live slot, in key order."""
    out: Snapshot = {}
    async with every_district(pool).acquire() as conn:
        slots = await live_slots(conn, schema)
        for name, tables in PROJECTIONS.items():
            for table in tables:
                rows = await conn.fetch(
                    f"SELECT {', '.join(table.columns)} FROM {schema}.{table.name} "
                    f"WHERE slot = $1 ORDER BY {', '.join(table.key)}",
                    slots[name],
                )
                out[table.name] = [tuple(r.values()) for r in rows]
    return out


async def march_in(store: EventStore, database_url: str) -> list[RecordedEvent]:
    return await store_history(store, database_url, march_history().ordered())


async def test_a_rebuild_equals_the_live_projections_and_swaps_to_its_own_slot(
    service: Reporting, store: EventStore, database_url: str
) -> None:
    events = await march_in(store, database_url)
    await project(service, interleaved(events, seed=3))
    before = await snapshot(service.pool)
    assert len(before["cases"]) == 14
    assert len(before["case_steps"]) > 50

    result = await service.rebuild.run()

    assert result.swapped
    assert result.equal
    assert {c.table for c in result.comparisons} == set(TABLES)
    assert all(c.live_rows == c.shadow_rows for c in result.comparisons)
    assert result.events == sum(1 for e in events if e.event_type != "CaseLinked")
    async with service.pool.acquire() as conn:
        assert await live_slots(conn) == {"directory": 1, "cases": 1, "ratings": 1, "scans": 1}
    assert await snapshot(service.pool) == before


async def test_a_rebuild_lists_what_the_live_projection_got_wrong_and_puts_it_right(
    service: Reporting, store: EventStore, database_url: str
) -> None:
    await project(service, await march_in(store, database_url))
    before = await snapshot(service.pool)
    async with every_district(service.pool).acquire() as conn:
        await conn.execute("UPDATE reporting.cases SET status = 'closed' WHERE case_id = 'C3'")
        await conn.execute("DELETE FROM reporting.ratings WHERE case_id = 'C1'")

    checked = await service.rebuild.run(dry_run=True)

    assert not checked.swapped
    assert not checked.equal
    wrong = {c.table: c for c in checked.comparisons if not c.equal}
    assert set(wrong) == {"cases", "ratings"}
    assert wrong["cases"].differences == ['cases C3: status: "closed" → "in_progress"']
    assert wrong["ratings"].differences == ["ratings C1/1: only in the rebuild"]
    assert (wrong["ratings"].live_rows, wrong["ratings"].shadow_rows) == (3, 4)

    fixed = await service.rebuild.run()
    assert fixed.swapped
    assert not fixed.equal
    assert await snapshot(service.pool) == before


async def test_a_rebuild_while_the_consumer_goes_on_misses_nothing_and_counts_nothing_twice(
    service: Reporting, store: EventStore, database_url: str
) -> None:
    history = march_history()
    random_cases(history, 400, seed=11, start=local(3, 1))
    events = await store_history(store, database_url, history.ordered())
    result = await rebuild_while_consuming(service, events, seed=5)

    assert result.swapped
    assert result.equal, [c.differences for c in result.comparisons]
    assert service.consumer.stats.duplicates == 0
    after = await service.rebuild.run(dry_run=True)
    assert after.equal, [c.differences for c in after.comparisons]
    assert len((await snapshot(service.pool))["cases"]) == 414


async def test_a_rebuild_at_a_past_moment_equals_what_the_live_projections_showed_then(
    service: Reporting, store: EventStore, database_url: str
) -> None:
    events = await march_in(store, database_url)
    moment = local(3, 13, 12)
    await project(service, [e for e in events if e.recorded_at <= moment])
    then = await snapshot(service.pool)
    await project(service, [e for e in events if e.recorded_at > moment])
    now = await snapshot(service.pool)
    assert then != now

    result = await service.rebuild.run(at=moment)

    assert result.schema == ASOF_SCHEMA
    assert result.as_of == moment
    assert await snapshot(service.pool, ASOF_SCHEMA) == then
    assert await snapshot(service.pool) == now  # the live projections are left alone
    async with service.pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT as_of FROM reporting_asof.projections WHERE name = 'cases'")
            == moment
        )


async def test_one_projection_can_be_rebuilt_alone(
    service: Reporting, store: EventStore, database_url: str
) -> None:
    await project(service, await march_in(store, database_url))

    result = await service.rebuild.run(["ratings"])

    assert result.equal
    assert [c.table for c in result.comparisons] == ["ratings"]
    async with service.pool.acquire() as conn:
        assert await live_slots(conn) == {"directory": 0, "cases": 0, "ratings": 1, "scans": 0}


async def test_two_rebuilds_of_the_same_schema_do_not_run_at_once(
    service: Reporting, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", 0x6D71_7270_0001)
        with pytest.raises(RebuildRunning):
            await service.rebuild.run()
        await conn.execute("SELECT pg_advisory_unlock($1)", 0x6D71_7270_0001)
