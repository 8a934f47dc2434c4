"""``eventkit.db.begun_scoped``: BEGIN, the district's scope and other transaction-local
settings in one round trip (intake's submissions), with what ``scoped`` guarantees: the
scope and the settings last as long as the transaction and no longer, an error rolls
everything back, and values travel as literals that cannot end the statement. Real
PostgreSQL, as a service's role."""

from __future__ import annotations

import asyncpg
import pytest

from eventkit.db import Conn, begun_scoped

SETTING = "minqing.test_setting"


async def scope_and_setting(conn: Conn) -> tuple[str | None, str | None]:
    row = await conn.fetchrow(
        "SELECT current_setting('minqing.district', true) AS district, "
        "current_setting($1, true) AS setting",
        SETTING,
    )
    assert row is not None
    return row["district"] or None, row["setting"] or None


async def test_the_scope_and_settings_hold_inside_the_transaction(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, begun_scoped(conn, "demo", {SETTING: "on"}):
        inside = await scope_and_setting(conn)
        in_transaction = conn.is_in_transaction()
    assert inside == ("demo", "on")
    assert in_transaction


async def test_the_scope_and_settings_end_with_the_transaction(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        async with begun_scoped(conn, "demo", {SETTING: "on"}):
            pass
        after = await scope_and_setting(conn)
        in_transaction = conn.is_in_transaction()
    assert after == (None, None)
    assert not in_transaction


async def test_what_the_transaction_wrote_is_committed_at_its_end(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TEMPORARY TABLE begun (n int)")
        async with begun_scoped(conn, "demo"):
            await conn.execute("INSERT INTO begun VALUES (1)")
        kept = await conn.fetchval("SELECT count(*) FROM begun")
        await conn.execute("DROP TABLE begun")
    assert kept == 1


async def insert_then_fail(conn: Conn) -> None:
    async with begun_scoped(conn, "demo"):
        await conn.execute("INSERT INTO begun VALUES (1)")
        raise RuntimeError("refused")


async def test_an_error_inside_rolls_everything_back(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TEMPORARY TABLE begun (n int)")
        with pytest.raises(RuntimeError):
            await insert_then_fail(conn)
        kept = await conn.fetchval("SELECT count(*) FROM begun")
        in_transaction = conn.is_in_transaction()
        await conn.execute("DROP TABLE begun")
    assert kept == 0
    assert not in_transaction


@pytest.mark.parametrize("value", ["it's", "back\\slash", "'; COMMIT; SELECT '", "\\'"])
async def test_a_value_goes_in_exactly_as_given(pool: asyncpg.Pool, value: str) -> None:
    async with pool.acquire() as conn, begun_scoped(conn, "demo", {SETTING: value}):
        _, seen = await scope_and_setting(conn)
    assert seen == value


async def test_inside_a_transaction_it_is_a_scoped_savepoint(pool: asyncpg.Pool) -> None:
    async with (
        pool.acquire() as conn,
        conn.transaction(),
        begun_scoped(conn, "demo", {SETTING: "on"}),
    ):
        inside = await scope_and_setting(conn)
    assert inside == ("demo", "on")


async def test_a_district_is_required(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(ValueError, match="district"):
            async with begun_scoped(conn, ""):
                pass
