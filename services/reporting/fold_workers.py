"""A rebuild's folding in worker processes: the case streams split between them.

One Python process folds a year of a large district at about 12 µs of CPU per event
(validating the JSON, folding, encoding the COPY), the larger share of a rebuild. The
rebuild process keeps the reading, the version gate and everything after the bulk load;
it hands each event it would fold to one worker, chosen by a stable hash of the case's
stream (:func:`worker_of`), so a case's events stay in one process and in their order.
A resident's rating goes to the worker of the case it rates (it is counted in that
case's district, which that worker alone knows, as the one-process fold would); the
directory's and the QR scans' few events to the first worker (rows that several streams
may write must stay in one place).

Each worker folds with its own :class:`services.reporting.folding.Folder` and copies its
share of the rows into the shadow slots on its own connection, during the bulk load
(the slots are open for COPY then, ``reporting.shadow_load``). Afterwards, while catching
up and in the swap's transaction, the workers only fold and hand back the rows that
changed: the rebuild process writes them in its own transactions, as before.

The workers are started with ``spawn`` (the rebuild process holds an event loop and
connections, which must not be forked). A worker that dies, or fails, fails the
rebuild: its pipe ends (:class:`FoldWorkerFailed`). A worker whose rebuild process dies
sees its pipe end and exits; :meth:`FoldWorkers.close` ends the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import pickle
import re
import sys
import types
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final

from contracts.base import Event
from eventkit.db import Conn, connect
from eventkit.keys import KeyRing
from eventkit.logging import get_logger
from eventkit.loop import run as run_loop
from eventkit.sealed_texts import TextKeys
from services.reporting.folded_texts import FoldedTextOpener
from services.reporting.folding import HANDLED_TYPES, Folder, FoldsStored, StoredEvent
from services.reporting.shadow import copy_rows, every_district
from services.reporting.tables import CASE_STEPS, Table

log = get_logger(__name__)

STEP_CHUNK: Final = 50_000
"""Steps a worker copies to the shadow in one COPY while the store is still being read."""

SEND_EVERY: Final = 4_000
"""Events handed to a worker in one message (a pickled batch: few system calls)."""

Parts = tuple[str, int, Any, float, int, str]
"""An event as a worker is sent it: type, schema version, data, recorded at, version,
stream (:meth:`Folder.fold_stored`'s arguments). The moment goes as its POSIX timestamp:
pickling a ``datetime`` cost more than the rest of the event (measured: 1.8 against 0.4 µs
an event). The round trip is exact: a double holds a timestamp to well under half a
microsecond until 2106, and ``datetime.fromtimestamp`` rounds to the nearest."""

Rows = tuple[dict[str, list[tuple[Any, ...]]], list[tuple[Any, ...]]]
"""What changed since it was last asked: rows per table, and new steps."""


class FoldWorkerFailed(RuntimeError):
    """A fold worker died or failed: the rebuild fails (its slots are closed again)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs (pickled to it): where to write, and what it folds."""

    database_url: str
    role: str | None
    schema: str
    projections: tuple[str, ...]
    shadows: dict[str, int]
    """Per table name, the shadow slot it is rebuilt into."""
    keys: KeyRing | None = None
    """The vault's keys, which open the case texts' keys (None: the environment's)."""


def worker_of(stream_id: str, workers: int) -> int:
    """The worker that folds ``stream_id``: the same in every process and every run
    (``hash()`` of a string is salted per process)."""
    return zlib.crc32(stream_id.encode()) % workers


class FoldWorkers(FoldsStored):
    """The worker processes of one rebuild, seen as a folder: the rebuild process counts
    what it hands out (``events``, ``versions``) as :class:`Folder` counts what it folds."""

    def __init__(self, spec: WorkerSpec, workers: int) -> None:
        self.spec = spec
        self.n = workers
        self.categories = Folder(spec.projections).categories
        self.versions: dict[str, int] = {}
        self.events = 0
        self._buffers: list[list[Parts]] = [[] for _ in range(workers)]
        self._sending: list[asyncio.Future[None] | None] = [None] * workers
        self._pipes: list[Connection] = []
        self._processes: list[BaseProcess] = []

    def start(self) -> None:
        """Start the workers (they import and connect while the rebuild begins)."""
        context = multiprocessing.get_context("spawn")
        with _bare_main():
            self._start(context)

    def _start(self, context: Any) -> None:
        for n in range(self.n):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=worker_main, args=(self.spec, theirs), name=f"rebuild-fold-{n}", daemon=True
            )
            process.start()
            theirs.close()  # its only end left is the worker's: EOF when the worker dies
            self._pipes.append(mine)
            self._processes.append(process)

    # ------------------------------------------------------------ as a folder

    def wants(self, event: StoredEvent) -> bool:
        """Whether the event is one this rebuild folds."""
        return event.category in self.categories and event.event_type in HANDLED_TYPES

    def fold_stored(
        self,
        event_type: str,
        schema_version: int,
        data: dict[str, Any] | str | bytes | Event,
        at: datetime | float,
        version: int,
        stream_id: str,
    ) -> None:
        """Hand one event to its worker (:meth:`Folder.fold_stored`); sent by :meth:`flush`."""
        if isinstance(data, Event):
            raise TypeError("fold workers make the events themselves (and open their texts)")
        if stream_id.startswith("case-"):
            n = zlib.crc32(stream_id.encode()) % self.n
        elif event_type == "FeedbackSubmitted":
            n = worker_of(f"case-{_rated_case(data)}", self.n)
        else:
            n = 0
        self._buffers[n].append(
            (
                event_type,
                schema_version,
                data,
                at if isinstance(at, float) else at.timestamp(),
                version,
                stream_id,
            )
        )
        self.versions[stream_id] = version
        self.events += 1

    async def flush(self, *, all_of_it: bool = False) -> None:
        """Send the full buffers (every buffer with ``all_of_it``). A send blocks while a
        worker is behind: in a thread, one at a time per worker."""
        loop = asyncio.get_running_loop()
        for n, buffer in enumerate(self._buffers):
            if not buffer or (len(buffer) < SEND_EVERY and not all_of_it):
                continue
            self._buffers[n] = []
            await self._sent(n)
            payload = pickle.dumps(("fold", buffer), protocol=pickle.HIGHEST_PROTOCOL)
            self._sending[n] = loop.run_in_executor(None, self._send, n, payload)

    def _send(self, n: int, payload: bytes) -> None:
        try:
            self._pipes[n].send_bytes(payload)
        except OSError as exc:
            raise FoldWorkerFailed(f"fold worker {n} is gone ({exc})") from exc

    async def _sent(self, n: int) -> None:
        pending, self._sending[n] = self._sending[n], None
        if pending is not None:
            await pending

    async def _ask(self, request: str) -> list[Any]:
        """Send ``request`` to every worker after what it was given; their answers."""
        await self.flush(all_of_it=True)
        for n in range(self.n):
            await self._sent(n)
            self._send(n, pickle.dumps((request, None)))
        loop = asyncio.get_running_loop()
        answers = [loop.run_in_executor(None, self._answer, n) for n in range(self.n)]
        return list(await asyncio.gather(*answers))

    def _answer(self, n: int) -> Any:
        try:
            kind, value = self._pipes[n].recv()
        except (EOFError, OSError) as exc:
            code = self._processes[n].exitcode
            raise FoldWorkerFailed(f"fold worker {n} died (exit code {code})") from exc
        if kind == "failed":
            raise FoldWorkerFailed(f"fold worker {n} failed: {value}")
        return value

    async def end_steps(self) -> None:
        """Let every worker fold all it was given and copy the last of its steps into the
        open slot; wait for it (the steps are complete then: their indexes can be built
        while the workers copy the rest)."""
        await self._ask("end_steps")

    async def end_bulk(self) -> None:
        """Let every worker copy the rest of its rows into the open slots (after
        :meth:`end_steps`); wait for it."""
        await self._ask("end_bulk")

    async def take_changes(self) -> Rows:
        """The rows changed and the steps made since the last call, from every worker."""
        tables: dict[str, list[tuple[Any, ...]]] = {}
        steps: list[tuple[Any, ...]] = []
        for dirty, new_steps in await self._ask("changes"):
            for name, rows in dirty.items():
                tables.setdefault(name, []).extend(rows)
            steps += new_steps
        return tables, steps

    async def keys_found(self) -> list[str]:
        """The ids of the text keys the workers found since the last call (every text
        they opened was opened with one of them)."""
        return [key_id for found in await self._ask("keys") for key_id in found]

    async def close(self) -> None:
        """Stop every worker: asked to, then killed if it has not stopped within a few
        seconds (a send still blocked on a worker that hangs ends when it is killed)."""
        loop = asyncio.get_running_loop()
        stops = []
        for n in range(len(self._pipes)):
            pending = self._sending[n]
            if pending is None or pending.done():
                stops.append(loop.run_in_executor(None, self._stop, n))
        if stops:
            await asyncio.wait(stops, timeout=5)
        for process in self._processes:
            await loop.run_in_executor(None, process.join, 5)
            if process.is_alive():
                process.kill()
                await loop.run_in_executor(None, process.join, 5)
        leftovers = [f for f in (*self._sending, *stops) if f is not None]
        await asyncio.gather(*leftovers, return_exceptions=True)
        for pipe in self._pipes:
            pipe.close()

    def _stop(self, n: int) -> None:
        with contextlib.suppress(OSError):  # gone already
            self._pipes[n].send_bytes(pickle.dumps(("stop", None)))

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (the tests look for orphans)."""
        return [p.pid for p in self._processes if p.pid is not None]


_CASE_ID: Final = re.compile(rb'"case_id": ?"([^"\\]+)"')
"""A rating's case id in its stored JSON text (PostgreSQL writes ``jsonb`` keys once,
``"key": value``; an id holds no quote or backslash, ``contracts.base.Identifier``)."""


def _rated_case(data: dict[str, Any] | str | bytes) -> str:
    """The case a rating's stored data rates (found in the JSON bytes without decoding
    them: a tenth of the time, for one rating in ten events)."""
    if isinstance(data, bytes) and (found := _CASE_ID.search(data)) is not None:
        return found[1].decode()
    return str((json.loads(data) if isinstance(data, str | bytes) else data)["case_id"])


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """An empty ``__main__`` while the workers are started.

    ``spawn`` imports the parent's main module again in every child: for the CLI, every
    service (measured: 1.3 s of CPU and 70 MB per worker, more than a worker's share of
    folding 200,000 events). A worker needs only this module, which its target names. The
    swap is brief and synchronous: nothing else runs on the event loop meanwhile.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


