"""A rebuild folding in worker processes (the case streams split between them) builds
exactly the rows of a rebuild folding in one process; a worker that dies fails the
rebuild cleanly: its slots closed again, no process left behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from eventkit.local import database_url
from eventkit.store import EventStore
from services.reporting.bootstrap import Reporting
from services.reporting.fold_workers import FoldWorkerFailed, FoldWorkers, WorkerSpec, worker_of
from services.reporting.settings import ReportingSettings
from services.reporting.tables import TABLES
from tests.reporting.conftest import project, rebuild_while_consuming
from tests.reporting.history import local, random_cases, store_history
from tests.reporting.march import march_history
from tests.reporting.test_reporting_rebuild import snapshot
from tests.reporting.test_reporting_rebuild_load import _unsecured_slots


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[FoldWorkers]:
    """Every set of fold workers a rebuild starts."""
    seen: list[FoldWorkers] = []
    start = FoldWorkers.start

    def spy(self: FoldWorkers) -> None:
        seen.append(self)
        start(self)

    monkeypatch.setattr(FoldWorkers, "start", spy)
    return seen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_workers_fold_exactly_the_rows_of_one_process(
    service: Reporting, store: EventStore, database_url: str, started: list[FoldWorkers]
) -> None:
    history = march_history()
    random_cases(history, 400, seed=29, start=local(3, 1))
    await project(service, await store_history(store, database_url, history.ordered()))
    service.rebuild.workers = 1
    alone = await service.rebuild.run()
    by_one = await snapshot(service.pool)
    assert started == []

    service.rebuild.workers = 2
    split = await service.rebuild.run()

    assert [w.n for w in started] == [2]
    assert split.events == alone.events
    assert split.equal, [c.differences for c in split.comparisons]
    assert {c.table for c in split.comparisons} == set(TABLES)
    assert len(by_one["cases"]) == 414
    assert await snapshot(service.pool) == by_one
    assert not any(_alive(pid) for pid in started[0].pids)


async def test_a_rebuild_as_of_a_moment_with_workers_equals_one_without(
    service: Reporting, store: EventStore, database_url: str, started: list[FoldWorkers]
) -> None:
    history = march_history()
    random_cases(history, 200, seed=31, start=local(3, 1))
    await project(service, await store_history(store, database_url, history.ordered()))
    moment = local(3, 20, 12)
    service.rebuild.workers = 1
    await service.rebuild.run(at=moment)
    by_one = await snapshot(service.pool, "reporting_asof")

    service.rebuild.workers = 3
    await service.rebuild.run(at=moment)

    assert [w.n for w in started] == [3]
    assert await snapshot(service.pool, "reporting_asof") == by_one


async def test_a_worker_that_dies_fails_the_rebuild_and_leaves_nothing_behind(
    service: Reporting,
    store: EventStore,
    database_url: str,
    started: list[FoldWorkers],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = march_history()
    random_cases(history, 100, seed=37, start=local(3, 1))
    await project(service, await store_history(store, database_url, history.ordered()))
    flush = FoldWorkers.flush

    async def kill_one_first(self: FoldWorkers, *, all_of_it: bool = False) -> None:
        if self._processes[1].is_alive():
            os.kill(self.pids[1], signal.SIGKILL)
            self._processes[1].join()
        await flush(self, all_of_it=all_of_it)

    monkeypatch.setattr(FoldWorkers, "flush", kill_one_first)
    service.rebuild.workers = 2

    with pytest.raises(FoldWorkerFailed):
        await service.rebuild.run()

    assert len(started) == 1
    assert not any(_alive(pid) for pid in started[0].pids)
    async with service.pool.acquire() as conn:
        assert await _unsecured_slots(conn) == []
    monkeypatch.setattr(FoldWorkers, "flush", flush)
    again = await service.rebuild.run()
    assert again.equal, [c.differences for c in again.comparisons]


@pytest.mark.parametrize("form", ["text", "bytes as the store gives them"])
def test_a_rating_goes_to_the_worker_of_the_case_it_rates(form: str) -> None:
    workers = FoldWorkers(WorkerSpec("", None, "reporting", ("ratings",), {}), 2)
    case = next(f"C{n}" for n in range(100) if worker_of(f"case-C{n}", 2) == 1)
    other = next(f"C{n}" for n in range(100) if worker_of(f"case-C{n}", 2) == 0)
    stream = next(f"opinion-O{n}" for n in range(100) if worker_of(f"opinion-O{n}", 2) == 0)
    # A comment quoting another case id comes first: only the rating's own field counts.
    data = {"comment": f'上次说的 "case_id": "{other}" 还没修', "case_id": case, "satisfaction": 4}
    text = json.dumps(data, ensure_ascii=False)
    stored = text.encode() if form.startswith("bytes") else text

    workers.fold_stored("FeedbackSubmitted", 1, stored, local(3, 1), 1, stream)

    assert [len(b) for b in workers._buffers] == [0, 1]


async def test_a_worker_whose_rebuild_process_is_gone_exits(
    reporting_settings: ReportingSettings,
) -> None:
    spec = WorkerSpec(
        database_url(reporting_settings),
        reporting_settings.database_role,
        "reporting",
        ("cases",),
        {"cases": 1, "case_steps": 1},
    )
    workers = FoldWorkers(spec, 1)
    workers.start()
    process = workers._processes[0]

    workers._pipes[0].close()  # as when the rebuild process dies: its end of the pipe goes
    await asyncio.to_thread(process.join, 30)

    assert process.exitcode == 0


async def test_with_workers_a_rebuild_while_the_consumer_goes_on_misses_nothing(
    service: Reporting, store: EventStore, database_url: str, started: list[FoldWorkers]
) -> None:
    history = march_history()
    random_cases(history, 400, seed=41, start=local(3, 1))
    events = await store_history(store, database_url, history.ordered())
    service.rebuild.workers = 2
    result = await rebuild_while_consuming(service, events, seed=7)

    assert [w.n for w in started] == [2]
    assert result.equal, [c.differences for c in result.comparisons]
    assert service.consumer.stats.duplicates == 0
    service.rebuild.workers = 1
    after = await service.rebuild.run(dry_run=True)
    assert after.equal, [c.differences for c in after.comparisons]
