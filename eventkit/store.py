"""The append-only event store on PostgreSQL.

Appends go through ``eventstore.append`` (one round trip): optimistic concurrency on the
stream version, idempotent event ids, contiguous versions, a hash chain per stream.
Reading the whole store in commit-safe order uses the xid8 visibility horizon: an event
is read only once every transaction that could still commit before it has ended, so a
reader's checkpoint never jumps over a late commit.

Row-level security (``eventstore.events`` shows a transaction only the events of the
district it declared, ``eventkit.db.scope``): a method given ``conn`` runs in the caller's
transaction and scope. Without ``conn`` the store opens a transaction of its own and
scopes it itself: an append to the district of its events; a read of one stream or one
event to the ``district_id`` given, else to every district (a read by id: a stream
belongs to one district, MQ006, so it returns that one district's events); a read of the
whole store to the ``district_id`` it filters on, else to every district (the relay,
rebuilds); the group commit to every district (each append of a group still refuses a
stream of another district, and cannot change a stream's district).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, NamedTuple, TypeVar, cast
from uuid import UUID

import asyncpg

from contracts.envelope import Envelope, Metadata
from eventkit.audit.chains import verify_chains as audit_chains
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction, reading
from eventkit.group_commit import GroupCommit, set_columns
from eventkit.store_outcomes import (
    AppendFailed,
    AppendResult,
    AuthorshipError,
    ConcurrencyError,
    DistrictMismatchError,
    DuplicateEventIdError,
    EventStoreError,
    OrderingConflict,
    translate,
)

__all__ = [
    "ANY_VERSION",
    "NO_STREAM",
    "START",
    "AppendFailed",
    "AppendResult",
    "AuthorshipError",
    "Checkpoint",
    "ConcurrencyError",
    "DistrictMismatchError",
    "DuplicateEventIdError",
    "EventStore",
    "EventStoreError",
    "OrderingConflict",
    "RecordedEvent",
    "ScannedEvent",
    "retrying",
    "verify_chains",
]

ANY_VERSION: Final = -1
"""Append whatever the stream's version."""
NO_STREAM: Final = 0
"""Append only if the stream does not exist yet."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A reader's place in the whole store: the last (transaction id, position) read."""

    transaction_id: int = 0
    global_position: int = 0

    def __le__(self, other: Checkpoint) -> bool:
        return (self.transaction_id, self.global_position) <= (
            other.transaction_id,
            other.global_position,
        )


START: Final = Checkpoint()


