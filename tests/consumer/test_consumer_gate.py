"""A consumer's version gate read whole (``gate_positions``), and its fingerprint
(``gate_fingerprint``), which a rebuild compares under its lock to know whether the gate
moved since it read it."""

from __future__ import annotations

import asyncpg

from eventkit.consumer import gate_fingerprint, gate_positions


async def _apply(pool: asyncpg.Pool, consumer: str, versions: dict[str, int]) -> None:
    """What the runtime records when it has applied events (``Consumer._move_gates``)."""
    async with pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO consumers.stream_positions (consumer, stream_id, stream_version)
            SELECT $1, s, v FROM unnest($2::text[], $3::bigint[]) AS t(s, v)
            ON CONFLICT (consumer, stream_id)
            DO UPDATE SET stream_version = excluded.stream_version, updated_at = now()
            """,
            consumer,
            list(versions),
            list(versions.values()),
        )


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
