"""The group commit of the event store's appends (:class:`GroupCommit`): concurrent
appends that commit on their own, coalesced into one ``eventstore.append_many`` call per
group, each append keeping its own version check, idempotency and outcome."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from eventkit.db import ALL_DISTRICTS
from eventkit.store_outcomes import AppendFailed, AppendResult, refusal

_SPLIT_EVENTS = 64
"""Events waiting from which a group is shared between the free flushers."""

_BUSY = "MQ008"
"""``append_many``'s answer for an append left out because its stream was locked."""

_APPEND_MANY = (
    "SELECT new_version, duplicate, error_code, error_message, error_detail "
    "FROM eventstore.append_many($1::text[], $2::bigint[], $3::text[], $4::int[], "
    "$5::uuid[], $6::text[], $7::int[], $8::jsonb[], $9::jsonb[], $10::timestamptz[], $11)"
)


def set_columns(appends: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """The columns of ``eventstore.append_set`` and ``append_many`` for several appends,
    each given as the store's arguments of one ``eventstore.append`` call: the streams,
    expected versions, districts and event counts, then every event's fields in order."""
    columns: list[list[Any]] = [[] for _ in range(10)]
    for stream_id, expected, district, ids, types, versions, data, meta, at in appends:
        columns[0].append(stream_id)
        columns[1].append(expected)
        columns[2].append(district)
        columns[3].append(len(ids))
        for column, values in zip(columns[4:], (ids, types, versions, data, meta, at), strict=True):
            column.extend(values)
    return columns


def _read_outcome(future: asyncio.Future[AppendResult]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass(eq=False)
class _Pending:
    args: tuple[Any, ...]
    expected: int
    done: asyncio.Future[AppendResult]


class GroupCommit:
    """Coalesces the appends that commit on their own (see :class:`eventkit.store.EventStore`).

    An append joins a queue; up to ``flushers`` tasks empty it, each taking what is
    queued (at most ``max_group``: PostgreSQL keeps 64 subtransactions per transaction
    in shared memory) into one ``append_many`` call. With nothing else in flight an
    append goes at once, alone: a group forms only while the database is busy, so
    coalescing adds no wait. The flushing runs in tasks of its own, so that a caller
    that gives up (a cancelled request) never strands the appends grouped with its own.

    Only a group's first append may wait for its stream's lock; a later one whose stream
    another transaction holds comes back busy and goes first into the next group, so a
    group never waits while holding a lock and cannot take part in a deadlock.

    A group runs in the scope of every district (``ALL_DISTRICTS``): it holds several
    districts' appends, and the database checks each one's district against its stream.
    """

    def __init__(self, pool: asyncpg.Pool, max_group: int, flushers: int) -> None:
        self._pool = pool
        self._max_group = max(1, min(max_group, 60))
        self._flushers = max(1, flushers)
        self._queue: deque[_Pending] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._flushing = 0

    async def append(self, args: tuple[Any, ...], expected: int) -> AppendResult:
        pending = _Pending(args, expected, asyncio.get_running_loop().create_future())
        # A caller that gave up leaves its outcome unread: read it, so that asyncio does
        # not report it as lost.
        pending.done.add_done_callback(_read_outcome)
        self._queue.append(pending)
        if len(self._running) < self._flushers:
            task = asyncio.create_task(self._drain())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return await asyncio.shield(pending.done)

    async def _drain(self) -> None:
        while self._queue:
            # Many events waiting: share them with the flushers that are not busy, so
            # that groups go to the database side by side. Few: one group takes them all
            # (measured: splitting eight single-event appends into groups of three or
            # four cost more CPU per event than it gained in parallel work).
            free = max(1, self._flushers - self._flushing)
            events = sum(len(p.args[3]) for p in self._queue)
            share = -(-len(self._queue) // free) if events >= _SPLIT_EVENTS else len(self._queue)
            count = min(share, self._max_group)
            group = [self._queue.popleft() for _ in range(count)]
            self._flushing += 1
            try:
                await self._flush(group)
            except Exception as exc:  # noqa: BLE001 - each append of the group gets it
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(exc)
            except BaseException:
                for pending in group:
                    pending.done.cancel()
                raise
            finally:
                self._flushing -= 1

    async def _flush(self, group: list[_Pending]) -> None:
        columns = set_columns([p.args for p in group])
        async with self._pool.acquire() as conn:
            # One statement in a transaction of its own, holding several districts'
            # appends: it declares every district (append_many's p_scope, set before the
            # first append), since each append still refuses a stream of another
            # district (MQ006) and none can change a stream's district.
            rows = await conn.fetch(_APPEND_MANY, *columns, ALL_DISTRICTS)
        busy: list[_Pending] = []
        for p, row in zip(group, rows, strict=True):
            if p.done.done():
                continue
            code = row["error_code"]
            if code == _BUSY:
                busy.append(p)
                continue
            if code is None:
                p.done.set_result(AppendResult(row["new_version"], row["duplicate"]))
                continue
            stream_id = p.args[0]
            message = row["error_message"] or ""
            error = refusal(code, message, row["error_detail"], stream_id, p.expected)
            p.done.set_exception(error or AppendFailed(stream_id, code, message))
        # Left out because another transaction held their stream: first of the next
        # group, where they may wait for it.
        self._queue.extendleft(reversed(busy))