class RecordedEvent(NamedTuple):
    """An event as stored, with its position in the store and its link in the chain.

    A named tuple, made straight from the row's values: full reads (rebuilds, audits,
    the relay) make one per event, and a frozen dataclass's ``__init__`` from a dict of
    the row cost a sixth of a rebuild's CPU.
    """

    global_position: int
    transaction_id: int
    stream_id: str
    stream_version: int
    category: str
    district_id: str
    event_id: UUID
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    prev_hash: bytes
    hash: bytes

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint that resumes reading right after this event."""
        return Checkpoint(self.transaction_id, self.global_position)

    def envelope(self) -> Envelope:
        """The event as an envelope (data in its stored schema version)."""
        return Envelope(
            event_id=self.event_id,
            event_type=self.event_type,
            schema_version=self.schema_version,
            stream_id=self.stream_id,
            stream_version=self.stream_version,
            global_position=self.global_position,
            district_id=self.district_id,
            occurred_at=self.occurred_at,
            recorded_at=self.recorded_at,
            metadata=Metadata.model_validate(self.metadata),
            data=self.data,
        )


class TailEvent(NamedTuple):
    """What the relay publishes of an event (:meth:`EventStore.read_tail`): no hashes,
    ``data`` as the UTF-8 bytes of its JSON text, published as they are. Decoding the
    data and encoding them again was a quarter of the relay's CPU (measured under the
    notification benchmark's burst)."""

    global_position: int
    transaction_id: int
    stream_id: str
    stream_version: int
    district_id: str
    event_id: UUID
    event_type: str
    schema_version: int
    data: bytes
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint that resumes reading right after this event."""
        return Checkpoint(self.transaction_id, self.global_position)


_TAIL_COLUMNS = """global_position, transaction_id::text::bigint AS transaction_id, stream_id,
    stream_version, district_id, event_id, event_type, schema_version,
    convert_to(data::text, 'UTF8') AS data, metadata, occurred_at, recorded_at"""

_COLUMNS = """global_position, transaction_id::text::bigint AS transaction_id, stream_id,
    stream_version, category, district_id, event_id, event_type, schema_version, data,
    metadata, occurred_at, recorded_at, prev_hash, hash"""


class ScannedEvent(NamedTuple):
    """What a bulk read of history needs of an event (:meth:`EventStore.scan`): no
    metadata, no hashes, ``data`` as its JSON text's UTF-8 bytes, decoded only by whoever
    folds it. Bytes, not ``str``: a rebuild hands the events to its fold processes, and
    pydantic parses bytes; measured on a year of a large district, turning the residents'
    and staff's Chinese text into ``str`` and back (read, pickled, unpickled, parsed) cost
    about 4 µs of CPU per event, more than reading the row."""

    global_position: int
    transaction_id: int
    stream_id: str
    stream_version: int
    category: str
    event_type: str
    schema_version: int
    data: Any
    recorded_epoch: float
    """When the store recorded it, in POSIX seconds: exact to the microsecond (a double
    holds them to well under half a microsecond until 2106; PostgreSQL's ``date_part``
    and Python's ``datetime.timestamp`` round alike). Not a ``datetime``: a rebuild hands
    the moment on as a number, and making a ``datetime`` of every row only to turn it
    back into one cost more than the rest of the row's decoding."""

    @property
    def recorded_at(self) -> datetime:
        """When the store recorded it."""
        return datetime.fromtimestamp(self.recorded_epoch, UTC)

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint that resumes reading right after this event."""
        return Checkpoint(self.transaction_id, self.global_position)


RowT = TypeVar("RowT", RecordedEvent, TailEvent, ScannedEvent)


def _rows_as(kind: type[RowT], rows: Sequence[asyncpg.Record]) -> list[RowT]:
    """``rows`` as named tuples of ``kind``, whose fields are the rows' columns in their
    order, made straight from each record's values: no Python call per row (``_make``
    was two thirds of the time a bulk read spent turning a million rows into events)."""
    if rows and len(rows[0]) != len(kind._fields):  # a query's columns and the fields
        raise ValueError(f"{len(rows[0])} columns read for the {len(kind._fields)} of {kind}")
    return cast(list[RowT], list(map(partial(tuple.__new__, kind), rows)))


_SCAN_COLUMNS = """global_position, transaction_id::text::bigint AS transaction_id, stream_id,
    stream_version, category, event_type, schema_version,
    convert_to(data::text, 'UTF8') AS data, date_part('epoch', recorded_at) AS recorded_epoch"""
"""A scan's columns: ``data`` as the UTF-8 bytes of its JSON text (not ``::bytea``, which
would read the text's backslashes as escapes)."""


async def _in_index_order(conn: Conn, query: str, params: Sequence[Any]) -> list[asyncpg.Record]:
    """``query`` run walking ``events_tail_idx`` in its order, in the caller's transaction.

    The planner underestimates how many rows pass a scan's filters (categories, types,
    the district policy: it cannot know the scope declared), and then prefers reading
    every row after the checkpoint and sorting them (in parallel, on disk) to walking
    the index until the limit: every batch of a rebuild sorted the rest of the store
    (measured on a year of a large district: 1.3 s per batch of 20,000 against 0.06 s).
    Sorting is switched off for this one query (and parallel workers, which only add
    CPU to an ordered walk), then set back as the transaction had it.
    """
    previous = await conn.fetchrow(
        "SELECT current_setting('enable_sort') AS sort, "
        "current_setting('max_parallel_workers_per_gather') AS workers, "
        "set_config('enable_sort', 'off', true), "
        "set_config('max_parallel_workers_per_gather', '0', true)"
    )
    assert previous is not None
    rows: list[asyncpg.Record] = await conn.fetch(query, *params)
    await conn.execute(
        "SELECT set_config('enable_sort', $1, true), "
        "set_config('max_parallel_workers_per_gather', $2, true)",
        previous["sort"],
        previous["workers"],
    )
    return rows