# ---------------------------------------------------------------- in the worker


def worker_main(spec: WorkerSpec, pipe: Connection) -> None:
    """A worker process: fold what it is sent until told to stop or its pipe ends."""
    with contextlib.suppress(EOFError, KeyboardInterrupt):  # the rebuild is gone
        run_loop(_Worker(spec, pipe).serve())


class _Worker:
    def __init__(self, spec: WorkerSpec, pipe: Connection) -> None:
        self.spec = spec
        self.pipe = pipe
        self.folder = Folder(spec.projections)
        self.copying: asyncio.Task[None] | None = None
        self.opener = FoldedTextOpener(TextKeys(spec.keys))

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        conn = await connect(self.spec.database_url, role=self.spec.role)
        # Where the texts' keys are looked up: ``conn`` may be copying meanwhile.
        keys_conn = await connect(self.spec.database_url, role=self.spec.role)
        gc.disable()  # as in the one-process bulk load: the heap of case facts, no cycles
        try:
            while True:
                kind, value = pickle.loads(await loop.run_in_executor(None, self.pipe.recv_bytes))
                try:
                    if kind == "fold":
                        await self._fold(keys_conn, value)
                        if self.folder.pending_steps >= STEP_CHUNK:
                            await self._copied()
                            rows = self.folder.take_steps()
                            self.copying = asyncio.create_task(self._copy(conn, CASE_STEPS, rows))
                    elif kind == "end_steps":
                        await self._copied()
                        await self._copy(conn, CASE_STEPS, self.folder.take_steps())
                        self.pipe.send(("done", None))
                    elif kind == "end_bulk":
                        for table, rows in self.folder.take_dirty().items():
                            await self._copy(conn, table, rows)
                        gc.enable()
                        self.pipe.send(("done", None))
                    elif kind == "changes":
                        dirty = {t.name: rows for t, rows in self.folder.take_dirty().items()}
                        self.pipe.send(("rows", (dirty, self.folder.take_steps())))
                    elif kind == "keys":
                        self.pipe.send(("keys", self.opener.take_found()))
                    else:
                        return
                except Exception as exc:  # reported to the rebuild, which fails
                    self.pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
                    raise
        finally:
            if self.copying is not None:
                self.copying.cancel()
            await conn.close()
            await keys_conn.close()

    async def _fold(self, keys_conn: Conn, batch: Sequence[Parts]) -> None:
        fold, moment = self.folder.fold_stored, datetime.fromtimestamp
        # The events whose folded texts are sealed, made and opened (None: there are none).
        datas = await self.opener.open(keys_conn, batch, self.folder.parse)
        if datas is None:
            for event_type, schema_version, data, at, version, stream in batch:
                fold(event_type, schema_version, data, moment(at, UTC), version, stream)
            return
        for (event_type, schema_version, _, at, version, stream), data in zip(
            batch, datas, strict=True
        ):
            fold(event_type, schema_version, data, moment(at, UTC), version, stream)

    async def _copied(self) -> None:
        copying, self.copying = self.copying, None
        if copying is not None:
            await copying

    async def _copy(self, conn: Any, table: Table, rows: list[tuple[Any, ...]]) -> None:
        if table is CASE_STEPS and "cases" not in self.spec.projections:
            return
        shadow = self.spec.shadows[table.name]
        async with every_district(conn):
            await copy_rows(conn, self.spec.schema, table, shadow, rows, loading=True)
