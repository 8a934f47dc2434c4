"""Writers of cases must not deadlock on the representatives' open-case counters (the
row trigger ``routing.count_open_cases`` locks a representative's row until the
transaction ends): two consumers writing new cases at once, and two moves of cases
between the same representatives in opposite directions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contracts.cases import Priority
from eventkit.db import district_transaction
from services.routing.bootstrap import Routing
from services.routing.case_projection import OpinionFacts, insert_cases
from services.routing.case_state import CaseState, CaseStatus


def _case(representative_id: str) -> tuple[CaseState, OpinionFacts, int | None]:
    now = datetime.now(UTC)
    state = CaseState(
        case_id=f"lock{uuid.uuid4().hex[:16]}",
        district_id="demo",
        opinion_id=f"op_{uuid.uuid4().hex[:16]}",
        status=CaseStatus.ASSIGNED,
        priority=Priority.NORMAL,
        opened_at=now,
        updated_at=now,
        representative_id=representative_id,
        queue="representative",
    )
    return state, OpinionFacts("qr", "路灯不亮", None, None, None), None


async def _two_representatives(pool: asyncpg.Pool) -> tuple[str, str]:
    async with district_transaction(pool, "demo") as conn:
        first, second = [
            r["representative_id"]
            for r in await conn.fetch(
                "SELECT representative_id FROM routing.representatives"
                " WHERE district_id = 'demo' ORDER BY representative_id COLLATE \"C\" LIMIT 2"
            )
        ]
    return first, second


async def _open_cases(pool: asyncpg.Pool, *representatives: str) -> dict[str, int]:
    async with district_transaction(pool, "demo") as conn:
        rows = await conn.fetch(
            "SELECT representative_id, open_cases FROM routing.representatives"
            " WHERE district_id = 'demo' AND representative_id = ANY($1::text[])",
            list(representatives),
        )
    return {r["representative_id"]: r["open_cases"] for r in rows}


async def _until_waiting(admin: asyncpg.Connection, count: int) -> None:
    """Until ``count`` transactions of this database wait for a lock (seen by a
    superuser: the runtime role does not see other sessions' waits)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        waiting = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{waiting} waiting, not {count}"
        await asyncio.sleep(0.02)


async def _in_order_behind(
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    held: str,
    first: Callable[[], Coroutine[Any, Any, None]],
    then: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """Hold representative ``held``'s row; start ``first`` and wait until it waits for
    it, then ``then`` likewise; let go, and both must finish (a deadlock fails one)."""
    holder = await pool.acquire()
    holding = holder.transaction()
    await holding.start()
    try:
        await holder.execute("SELECT set_config('minqing.district', 'demo', true)")
        await holder.execute(
            "SELECT 1 FROM routing.representatives"
            " WHERE district_id = 'demo' AND representative_id = $1 FOR UPDATE",
            held,
        )
        a = asyncio.create_task(first())
        await _until_waiting(admin, 1)
        b = asyncio.create_task(then())
        await _until_waiting(admin, 2)
    finally:
        await holding.rollback()
        await pool.release(holder)
    await asyncio.wait_for(asyncio.gather(a, b), 10)


async def test_batches_naming_the_same_representatives_in_opposite_orders_wait_not_deadlock(
    demo: Routing, pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    first, second = await _two_representatives(pool)
    before = await _open_cases(pool, first, second)

    async def batch(*representatives: str) -> None:
        async with district_transaction(pool, "demo") as conn:
            await insert_cases(conn, [_case(r) for r in representatives])

    # The second representative's row held: B (second, then first) queues for it
    # before A (first, then second) does, and gets it first when it is let go. Written
    # in the order given, B would then wait for the first representative's row, held
    # by A, while A waits for the second's, held by B.
    await _in_order_behind(
        pool, admin, second, lambda: batch(second, first), lambda: batch(first, second)
    )
    after = await _open_cases(pool, first, second)
    assert after == {first: before[first] + 2, second: before[second] + 2}


async def test_cases_moved_between_two_representatives_both_ways_at_once_wait_not_deadlock(
    demo: Routing, pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    first, second = await _two_representatives(pool)
    x, y = _case(first), _case(second)
    async with district_transaction(pool, "demo") as conn:
        await insert_cases(conn, [x, y])
    before = await _open_cases(pool, first, second)

    async def move(case: tuple[CaseState, OpinionFacts, int | None], to: str) -> None:
        async with district_transaction(pool, "demo") as conn:
            await conn.execute(
                "UPDATE routing.cases SET representative_id = $2 WHERE case_id = $1",
                case[0].case_id,
                to,
            )

    # The first representative's row held: X's move (first → second) queues for it,
    # then Y's (second → first). Counted one row after the other, Y would hold the
    # second's counter while waiting for the first's, which X gets first and keeps
    # while waiting for the second's.
    await _in_order_behind(pool, admin, first, lambda: move(x, second), lambda: move(y, first))
    assert await _open_cases(pool, first, second) == before