class EventStore:
    """Append to and read from ``eventstore.events`` through an asyncpg pool.

    Appends that commit on their own (no ``conn``) are coalesced: those that arrive
    while earlier ones are on their way to the database go together, in one call of
    ``eventstore.append_many``, one transaction and one commit (group commit). Each keeps
    its own checks and its own outcome: a refused append fails alone. ``group_commit``
    false sends each in its own transaction.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        inversion_retries: int = 5,
        group_commit: bool = True,
        max_group: int = 32,
        flushers: int = 2,
    ) -> None:
        self._pool = pool
        self._inversion_retries = inversion_retries
        self._group = GroupCommit(pool, max_group, flushers) if group_commit else None

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool the store uses."""
        return self._pool

    async def append(
        self,
        stream_id: str,
        events: Sequence[Envelope],
        *,
        expected_version: int = ANY_VERSION,
        conn: Conn | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream_id`` atomically.

        ``expected_version`` is the version the caller last saw (``NO_STREAM`` for a new
        stream, ``ANY_VERSION`` for no check). With ``conn``, the append joins the
        caller's transaction (so that an effect and its events commit together);
        otherwise it commits on its own and is retried on an ordering conflict.
        """
        args = _append_args(stream_id, events, expected_version)
        if conn is not None:
            return await self._append(conn, args, expected_version)
        attempt = 0
        while True:
            try:
                if self._group is not None:
                    return await self._group.append(args, expected_version)
                async with district_transaction(self._pool, args[2]) as own:
                    return await self._append(own, args, expected_version)
            except OrderingConflict:
                attempt += 1
                if attempt > self._inversion_retries:
                    raise
                await asyncio.sleep(0.001 * attempt)

    async def append_batch(
        self, appends: Sequence[tuple[str, Sequence[Envelope], int]], *, conn: Conn
    ) -> None:
        """Append to several streams in one round trip, in the caller's transaction: each
        ``(stream_id, events, expected_version)`` as :meth:`append` would, all or none.

        For writers of many small streams at once (one notification, one stream): the
        batch is one ``eventstore.append_set`` statement, its checks made for the whole
        set and its events inserted together.
        Re-appending stored events is a no-op as with :meth:`append`; which of the
        appends failed is not told, so a caller retries the batch or falls back to
        :meth:`append` one by one.
        """
        if not appends:
            return
        columns = set_columns(
            [_append_args(stream_id, events, expected) for stream_id, events, expected in appends]
        )
        try:
            await conn.fetch(_APPEND_SET, *columns)
        except asyncpg.PostgresError as exc:
            raise translate(exc, "(batch)", ANY_VERSION) from exc

    async def _append(self, conn: Conn, args: tuple[Any, ...], expected: int) -> AppendResult:
        try:
            row = await conn.fetchrow(_APPEND, *args)
        except asyncpg.PostgresError as exc:
            raise translate(exc, args[0], expected) from exc
        assert row is not None
        return AppendResult(stream_version=row["new_version"], duplicate=row["duplicate"])

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        conn: Conn | None = None,
        district_id: str | None = None,
    ) -> list[RecordedEvent]:
        """The events of one stream from ``from_version`` on, in version order (in
        ``conn``'s scope, or else in ``district_id``'s: see the module docstring)."""
        query = (
            f"SELECT {_COLUMNS} FROM eventstore.events "
            "WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version"
        )
        if conn is not None:
            rows = await conn.fetch(query, stream_id, from_version)
        else:
            async with reading(self._pool, district_id or ALL_DISTRICTS) as own:
                rows = await own.fetch(query, stream_id, from_version)
        return _rows_as(RecordedEvent, rows)  # _COLUMNS is in the fields' order

    async def stream_version(self, stream_id: str, *, district_id: str | None = None) -> int:
        """The current version of a stream, 0 when it does not exist."""
        async with reading(self._pool, district_id or ALL_DISTRICTS) as own:
            version = await own.fetchval(
                "SELECT coalesce(max(stream_version), 0) FROM eventstore.events "
                "WHERE stream_id = $1",
                stream_id,
            )
        return int(version)

    async def stream_exists(
        self, stream_id: str, *, conn: Conn | None = None, district_id: str | None = None
    ) -> bool:
        """Whether any event of ``stream_id`` is stored (as seen by ``conn``'s transaction)."""
        query = "SELECT EXISTS (SELECT 1 FROM eventstore.events WHERE stream_id = $1)"
        return bool(await self._fetchval(query, stream_id, conn=conn, district_id=district_id))

    async def event_exists(
        self, event_id: UUID, *, conn: Conn | None = None, district_id: str | None = None
    ) -> bool:
        """Whether an event with this id is stored (a command already carried out)."""
        query = "SELECT EXISTS (SELECT 1 FROM eventstore.events WHERE event_id = $1)"
        return bool(await self._fetchval(query, event_id, conn=conn, district_id=district_id))

    async def _fetchval(
        self, query: str, *args: Any, conn: Conn | None, district_id: str | None
    ) -> Any:
        if conn is not None:
            return await conn.fetchval(query, *args)
        async with reading(self._pool, district_id or ALL_DISTRICTS) as own:
            return await own.fetchval(query, *args)

    async def read_all(
        self,
        after: Checkpoint = START,
        *,
        limit: int = 500,
        categories: Sequence[str] | None = None,
        district_id: str | None = None,
        conn: Conn | None = None,
    ) -> list[RecordedEvent]:
        """The next committed events after ``after``, in (transaction id, position) order.

        Only events below the visibility horizon are returned: those of transactions
        older than every transaction still running. Everything a later call returns is
        therefore after what this call returned, and nothing is skipped.

        ``district_id``: that district's events only (``ALL_DISTRICTS`` or None: every
        district's). Without ``conn`` the read is scoped to it (see the module docstring).
        """
        rows = await self._after(_COLUMNS, after, limit, categories, district_id, conn)
        return _rows_as(RecordedEvent, rows)  # _COLUMNS is in the fields' order

    async def read_tail(self, after: Checkpoint, *, limit: int) -> list[TailEvent]:
        """:meth:`read_all` of every district for the relay: the same events in the same
        order, as :class:`TailEvent` (the data as JSON bytes)."""
        rows = await self._after(_TAIL_COLUMNS, after, limit, None, ALL_DISTRICTS, None)
        return _rows_as(TailEvent, rows)

    async def _after(
        self,
        columns: str,
        after: Checkpoint,
        limit: int,
        categories: Sequence[str] | None,
        district_id: str | None,
        conn: Conn | None,
    ) -> list[asyncpg.Record]:
        conditions = [
            "(transaction_id, global_position) > ($1::text::xid8, $2)",
            "transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
        ]
        params: list[Any] = [str(after.transaction_id), after.global_position]
        if categories is not None:
            params.append(list(categories))
            conditions.append(f"category = ANY(${len(params)}::text[])")
        if district_id is not None and district_id != ALL_DISTRICTS:
            params.append(district_id)
            conditions.append(f"district_id = ${len(params)}")
        params.append(limit)
        query = (
            f"SELECT {columns} FROM eventstore.events WHERE {' AND '.join(conditions)} "
            # Qualified: the bare name would be the selected bigint (the alias), which no
            # index orders, and every read would sort everything after the checkpoint.
            "ORDER BY eventstore.events.transaction_id, eventstore.events.global_position "
            f"LIMIT ${len(params)}"
        )
        if conn is not None:
            return list(await conn.fetch(query, *params))
        async with reading(self._pool, district_id or ALL_DISTRICTS) as own:
            return list(await own.fetch(query, *params))

    async def scan(
        self,
        after: Checkpoint = START,
        *,
        categories: Sequence[str],
        event_types: Sequence[str] | None = None,
        limit: int = 10_000,
        conn: Conn | None = None,
    ) -> list[ScannedEvent]:
        """A lean :meth:`read_all` for rebuilds: the same order and visibility horizon,
        only the given categories (and, given ``event_types``, only those types: what a
        rebuild does not fold is neither sent nor decoded), only the columns a projection
        folds, tuples. Every district's events: without ``conn`` the read declares every
        district; a caller passing ``conn`` declares what its transaction may see.

        Measured on a year of a large district: the rows decode and the events are made
        in a fraction of :meth:`read_all`'s time, the largest part of a rebuild's reading.
        """
        types = "AND event_type = ANY($5::text[]) " if event_types is not None else ""
        query = (
            f"SELECT {_SCAN_COLUMNS} FROM eventstore.events "
            "WHERE (transaction_id, global_position) > ($1::text::xid8, $2) "
            "AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) "
            f"AND category = ANY($3::text[]) {types}"
            "ORDER BY eventstore.events.transaction_id, eventstore.events.global_position "
            "LIMIT $4"
        )
        params: tuple[Any, ...] = (
            str(after.transaction_id),
            after.global_position,
            list(categories),
            limit,
        )
        if event_types is not None:
            params += (list(event_types),)
        if conn is not None:
            rows = await _in_index_order(conn, query, params)
        else:
            # A rebuild's read is about every district by nature.
            async with district_transaction(self._pool, ALL_DISTRICTS) as own:
                rows = await _in_index_order(own, query, params)
        return _rows_as(ScannedEvent, rows)

    async def iterate_all(
        self, after: Checkpoint = START, *, batch_size: int = 1000, **filters: Any
    ) -> AsyncIterator[RecordedEvent]:
        """Every committed event after ``after``, batch by batch, until caught up."""
        while True:
            batch = await self.read_all(after, limit=batch_size, **filters)
            for event in batch:
                yield event
            if len(batch) < batch_size:
                return
            after = batch[-1].checkpoint

    async def load_checkpoint(self, name: str) -> Checkpoint:
        """A named reader's checkpoint (the start when it has none)."""
        row = await self._pool.fetchrow(
            "SELECT transaction_id::text::bigint AS x, global_position AS p "
            "FROM eventstore.checkpoints WHERE name = $1",
            name,
        )
        return START if row is None else Checkpoint(row["x"], row["p"])

    async def save_checkpoint(
        self,
        name: str,
        checkpoint: Checkpoint,
        *,
        conn: Conn | None = None,
        rewind: bool = False,
    ) -> None:
        """Record a named reader's checkpoint; it only moves forward unless ``rewind``."""
        query = """
            INSERT INTO eventstore.checkpoints AS c (name, transaction_id, global_position)
            VALUES ($1, $2::text::xid8, $3)
            ON CONFLICT (name) DO UPDATE
               SET transaction_id = excluded.transaction_id,
                   global_position = excluded.global_position, updated_at = now()
             WHERE $4 OR (c.transaction_id, c.global_position)
                   < (excluded.transaction_id, excluded.global_position)
        """
        args = (name, str(checkpoint.transaction_id), checkpoint.global_position, rewind)
        if conn is not None:
            await conn.execute(query, *args)
        else:
            await self._pool.execute(query, *args)


T = TypeVar("T")


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...] | None = None,
    attempts: int = 5,
    backoff: float = 0.005,
) -> T:
    """Run ``attempt`` (one whole transaction) again when it lost a race.

    By default a race is a :class:`ConcurrencyError` (someone appended to the stream
    first) or an :class:`OrderingConflict` (the transaction is older than the stream's
    head). The last failure is raised as it is.
    """
    retry_on = on if on is not None else (ConcurrencyError, OrderingConflict)
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except retry_on:
            if number == attempts:
                raise
            await asyncio.sleep(backoff * number)
    raise AssertionError("unreachable")  # pragma: no cover


