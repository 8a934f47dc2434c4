"""A consumer's version gate moved (``move_gates``), read whole (``gate_positions``), and
its fingerprint (``gate_fingerprint``), which a rebuild compares under its lock to know
whether the gate moved since it read it."""

from __future__ import annotations

import asyncio

import asyncpg

from eventkit.gates import (
    GateMoved,
    gate_fingerprint,
    gate_positions,
    locked_gate,
    locked_gates,
    move_gates,
)


async def _apply(pool: asyncpg.Pool, consumer: str, versions: dict[str, int]) -> None:
    """What the runtime records when it has applied events (after locking the gates)."""
    async with pool.acquire() as conn, conn.transaction():
        read = await locked_gates(conn, consumer, versions)
        await move_gates(conn, consumer, versions, read)


async def test_the_fingerprint_moves_whenever_the_gate_does_and_only_then(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        assert await gate_fingerprint(conn, "reporting") == (0, 0)
    await _apply(pool, "reporting", {"case-a": 3, "case-b": 1})
    await _apply(pool, "routing", {"case-a": 9})  # another consumer's gate

    async with pool.acquire() as conn:
        gate = await gate_positions(conn, "reporting")
        read = await gate_fingerprint(conn, "reporting")
    assert gate == {"case-a": 3, "case-b": 1}
    assert read == (len(gate), sum(gate.values())) == (2, 4)

    fingerprints = [read]
    for applied in ({"case-b": 2}, {"case-c": 1}, {"case-a": 4, "case-d": 1}):
        await _apply(pool, "reporting", applied)
        async with pool.acquire() as conn:
            fingerprints.append(await gate_fingerprint(conn, "reporting"))
            gate = await gate_positions(conn, "reporting")
        assert fingerprints[-1] == (len(gate), sum(gate.values()))
    assert len(set(fingerprints)) == len(fingerprints), "every move of the gate is seen"

    await _apply(pool, "routing", {"case-z": 5})
    async with pool.acquire() as conn:
        assert await gate_fingerprint(conn, "reporting") == fingerprints[-1]


async def test_two_deliveries_of_a_new_streams_first_event_apply_it_once(
    pool: asyncpg.Pool, database_url: str
) -> None:
    owner = await asyncpg.connect(database_url)
    try:
        await owner.execute("CREATE TABLE public.effects (delivery text)")
        await owner.execute("GRANT USAGE ON SCHEMA public TO minqing_runtime")
        await owner.execute("GRANT SELECT, INSERT ON public.effects TO minqing_runtime")
    finally:
        await owner.close()

    async def deliver(name: str) -> None:
        async with pool.acquire() as conn, conn.transaction():
            locked = await locked_gate(conn, "reporting", "case-new")
            if (locked or 0) >= 1:
                return  # the other delivery applied it
            # The handler's effect, in the gate's transaction: no row to lock for a new
            # stream, so both deliveries get here.
            await conn.execute("INSERT INTO public.effects VALUES ($1)", name)
            await asyncio.sleep(0.2)
            read = {} if locked is None else {"case-new": locked}
            await move_gates(conn, "reporting", {"case-new": 1}, read)

    outcomes = await asyncio.gather(deliver("first"), deliver("second"), return_exceptions=True)

    assert sum(isinstance(o, GateMoved) for o in outcomes) == 1, outcomes
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM public.effects") == 1
        assert await gate_positions(conn, "reporting") == {"case-new": 1}
    # Tried again, as the runtime does, the second delivery finds the event applied.
    await deliver("second, again")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM public.effects") == 1


async def test_a_gate_is_never_moved_back(pool: asyncpg.Pool) -> None:
    await _apply(pool, "reporting", {"case-a": 3})

    async with pool.acquire() as conn, conn.transaction():
        read = await locked_gates(conn, "reporting", ["case-a", "case-b"])
        assert read == {"case-a": 3}
        try:
            await move_gates(conn, "reporting", {"case-a": 2}, read)  # an older version
        except GateMoved:
            pass
        else:
            raise AssertionError("a gate moved back")
    async with pool.acquire() as conn:
        assert await gate_positions(conn, "reporting") == {"case-a": 3}
