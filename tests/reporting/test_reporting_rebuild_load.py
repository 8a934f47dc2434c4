"""A rebuild loads its shadow slots by COPY with their row-level security off
(``migrations/0005_shadow_load.sql``): while a slot is open the services cannot read it
by its name, the partitioned table keeps its policy, and every slot is closed again
when the load ends, also when it fails."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from eventkit.db import Conn, scoped
from eventkit.store import EventStore
from services.reporting.bootstrap import Reporting
from services.reporting.case_facts import CaseFacts
from services.reporting.rebuild import _Run
from services.reporting.shadow import Checksum, checksum, compare, copy_rows, set_loading
from services.reporting.tables import ASOF_SCHEMA, CASE_STEPS, CASES, SCHEMA
from tests.reporting.conftest import project
from tests.reporting.history import store_history
from tests.reporting.march import march_history

AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _case(case_id: str, district: str) -> tuple[object, ...]:
    return CaseFacts(
        case_id=case_id,
        district_id=district,
        opinion_id=f"op_{case_id}",
        channel="qr",
        community=None,
        street_code=None,
        category_code=None,
        priority="normal",
        station_code=None,
        representative_id=None,
        queue="triage",
        status="triage",
        withdrawn=False,
        opened_at=AT,
        updated_at=AT,
        version=1,
    ).row()


async def _unsecured_slots(conn: Conn) -> list[str]:
    """Slots of either schema whose row-level security is off or whose runtime role
    lost a privilege."""
    rows = await conn.fetch(
        """
        SELECT n.nspname || '.' || c.relname AS name
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('reporting', 'reporting_asof') AND c.relkind = 'r' AND c.relispartition
           AND NOT (c.relrowsecurity
                    AND has_table_privilege('minqing_runtime', c.oid, 'SELECT, UPDATE, DELETE'))
        """
    )
    return [r["name"] for r in rows]


async def test_a_slot_open_for_loading_is_refused_by_name_and_read_through_its_policy(
    service: Reporting,
) -> None:
    async with service.pool.acquire() as conn:
        shadow = 1 - int(
            await conn.fetchval("SELECT slot FROM reporting.projections WHERE name = 'cases'")
        )
        await set_loading(conn, SCHEMA, [(CASES, shadow)], True)
        try:
            async with scoped(conn, "*"):
                rows = [_case("L1", "demo"), _case("L2", "other")]
                await copy_rows(conn, SCHEMA, CASES, shadow, rows, loading=True)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with scoped(conn, "demo"):
                    await conn.fetch(f"SELECT district_id FROM reporting.cases_s{shadow}")
            async with scoped(conn, "demo"):
                seen = await conn.fetch(
                    "SELECT case_id FROM reporting.cases WHERE slot = $1 ORDER BY 1", shadow
                )
        finally:
            await set_loading(conn, SCHEMA, [(CASES, shadow)], False)
        async with scoped(conn, "demo"):
            by_name = await conn.fetch(f"SELECT case_id FROM reporting.cases_s{shadow}")

    assert [r["case_id"] for r in seen] == ["L1"]
    assert [r["case_id"] for r in by_name] == ["L1"]


async def _slot_indexes(conn: Conn) -> set[str]:
    """The indexes of every slot of either schema, primary keys aside."""
    rows = await conn.fetch(
        """
        SELECT n.nspname || '.' || x.relname AS name
          FROM pg_index i
          JOIN pg_class x ON x.oid = i.indexrelid
          JOIN pg_class c ON c.oid = i.indrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('reporting', 'reporting_asof') AND c.relispartition
           AND NOT i.indisprimary
        """
    )
    return {r["name"] for r in rows}


def _listed_slot_indexes() -> set[str]:
    """What migrations/0006_slot_indexes.sql lists, in both slots of both schemas."""
    listed = [
        ("case_steps", "representative"),
        ("case_steps", "station"),
        ("cases", "opened"),
        ("ratings", "recorded"),
    ]
    return {
        f"{schema}.{table}_s{slot}_{suffix}"
        for schema in (SCHEMA, ASOF_SCHEMA)
        for table, suffix in listed
        for slot in (0, 1)
    }


async def test_a_slot_loads_without_its_secondary_indexes_and_gets_them_back_when_closed(
    service: Reporting,
) -> None:
    async with service.pool.acquire() as conn:
        shadow = 1 - int(
            await conn.fetchval("SELECT slot FROM reporting.projections WHERE name = 'cases'")
        )
        before = await _slot_indexes(conn)
        await set_loading(conn, SCHEMA, [(CASES, shadow), (CASE_STEPS, shadow)], True)
        try:
            loading = await _slot_indexes(conn)
        finally:
            await set_loading(conn, SCHEMA, [(CASES, shadow), (CASE_STEPS, shadow)], False)
        after = await _slot_indexes(conn)

    dropped = {
        f"{SCHEMA}.cases_s{shadow}_opened",
        f"{SCHEMA}.case_steps_s{shadow}_representative",
        f"{SCHEMA}.case_steps_s{shadow}_station",
    }
    assert _listed_slot_indexes() <= before
    assert before - loading == dropped
    assert after == before


async def test_after_a_rebuild_every_slot_is_secured_and_indexed_and_the_dashboards_use_it(
    service: Reporting, store: EventStore, database_url: str
) -> None:
    events = await store_history(store, database_url, march_history().ordered())
    await project(service, events)

    await service.rebuild.run()
    await service.rebuild.run(at=datetime.now(UTC))

    async with service.pool.acquire() as conn:
        assert await _unsecured_slots(conn) == []
        assert _listed_slot_indexes() <= await _slot_indexes(conn)
        live = await conn.fetchval("SELECT slot FROM reporting.projections WHERE name = 'cases'")
        async with scoped(conn, "demo"):
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN SELECT count(*) FROM reporting.case_steps WHERE slot = $1 "
                    "AND district_id = 'demo' AND station_code = 'S01' AND recorded_at >= now()",
                    live,
                )
            )
    assert f"case_steps_s{live}_station" in plan


async def test_the_partitioned_tables_keep_only_their_primary_keys(service: Reporting) -> None:
    # The secondary indexes are the slots' own (0006): an index left on a partitioned
    # table would be kept up to date row by row during every load again.
    async with service.pool.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT n.nspname || '.' || c.relname AS name
              FROM pg_index i
              JOIN pg_class c ON c.oid = i.indrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('reporting', 'reporting_asof') AND c.relkind = 'p'
               AND c.relname IN ('case_steps', 'cases', 'ratings') AND NOT i.indisprimary
            """
        )
    assert [r["name"] for r in rows] == []