_APPEND_SET = (
    "SELECT new_version, duplicate FROM eventstore.append_set($1::text[], $2::bigint[], "
    "$3::text[], $4::int[], $5::uuid[], $6::text[], $7::int[], $8::jsonb[], $9::jsonb[], "
    "$10::timestamptz[])"
)

_APPEND = (
    "SELECT new_version, duplicate FROM eventstore.append("
    "$1, $2, $3, $4::uuid[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[], $9::timestamptz[])"
)


def _append_args(
    stream_id: str, events: Sequence[Envelope], expected_version: int
) -> tuple[Any, ...]:
    if not events:
        raise ValueError("nothing to append")
    districts = {e.district_id for e in events}
    if len(districts) != 1 or any(e.stream_id != stream_id for e in events):
        raise ValueError("all events of one append share the stream and the district")
    return (
        stream_id,
        expected_version,
        events[0].district_id,
        [e.event_id for e in events],
        [e.event_type for e in events],
        [e.schema_version for e in events],
        [e.data for e in events],
        [e.metadata.model_dump(exclude_none=True) for e in events],
        [e.occurred_at for e in events],
    )


async def verify_chains(conn: Conn) -> list[dict[str, Any]]:
    """Recompute every stream's hash chain; the first broken link of each stream, as
    dicts (``problem``, ``detail``, ``stream_id``, ``stream_version``, ``global_position``,
    ``event_id``), empty when every chain holds.

    Batched, in constant memory (:func:`eventkit.audit.chains.verify_chains`); the seals
    are checked by :func:`eventkit.audit.verification.verify_store`.
    """
    report = await audit_chains(conn)
    return [finding.as_dict() for finding in report.findings]
