"""The rebuild's hot loop (rows unpacked, JSON text validated by each type's cached
validator) folds exactly what the events themselves fold, on a generated history; an
event stored in an older version still goes through the registry's upcasters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import REGISTRY
from contracts.base import Event
from contracts.cases import CaseOpened
from contracts.registry import EventRegistry, serialize
from eventkit.store import ScannedEvent
from services.reporting.folding import Folder
from services.reporting.rebuild import _Run
from services.reporting.tables import PROJECTIONS
from tests.reporting.history import local, random_cases
from tests.reporting.march import march_history

Rows = dict[str, list[tuple[Any, ...]]]


def _history() -> list[tuple[datetime, Event]]:
    history = march_history()
    random_cases(history, 300, seed=23, start=local(3, 1))
    return history.ordered()


def _scanned(history: list[tuple[datetime, Event]]) -> list[ScannedEvent]:
    """The history as a scan gives it: per stream in version order, data as the bytes of
    its JSON text."""
    versions: dict[str, int] = {}
    out = []
    for n, (at, event) in enumerate(history, start=1):
        version = versions[event.stream_id] = versions.get(event.stream_id, 0) + 1
        out.append(
            ScannedEvent(
                n,
                1,
                event.stream_id,
                version,
                event.stream_category,
                event.event_type,
                event.schema_version,
                json.dumps(serialize(event), ensure_ascii=False).encode(),
                (at + timedelta(seconds=n)).timestamp(),
            )
        )
    return out


def _rows(folder: Folder) -> Rows:
    dirty = folder.take_dirty()
    rows = {table.name: sorted(rows, key=repr) for table, rows in dirty.items()}
    rows["case_steps"] = sorted(folder.take_steps(), key=repr)
    return rows


def test_the_hot_loop_folds_what_the_events_fold() -> None:
    scanned = _scanned(_history())
    run = _Run(None, None, 1000, "reporting_asof", list(PROJECTIONS), datetime.now(UTC))  # type: ignore[arg-type]
    for start in range(0, len(scanned), 1000):
        run._take_batch(scanned[start : start + 1000])
    by_event = Folder(PROJECTIONS)
    for stored in scanned:
        if by_event.wants(stored):
            event = REGISTRY.parse(
                stored.event_type, stored.schema_version, json.loads(stored.data)
            )
            by_event.fold_event(event, stored.recorded_at, stored.stream_version, stored.stream_id)

    assert isinstance(run.folder, Folder)  # one process: the rebuild folds itself
    fast, slow = _rows(run.folder), _rows(by_event)

    assert run.folder.events == by_event.events
    assert len(fast["cases"]) > 300
    assert fast == slow


def test_an_event_stored_in_an_older_version_is_upcast_before_it_is_folded() -> None:
    registry = EventRegistry()
    registry.register(*REGISTRY.current_models())

    def from_v0(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "priority": data.pop("urgency")}

    registry.upcaster("CaseOpened", 0, from_v0)
    at, opened = next((at, e) for at, e in _history() if isinstance(e, CaseOpened))
    old = serialize(opened)
    old["urgency"] = old.pop("priority")
    folder = Folder(["cases"], registry)

    folder.fold_stored("CaseOpened", 0, json.dumps(old), at, 1, opened.stream_id)

    assert folder.cases[opened.case_id].priority == opened.priority.value
