"""The version gate of each consumer (``consumers.stream_positions``): per stream, the last
version the consumer applied. Every read and write of it is here.

The consumer runtime (:mod:`eventkit.consumer`) reads a stream's gate ``FOR UPDATE``
before applying an event and moves it in the same transaction as the handler's effects,
so an event redelivered after a crash is recognised and not applied twice. A rebuild
(reporting's) reads a whole gate to meet the live consumer where it stands.

A gate only grows: a stream's version is moved only by applying its next events (the
runtime applies an event only when its version is above the gate, under the gate's
lock, and a move only from the version read to a higher one), a new stream adds a row,
and the services' role may not delete one (``migrations/0002_consumers.sql`` grants
``SELECT, INSERT, UPDATE``). :func:`gate_fingerprint` rests on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventkit.db import Conn


class GateMoved(RuntimeError):
    """Another transaction applied a stream's events first (a new stream's: there was no
    row to lock): this transaction must roll back its effects and try again, when the
    gate will tell its events were applied."""


async def locked_gate(conn: Conn, consumer: str, stream_id: str) -> int | None:
    """A stream's gate, locked until ``conn``'s transaction ends (concurrent deliveries
    of the stream's events wait for each other); None when nothing was applied yet, and
    then there is no row to lock: :func:`move_gates` finds out if another transaction
    applied the stream's first events meanwhile."""
    version = await conn.fetchval(
        "SELECT stream_version FROM consumers.stream_positions "
        "WHERE consumer = $1 AND stream_id = $2 FOR UPDATE",
        consumer,
        stream_id,
    )
    return None if version is None else int(version)


async def locked_gates(conn: Conn, consumer: str, streams: Iterable[str]) -> dict[str, int]:
    """:func:`locked_gate` of several streams in one query, locked in the order of their
    ids; the streams never applied are missing from the answer."""
    rows = await conn.fetch(
        "SELECT stream_id, stream_version FROM consumers.stream_positions "
        "WHERE consumer = $1 AND stream_id = ANY($2::text[]) ORDER BY stream_id FOR UPDATE",
        consumer,
        sorted(set(streams)),
    )
    return {r["stream_id"]: r["stream_version"] for r in rows}


async def move_gates(
    conn: Conn, consumer: str, versions: Mapping[str, int], read: Mapping[str, int]
) -> None:
    """Record the streams' new versions as applied, in ``conn``'s transaction, the one of
    the effects (one statement for all). ``read``: the gates as :func:`locked_gates` gave
    them. A stream missing from it had no row: its row is inserted, and if another
    transaction inserted it first (it applied the stream's first events too: two
    deliveries at once, while a Kafka group rebalances or from two replicas),
    :class:`GateMoved` is raised so that this transaction's effects are rolled back. A
    gate is never moved back."""
    streams = list(versions)
    written = await conn.fetchval(
        """
        WITH t AS (
            SELECT s, v, was FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS t(s, v, was)
        ), updated AS (
            UPDATE consumers.stream_positions g SET stream_version = t.v, updated_at = now()
              FROM t
             WHERE g.consumer = $1 AND g.stream_id = t.s AND t.was >= 0
               AND g.stream_version = t.was AND t.v > t.was
            RETURNING 1
        ), inserted AS (
            INSERT INTO consumers.stream_positions (consumer, stream_id, stream_version)
            SELECT $1, s, v FROM t WHERE t.was < 0
            ON CONFLICT (consumer, stream_id) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted)
        """,
        consumer,
        streams,
        [versions[s] for s in streams],
        [read.get(s, -1) for s in streams],
    )
    if written != len(streams):
        raise GateMoved(
            f"{consumer}: {len(streams) - written} of {len(streams)} streams' gates were "
            "moved by another transaction"
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
