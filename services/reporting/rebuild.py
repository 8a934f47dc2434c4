"""``minqing reporting rebuild``: recompute projections from the event store into their
shadow slots, catch up with the live consumer, compare, and swap, while the live
consumer goes on (docs/reporting.md, "Rebuilds", tells it step by step).

1. **Bulk**: the shadow slots emptied and opened for loading (secondary indexes dropped,
   built after); the store read in large batches (``EventStore.scan``), folded in memory
   (:class:`services.reporting.folding.Folder`, or worker processes:
   :mod:`services.reporting.fold_workers`), the rows copied in (COPY). Events beyond the
   live consumer's version gate as it stood at the start are kept aside, not folded.
2. **Catch up** without a lock: newer events read, the gate read again, the kept events
   it now covers folded and their rows written; the shadow slots checksummed.
3. **Swap**, in one transaction: the projections' rows locked (the consumer and erasures
   wait), the live slots checksummed on other connections meanwhile, the gate read a last
   time if it moved, every event it covers folded, the notes of cases forgotten since
   their texts were opened erased, each table compared with its live slot (row counts
   and checksums; differences listed) and the shadow made live.

``--at T`` builds the projections as they stood at ``T`` into schema ``reporting_asof``
the same way, without gate or comparison. The result says how long each phase took
(:attr:`RebuildResult.phases`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, Conn, scope
from eventkit.gates import gate_fingerprint, gate_positions
from eventkit.keys import KeyRing
from eventkit.local import database_url
from eventkit.logging import get_logger
from eventkit.sealed_texts import TextKeys
from eventkit.settings import Settings
from eventkit.store import START, Checkpoint, EventStore, RecordedEvent, ScannedEvent
from services.reporting.errors import RebuildRunning
from services.reporting.fold_workers import FoldWorkers, WorkerSpec
from services.reporting.folded_texts import FoldedTextOpener
from services.reporting.folding import HANDLED_TYPES, Folder, without_cycle_collection
from services.reporting.privacy import erase_notes
from services.reporting.projection import CONSUMER_NAME
from services.reporting.rebuild_result import RebuildResult, projections_named
from services.reporting.shadow import (
    Checksum,
    TableComparison,
    compare,
    copy_rows,
    every_district,
    lock_projections,
    set_loading,
    swap,
    truncate,
    upsert_rows,
)
from services.reporting.slot_work import CHECKSUM_CONNECTIONS, SlotWork
from services.reporting.tables import (
    ASOF_SCHEMA,
    CASE_STEPS,
    PROJECTION_OF,
    PROJECTIONS,
    SCHEMA,
    TABLES,
    Table,
)

StoredT = TypeVar("StoredT", ScannedEvent, RecordedEvent)

log = get_logger(__name__)

STEP_CHUNK = 50_000
"""Steps copied to the shadow in one COPY while the store is still being read."""

_LOCK = {SCHEMA: 0x6D71_7270_0001, ASOF_SCHEMA: 0x6D71_7270_0002}
"""Advisory locks: one rebuild of each schema at a time."""


class Rebuild:
    """Rebuilds of the projections from the store (one at a time per schema)."""

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        *,
        batch: int = 50_000,
        workers: int = 1,
        settings: Settings | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch
        self.workers = workers
        """Processes folding the events (1: this one); workers connect as ``settings`` say."""
        self._settings = settings

    async def run(
        self,
        projections: Sequence[str] | None = None,
        *,
        at: datetime | None = None,
        dry_run: bool = False,
    ) -> RebuildResult:
        """Rebuild ``projections`` (default: all) live, or as of ``at`` into the audit
        schema; with ``dry_run``, build and compare but do not swap."""
        names = list(projections or PROJECTIONS)
        for name in names:
            projections_named(name)
        schema = ASOF_SCHEMA if at is not None else SCHEMA
        async with self._store.pool.acquire() as guard:
            if not await guard.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK[schema]):
                raise RebuildRunning(schema)
            try:
                keys = self._settings.privacy_keys() if self._settings is not None else None
                run = _Run(self._store, self._clock, self._batch, schema, names, at, keys)
                return await run.go(dry_run, self._worker_spec(run))
            finally:
                await guard.execute("SELECT pg_advisory_unlock($1)", _LOCK[schema])

    def _worker_spec(self, run: _Run) -> tuple[WorkerSpec, int] | None:
        """How worker processes fold this run, or ``None`` to fold in this process."""
        if self.workers <= 1 or self._settings is None:
            return None
        spec = WorkerSpec(
            database_url(self._settings),
            self._settings.database_role,
            run.schema,
            tuple(run.names),
            {},
            run.keys,
        )
        return spec, self.workers


class _Run:
    """One rebuild: its folder, its place in the store, the events kept aside."""

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        batch: int,
        schema: str,
        names: list[str],
        at: datetime | None,
        keys: KeyRing | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.batch = batch
        self.schema = schema
        self.names = names
        self.at = at
        self.keys = keys
        """The vault's keys, which open the case texts' keys (None: the environment's)."""
        self.texts = TextKeys(keys)
        self.opener = FoldedTextOpener(self.texts)
        """Opens the sealed texts folded (:mod:`services.reporting.folded_texts`) of the
        events read, when this process folds them (fold workers open their own)."""
        self.folder: Folder | FoldWorkers = Folder(names)
        groups = _groups(self.folder.categories)
        self.types = sorted(HANDLED_TYPES)
        """The types read: those folded (the opinions' texts are never read)."""
        self.checkpoints: dict[tuple[str, ...], Checkpoint] = dict.fromkeys(groups, START)
        """Where each group of categories has been read up to (each has its reader)."""
        self.kept: dict[str, list[RecordedEvent | ScannedEvent]] = {}
        """Per stream, events beyond the consumer's gate, in version order."""
        self.gate: dict[str, int] = {}
        self.keys_found: set[str] = set()
        """The case texts' keys the folding found (and opened texts with)."""
        self.read = 0
        self.slots: dict[str, int] = {}
        self._slot_work: SlotWork | None = None

    @property
    def slot_work(self) -> SlotWork:
        """Index builds, analyses and checksums on several connections at once."""
        if self._slot_work is None:
            self._slot_work = SlotWork(self.store.pool, self.schema, self.shadow)
        return self._slot_work

    async def _live_checksums(self, slots: list[tuple[Table, int]]) -> dict[str, Checksum]:
        """The live slots' checksums on connections of their own, when the pool has them
        to spare beside the two this rebuild holds (its advisory lock and the swap's
        transaction); else none, and the comparison takes them in the swap's
        transaction."""
        if self.store.pool.get_max_size() < 2 + CHECKSUM_CONNECTIONS:
            return {}
        return await self.slot_work.checksums(slots)

    @property
    def tables(self) -> list[Table]:
        return [t for n in self.names for t in PROJECTIONS[n]]

    def shadow(self, table: Table) -> int:
        """The slot ``table`` is rebuilt into."""
        return 1 - self.slots[PROJECTION_OF[table.name]]

    def _shadows(self) -> list[tuple[Table, int]]:
        """Every table rebuilt, with its shadow slot."""
        return [(table, self.shadow(table)) for table in self.tables]

    async def go(self, dry_run: bool, workers: tuple[WorkerSpec, int] | None) -> RebuildResult:
        """The rebuild, folding in this process or in worker processes (always ended,
        also when the rebuild fails)."""
        started = time.perf_counter()
        async with self.store.pool.acquire() as conn:
            self.slots = await _slots(conn, self.schema)
        if workers is None:
            return await self._go(dry_run, started)
        spec, n = workers
        shadows = {t.name: self.shadow(t) for t in self.tables}
        folding = self.folder = FoldWorkers(replace(spec, shadows=shadows), n)
        try:
            folding.start()
            return await self._go(dry_run, started)
        finally:
            await folding.close()

    async def _go(self, dry_run: bool, started: float) -> RebuildResult:
        pool = self.store.pool

        async def empty_and_open() -> None:
            async with pool.acquire() as conn:
                await truncate(conn, self.schema, self._shadows())
                await set_loading(conn, self.schema, self._shadows(), True)

        async def read_gate() -> None:
            if self.at is None:
                async with pool.acquire() as conn:
                    self.gate = await _gate(conn)

        await asyncio.gather(empty_and_open(), read_gate())
        mark = time.perf_counter()
        phases = {"start": round(mark - started, 3)}  # workers started, slots emptied, gate

        def phase(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = round(now - mark, 3)
            mark = now

        try:
            with without_cycle_collection():
                await self._bulk()
                phase("read")
                if isinstance(self.folder, FoldWorkers):
                    await self.folder.end_steps()  # each worker copies its last steps
                # The steps are complete: their indexes are built while the rest is copied.
                steps = [t for t in self.tables if t is CASE_STEPS]
                indexing = asyncio.create_task(self.slot_work.index_and_analyze(steps))
                try:
                    if isinstance(self.folder, FoldWorkers):
                        await self.folder.end_bulk()  # each worker copies the rest of its rows
                    else:
                        async with pool.acquire() as conn, every_district(conn):
                            await self._write_dirty(conn, loading=True)
                    phase("copy")
                    rest = [t for t in self.tables if t is not CASE_STEPS]
                    await self.slot_work.index_and_analyze(rest)
                finally:
                    await indexing
        finally:
            # Closed again before anything else reads or swaps them, also on a failure
            # (each slot in a short transaction of its own, as set_loading does).
            async with pool.acquire() as conn:
                await set_loading(conn, self.schema, self._shadows(), False)
        phase("index")
        async with pool.acquire() as conn:
            if self.at is None:
                await self._read_more(conn)
                # A newer gate only lets kept events be folded outside the lock; with
                # nothing kept it would change nothing (an older gate is never wrong:
                # it only grows, and the locked step reads it again).
                if self.kept:
                    await self._read_gate_again(conn)
                    self._fold_kept()
                async with every_district(conn):
                    await self._write_dirty(conn, loading=False)
        phase("catch_up")
        comparisons: list[TableComparison] = []
        shadow_sums: dict[str, Checksum] = {}
        if self.at is None:
            # The shadow as it stands, checksummed outside the lock; a table written again
            # under the lock is checksummed again there.
            shadow_sums = await self.slot_work.checksums(self._shadows())
            phase("checksum")
        async with pool.acquire() as conn, conn.transaction():
            await scope(conn, ALL_DISTRICTS)  # every district's rows compared and swapped
            live = await lock_projections(conn, self.schema, self.names)
            if live != {n: self.slots[n] for n in self.names}:
                raise RebuildRunning(self.schema)  # someone swapped meanwhile
            if self.at is None:
                # The live slots, frozen while the lock is held (the consumer and erasures
                # wait for it), checksummed on other connections meanwhile: their committed
                # rows are all there is to see.
                live_slots = [(table, 1 - self.shadow(table)) for table in self.tables]
                summing = asyncio.create_task(self._live_checksums(live_slots))
                try:
                    await self._read_more(conn)
                    await self._read_gate_again(conn)
                    await self._fill_gaps(conn)
                    self._fold_kept()
                    written = await self._write_dirty(conn, loading=False)
                    if await self._erase_forgotten(conn):
                        written.add(CASE_STEPS.name)
                finally:
                    live_sums = await summing
                for table, slot in live_slots:
                    shadow_sum = None if table.name in written else shadow_sums[table.name]
                    comparisons.append(
                        await compare(
                            conn,
                            self.schema,
                            table,
                            slot,
                            self.shadow(table),
                            live_sum=live_sums.get(table.name),
                            shadow_sum=shadow_sum,
                        )
                    )
            else:
                await self._erase_forgotten(conn)
            if not dry_run:
                now = self.clock()
                for name in self.names:
                    await swap(
                        conn,
                        self.schema,
                        name,
                        1 - self.slots[name],
                        at=now,
                        events=self.folder.events,
                        as_of=self.at,
                    )
        phase("swap")
        result = RebuildResult(
            schema=self.schema,
            projections=self.names,
            events=self.folder.events,
            read=self.read,
            seconds=time.perf_counter() - started,
            swapped=not dry_run,
            as_of=self.at,
            comparisons=comparisons,
            phases=phases,
        )
        log.info(
            "projections rebuilt",
            schema=self.schema,
            projections=self.names,
            events=result.events,
            seconds=round(result.seconds, 2),
            equal=result.equal,
        )
        return result

    # ---------------------------------------------------------------- reading

    def _take(self, event: RecordedEvent | ScannedEvent) -> None:
        """Fold ``event`` now, or keep it aside until the live consumer has it."""
        if not self.folder.wants(event):
            return
        if self.at is not None:
            if event.recorded_at <= self.at:
                self.folder.fold(event)
            return
        stream = event.stream_id
        waiting = self.kept.get(stream)
        if waiting is not None or event.stream_version > self.gate.get(stream, 0):
            if waiting is None:
                waiting = self.kept[stream] = []
            waiting.append(event)
            return
        self.folder.fold(event)

    def _take_batch(self, batch: list[ScannedEvent]) -> None:
        """:meth:`_take` for every event of a scanned batch: the rebuild's hot loop (a
        million times for a year of a large district), so the rows are unpacked and the
        common case, an event the live consumer has (or, with ``--at``, an event
        recorded by then), folded without a call per decision."""
        self.read += len(batch)
        categories, gate, kept = self.folder.categories, self.gate, self.kept
        at = self.at.timestamp() if self.at is not None else None  # as the rows' moments
        fold = self.folder.fold_stored
        for event in batch:
            _, _, stream, version, category, event_type, schema, data, recorded = event
            if category not in categories or event_type not in HANDLED_TYPES:
                continue
            if at is not None:
                if recorded <= at:
                    fold(event_type, schema, data, recorded, version, stream)
            elif stream in kept or version > gate.get(stream, 0):
                self._take(event)
            else:
                fold(event_type, schema, data, recorded, version, stream)

    async def _bulk(self) -> None:
        """Read and fold the store up to its horizon, copying steps out as they come.

        A reader task on its own connection keeps a batch ahead of the folding, so the
        server works while Python folds. (One reader: the store's order index does not
        hold the category, so a reader per category would make the server read every
        row once per reader.) The events come with their data as JSON bytes
        (:class:`ScannedEvent`): only those folded are decoded, by whoever folds them.
        """
        queue: asyncio.Queue[list[ScannedEvent] | None] = asyncio.Queue(maxsize=1)
        readers = [asyncio.create_task(self._reader(g, queue)) for g in self.checkpoints]
        writer: asyncio.Task[None] | None = None
        running = len(readers)
        while running:
            batch = await queue.get()
            if batch is None:
                running -= 1
                continue
            self._take_batch(batch)
            if isinstance(self.folder, FoldWorkers):
                await self.folder.flush()
                continue
            if self.folder.pending_steps >= STEP_CHUNK:
                if writer is not None:
                    await writer
                writer = asyncio.create_task(self._copy_steps(self.folder.take_steps()))
        await asyncio.gather(*readers)
        if writer is not None:
            await writer
        if isinstance(self.folder, Folder):
            await self._copy_steps(self.folder.take_steps())

    async def _reader(
        self, group: tuple[str, ...], queue: asyncio.Queue[list[ScannedEvent] | None]
    ) -> None:
        """Read one group of categories to the horizon into ``queue``; ``None`` at the end
        (also when it fails: the failure is raised when the reader is awaited)."""
        try:
            async with self.store.pool.acquire() as conn:
                while True:
                    async with every_district(conn):
                        batch = await self.store.scan(
                            self.checkpoints[group],
                            limit=self.batch,
                            categories=group,
                            event_types=self.types,
                            conn=conn,
                        )
                        batch = await self._opened(conn, batch)
                    if batch:
                        self.checkpoints[group] = batch[-1].checkpoint
                        await queue.put(batch)
                    if len(batch) < self.batch:
                        return
        finally:
            await queue.put(None)

    async def _opened(self, conn: Conn, events: list[StoredT]) -> list[StoredT]:
        """``events`` with their folded texts opened when this process folds them; as
        they are for fold workers, which open those they are handed."""
        if isinstance(self.folder, FoldWorkers):
            return events
        items = [(e.event_type, e.schema_version, e.data) for e in events]
        datas = await self.opener.open(conn, items, self.folder.parse)
        if datas is None:
            return events
        pairs = zip(events, datas, strict=True)
        return [e if d is e.data else e._replace(data=d) for e, d in pairs]

    async def _copy_steps(self, rows: list[tuple[Any, ...]]) -> None:
        if "cases" not in self.names or not rows:
            return
        async with self.store.pool.acquire() as conn, every_district(conn):
            shadow = self.shadow(CASE_STEPS)
            await copy_rows(conn, self.schema, CASE_STEPS, shadow, rows, loading=True)

    async def _read_more(self, conn: Conn) -> None:
        """Read what the store recorded since the last read."""
        for group, after in self.checkpoints.items():
            while True:
                async with every_district(conn):
                    batch = await self.store.scan(
                        after,
                        limit=self.batch,
                        categories=group,
                        event_types=self.types,
                        conn=conn,
                    )
                    batch = await self._opened(conn, batch)
                self._take_batch(batch)
                if batch:
                    after = self.checkpoints[group] = batch[-1].checkpoint
                if len(batch) < self.batch:
                    break

    async def _read_gate_again(self, conn: Conn) -> None:
        """The consumer's gate as it stands now: read again only if it moved since it was
        last read (under the swap's lock the consumer may have applied nothing since:
        a quiet district's gate of a stream per case is not read twice)."""
        if await gate_fingerprint(conn, CONSUMER_NAME) != (len(self.gate), sum(self.gate.values())):
            self.gate = await _gate(conn)

    async def _erase_forgotten(self, conn: Conn) -> bool:
        """Erase, in the shadow, the notes of the cases whose text key was deleted after
        the folding found it (a resident forgotten, or a retention period ended, while
        the rebuild read): their later texts were opened with it, and the erasure of the
        live rows did not reach rows not yet copied. Under the swap's lock, which the
        erasures wait for. Whether any note changed."""
        if "cases" not in self.names:
            return False
        if isinstance(self.folder, FoldWorkers):
            self.keys_found.update(await self.folder.keys_found())
        else:
            self.keys_found.update(self.opener.take_found())
        # A case's texts are sealed with the key named by the case's id.
        gone = await self.texts.gone(conn, self.keys_found)
        if not gone:
            return False
        return await erase_notes(conn, self.schema, gone, slot=self.shadow(CASE_STEPS)) > 0

    async def _fill_gaps(self, conn: Conn) -> None:
        """Events the consumer applied that the store's horizon still held back."""
        versions = self.folder.versions
        # The streams folded as far as the gate are most of a large gate: passed over at
        # once (a kept event is newer than any version folded, so they need no more).
        behind = [(s, v) for s, v in self.gate.items() if versions.get(s, 0) < v]
        for stream, version in behind:
            if stream.partition("-")[0] not in self.folder.categories:
                continue
            waiting = self.kept.get(stream, [])
            have = waiting[-1].stream_version if waiting else self.folder.versions.get(stream, 0)
            if have >= version:
                continue
            missing = await self.store.read_stream(stream, from_version=have + 1, conn=conn)
            missing = await self._opened(conn, missing)
            for event in missing:
                if event.stream_version > version:
                    break
                if self.folder.wants(event):
                    self.kept.setdefault(stream, []).append(event)

    def _fold_kept(self) -> None:
        """Fold the kept events the gate now covers."""
        for stream in list(self.kept):
            waiting = self.kept[stream]
            limit = self.gate.get(stream, 0)
            n = 0
            while n < len(waiting) and waiting[n].stream_version <= limit:
                self.folder.fold(waiting[n])
                n += 1
            if n == len(waiting):
                del self.kept[stream]
            elif n:
                self.kept[stream] = waiting[n:]

    # ---------------------------------------------------------------- writing

    async def _write_dirty(self, conn: Conn, *, loading: bool) -> set[str]:
        """Write the rows changed since the last write: COPY into the slots open for the
        bulk load, upserts afterwards (the few rows catching up changed). The names of
        the tables written."""
        if isinstance(self.folder, FoldWorkers):
            # Only after the bulk load (the workers copy theirs): ask them for the rows.
            tables, steps = await self.folder.take_changes()
            changed = {name: rows for name, rows in tables.items() if rows}
            for name, rows in changed.items():
                await upsert_rows(conn, self.schema, TABLES[name], self.shadow(TABLES[name]), rows)
        else:
            changed = {t.name: rows for t, rows in self.folder.take_dirty().items() if rows}
            for name, rows in changed.items():
                table, slot = TABLES[name], self.shadow(TABLES[name])
                if loading:
                    await copy_rows(conn, self.schema, table, slot, rows, loading=True)
                else:
                    await upsert_rows(conn, self.schema, table, slot, rows)
            steps = self.folder.take_steps()
        written = set(changed)
        if "cases" in self.names and steps:
            shadow = self.shadow(CASE_STEPS)
            await copy_rows(conn, self.schema, CASE_STEPS, shadow, steps, loading=loading)
            written.add(CASE_STEPS.name)
        return written


async def _slots(conn: Conn, schema: str) -> dict[str, int]:
    rows = await conn.fetch(f"SELECT name, slot FROM {schema}.projections")
    return {r["name"]: r["slot"] for r in rows}


async def _gate(conn: Conn) -> dict[str, int]:
    """The live consumer's version gate: per stream, the last version it applied."""
    return await gate_positions(conn, CONSUMER_NAME)


def _groups(categories: frozenset[str]) -> list[tuple[str, ...]]:
    """The categories read together: all of them, by one reader."""
    return [tuple(sorted(categories))]
