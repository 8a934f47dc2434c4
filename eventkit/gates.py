"""The version gate of each consumer (``consumers.stream_positions``): per stream, the last
version the consumer applied. Every read and write of it is here.

The consumer runtime (:mod:`eventkit.consumer`) reads a stream's gate ``FOR UPDATE``
before applying an event and moves it in the same transaction as the handler's effects,
so an event redelivered after a crash is recognised and not applied twice. A rebuild
(reporting's) reads a whole gate to meet the live consumer where it stands.

A gate only grows: a stream's version is moved only by applying its next events (the
runtime applies an event only when its version is above the gate, under the gate's lock,
and a move never lowers it), a new stream adds a row, and the services' role may not
delete one (``migrations/0002_consumers.sql`` grants ``SELECT, INSERT, UPDATE``).
:func:`gate_fingerprint` rests on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventkit.db import Conn

_PLACE = """
    INSERT INTO consumers.stream_positions (consumer, stream_id, stream_version)
    SELECT $1, s, 0 FROM unnest($2::text[]) AS s
    ON CONFLICT (consumer, stream_id) DO NOTHING
"""
"""A row at version 0 for each stream that has none: what the gate's lock holds on to
for a stream never applied (``FOR UPDATE`` locks rows, and there would be none). Two
transactions delivering a new stream's first events at once (an overlap while a Kafka
group rebalances, two replicas) then wait for each other here, and the second sees the
first's version, as for any stream."""


async def locked_gate(conn: Conn, consumer: str, stream_id: str) -> int:
    """A stream's gate (0 when nothing was applied), locked until ``conn``'s transaction
    ends: concurrent deliveries of the stream's events wait for each other."""
    await conn.execute(_PLACE, consumer, [stream_id])
    version = await conn.fetchval(
        "SELECT stream_version FROM consumers.stream_positions "
        "WHERE consumer = $1 AND stream_id = $2 FOR UPDATE",
        consumer,
        stream_id,
    )
    return int(version or 0)


async def locked_gates(conn: Conn, consumer: str, streams: Iterable[str]) -> dict[str, int]:
    """:func:`locked_gate` of several streams in one round trip, placed and locked in
    the order of their ids."""
    wanted = sorted(set(streams))
    await conn.execute(_PLACE, consumer, wanted)
    rows = await conn.fetch(
        "SELECT stream_id, stream_version FROM consumers.stream_positions "
        "WHERE consumer = $1 AND stream_id = ANY($2::text[]) ORDER BY stream_id FOR UPDATE",
        consumer,
        wanted,
    )
    return {r["stream_id"]: r["stream_version"] for r in rows}


async def move_gates(conn: Conn, consumer: str, versions: Mapping[str, int]) -> None:
    """Record the streams' new versions as applied (one statement for all), in ``conn``'s
    transaction, the one of the effects."""
    await conn.execute(
        """
        INSERT INTO consumers.stream_positions AS g (consumer, stream_id, stream_version)
        SELECT $1, s, v FROM unnest($2::text[], $3::bigint[]) AS t(s, v)
        ON CONFLICT (consumer, stream_id)
        DO UPDATE SET stream_version = greatest(g.stream_version, excluded.stream_version),
                      updated_at = now()
        """,
        consumer,
        list(versions),
        list(versions.values()),
    )


async def gate_positions(conn: Conn, consumer: str) -> dict[str, int]:
    """A consumer's whole gate: per stream, the last version it applied (for a rebuild
    that must meet the live consumer where it stands)."""
    # Two arrays in one row: a large gate (a stream per case) decodes several times
    # faster than as a record per stream.
    row = await conn.fetchrow(
        "SELECT coalesce(array_agg(stream_id), '{}'), coalesce(array_agg(stream_version), '{}') "
        "FROM consumers.stream_positions WHERE consumer = $1",
        consumer,
    )
    assert row is not None
    return dict(zip(row[0], row[1], strict=True))


async def gate_fingerprint(conn: Conn, consumer: str) -> tuple[int, int]:
    """How many streams a consumer's gate holds and the sum of their versions: equal to
    those of a gate read before only if the gate has not moved since (it only grows, so
    any change raises the count or the sum). Much cheaper than the gate itself for a
    large one."""
    row = await conn.fetchrow(
        "SELECT count(*), coalesce(sum(stream_version), 0)::bigint "
        "FROM consumers.stream_positions WHERE consumer = $1",
        consumer,
    )
    assert row is not None
    return int(row[0]), int(row[1])
