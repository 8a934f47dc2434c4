"""Two consumers writing new cases at once must not deadlock on the representatives'
open-case counters (the row trigger ``routing.count_open_cases`` locks a
representative's row until the transaction ends)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

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


async def _open_cases(pool: asyncpg.Pool, *representatives: str) -> dict[str, int]:
    async with district_transaction(pool, "demo") as conn:
        rows = await conn.fetch(
            "SELECT representative_id, open_cases FROM routing.representatives"
            " WHERE district_id = 'demo' AND representative_id = ANY($1::text[])",
            list(representatives),
        )
    return {r["representative_id"]: r["open_cases"] for r in rows}


async def test_batches_naming_the_same_representatives_in_opposite_orders_wait_not_deadlock(
    demo: Routing, pool: asyncpg.Pool
) -> None:
    async with district_transaction(pool, "demo") as conn:
        first, second = [
            r["representative_id"]
            for r in await conn.fetch(
                "SELECT representative_id FROM routing.representatives"
                " WHERE district_id = 'demo' ORDER BY representative_id LIMIT 2"
            )
        ]
    before = await _open_cases(pool, first, second)
    # A third transaction holds the second representative's row, so that the two batches
    # meet in a known order: B (second, then first) queues for it before A (first, then
    # second) does; when it is let go, B gets it first. Written in the order given, B
    # would then wait for the first representative's row, held by A, while A waits for
    # the second's, held by B: a deadlock the server breaks after a second by failing one.
    holder = await pool.acquire()
    holding = holder.transaction()
    await holding.start()
    try:
        await holder.execute("SELECT set_config('minqing.district', 'demo', true)")
        await holder.execute(
            "SELECT 1 FROM routing.representatives"
            " WHERE district_id = 'demo' AND representative_id = $1 FOR UPDATE",
            second,
        )

        async def batch(*representatives: str) -> None:
            async with district_transaction(pool, "demo") as conn:
                await insert_cases(conn, [_case(r) for r in representatives])

        b = asyncio.create_task(batch(second, first))
        await asyncio.sleep(0.3)
        a = asyncio.create_task(batch(first, second))
        await asyncio.sleep(0.3)
        assert not a.done()
        assert not b.done()
    finally:
        await holding.rollback()
        await pool.release(holder)
    await asyncio.wait_for(asyncio.gather(a, b), 10)
    after = await _open_cases(pool, first, second)
    assert after == {first: before[first] + 2, second: before[second] + 2}