async def test_checksums_taken_elsewhere_that_differ_are_taken_again(
    service: Reporting, store: EventStore, database_url: str
) -> None:
    # Checksums taken on other connections, or before the lock, may predate a write
    # (an erasure): only what one snapshot sees of both slots is a difference.
    events = await store_history(store, database_url, march_history().ordered())
    await project(service, events)
    await service.rebuild.run()
    async with service.pool.acquire() as conn, scoped(conn, "*"):
        live = int(
            await conn.fetchval("SELECT slot FROM reporting.projections WHERE name = 'cases'")
        )
        # As an erasure of notes leaves it: the same rows, another checksum.
        shadow = await checksum(conn, SCHEMA, CASES, 1 - live)
        stale = Checksum(shadow.rows, str(int(shadow.checksum) + 1))
        again = await compare(conn, SCHEMA, CASES, live, 1 - live, shadow_sum=stale)
    assert again.equal
    assert again.live_rows > 0


async def test_a_load_that_fails_leaves_its_slots_secured(
    service: Reporting, store: EventStore, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store_history(store, database_url, march_history().ordered())

    async def broken(self: _Run) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(_Run, "_bulk", broken)
    with pytest.raises(RuntimeError):
        await service.rebuild.run()

    async with service.pool.acquire() as conn:
        assert await _unsecured_slots(conn) == []
        assert _listed_slot_indexes() <= await _slot_indexes(conn)


@pytest.mark.parametrize(
    ("schema", "table"),
    [
        ("eventstore", "events"),
        (SCHEMA, "cases"),
        (SCHEMA, "staff_roster"),
        (SCHEMA, "projections"),
        (ASOF_SCHEMA, "no_such_slot"),
    ],
)
async def test_only_a_slot_of_a_projection_table_can_be_opened(
    service: Reporting, schema: str, table: str
) -> None:
    async with service.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("SELECT reporting.shadow_load($1, $2, true)", schema, table)
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("SELECT reporting.shadow_index($1, $2, 'station')", schema, table)


async def test_only_a_listed_index_of_a_slot_can_be_built(service: Reporting) -> None:
    async with service.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="no index"):
            await conn.execute("SELECT reporting.shadow_index('reporting', 'cases_s0', 'station')")
        with pytest.raises(asyncpg.RaiseError, match="no index"):
            await conn.execute(
                "SELECT reporting.shadow_index('reporting', 'case_steps_s0', 'x); DROP')"
            )
