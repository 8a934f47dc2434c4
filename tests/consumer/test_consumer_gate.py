"""A consumer's version gate moved (``move_gates``), read whole (``gate_positions``), and
its fingerprint (``gate_fingerprint``), which a rebuild compares under its lock to know
whether the gate moved since it read it."""

from __future__ import annotations

import asyncio

import asyncpg

from eventkit.gates import (
    gate_fingerprint,
    gate_positions,
    locked_gate,
    locked_gates,
    move_gates,
)


async def _apply(pool: asyncpg.Pool, consumer: str, versions: dict[str, int]) -> None:
    """What the runtime records when it has applied events."""
    async with pool.acquire() as conn:
        await move_gates(conn, consumer, versions)


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
    pool: asyncpg.Pool,
) -> None:
    applied: list[str] = []

    async def deliver(name: str) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if await locked_gate(conn, "reporting", "case-new") >= 1:
                return  # the other delivery applied it
            await asyncio.sleep(0.2)  # the handler at work, its gate's lock held
            applied.append(name)
            await move_gates(conn, "reporting", {"case-new": 1})

    await asyncio.gather(deliver("first"), deliver("second"))

    assert len(applied) == 1
    async with pool.acquire() as conn:
        assert await gate_positions(conn, "reporting") == {"case-new": 1}


async def test_a_gate_is_never_moved_back(pool: asyncpg.Pool) -> None:
    await _apply(pool, "reporting", {"case-a": 3})
    await _apply(pool, "reporting", {"case-a": 2})  # a late writer's older version

    async with pool.acquire() as conn:
        assert await gate_positions(conn, "reporting") == {"case-a": 3}
        assert await locked_gates(conn, "reporting", ["case-a", "case-b"]) == {
            "case-a": 3,
            "case-b": 0,
        }
