"""Folding stored events into projection rows in memory: the heart of a rebuild.

Pure: the events come in as :class:`StoredEvent` (what the store gives), the rows go out
as tuples. The same functions as the live consumer's decide every row
(:func:`services.reporting.case_facts.fold_case`,
:func:`services.reporting.changes.directory_changes` and ``rating_changes``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from contracts import REGISTRY
from contracts.base import Event
from contracts.cases import CaseEvent
from contracts.intake import FeedbackSubmitted, QrScansRecorded
from contracts.registry import EventRegistry
from services.reporting.case_facts import CaseFacts, fold_case
from services.reporting.changes import (
    HANDLED,
    MemoryTables,
    directory_changes,
    rating_changes,
    scan_changes,
)
from services.reporting.tables import CASES, PROJECTIONS, Table

HANDLED_TYPES: Final = frozenset(m.event_type for m in HANDLED)

CATEGORIES_OF: Final[dict[str, tuple[str, ...]]] = {
    "directory": ("district", "station", "representative"),
    "cases": ("case",),
    "ratings": ("opinion",),
    "scans": ("qrscans",),
}
"""The stream categories each projection folds."""


class StoredEvent(Protocol):
    """What a rebuild needs of a stored event (``eventkit.store.RecordedEvent`` has it)."""

    @property
    def stream_id(self) -> str: ...
    @property
    def stream_version(self) -> int: ...
    @property
    def category(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> dict[str, Any] | str: ...
    @property
    def recorded_at(self) -> datetime: ...


class FoldsStored:
    """What folds stored events from their parts (:meth:`fold_stored`): a rebuild's
    :class:`Folder`, or the worker processes it hands them to."""

    def fold(self, stored: StoredEvent) -> None:
        """Fold one event (the caller gives each stream's events in version order); its
        data may still be JSON text (a rebuild decodes only what it folds)."""
        self.fold_stored(
            stored.event_type,
            stored.schema_version,
            stored.data,
            stored.recorded_at,
            stored.stream_version,
            stored.stream_id,
        )

    def fold_stored(
        self,
        event_type: str,
        schema_version: int,
        data: dict[str, Any] | str | bytes | Event,
        at: datetime | float,
        version: int,
        stream_id: str,
    ) -> None:
        raise NotImplementedError


class Folder(FoldsStored):
    """The projections being rebuilt, in memory.

    Cases stay as :class:`CaseFacts` (they change until the end); their steps never
    change once made, so the caller takes them away as they come (:meth:`take_steps`)
    and memory stays bounded by the cases, not the events.
    """

    def __init__(self, projections: Iterable[str], registry: EventRegistry = REGISTRY) -> None:
        self.projections = frozenset(projections)
        self.categories = frozenset(c for p in self.projections for c in CATEGORIES_OF[p])
        tables = [t for p in self.projections if p != "cases" for t in PROJECTIONS[p]]
        self.tables = MemoryTables(tables)
        self.cases: dict[str, CaseFacts] = {}
        self.dirty_cases: set[str] = set()
        self.versions: dict[str, int] = {}
        """Per stream, the last version folded."""
        self.events = 0
        self._steps: list[tuple[Any, ...]] = []
        self._registry = registry
        self._validators: dict[tuple[str, int], Callable[[str | bytes], Event]] = {}

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
        """:meth:`fold` from the parts of a stored event: a rebuild's hot loop, which
        unpacks the rows of a scan rather than asking each for its attributes. ``data``
        may also be the event already made (its texts opened)."""
        event = data if isinstance(data, Event) else self.parse(event_type, schema_version, data)
        if isinstance(at, float):  # a scan's moment, in POSIX seconds
            at = datetime.fromtimestamp(at, UTC)
        self.fold_event(event, at, version, stream_id)

    def parse(self, event_type: str, schema_version: int, data: Any) -> Event:
        """The event of a stored event's parts (JSON bytes or text, or a dict)."""
        if isinstance(data, str | bytes):
            validate = self._validators.get((event_type, schema_version))
            if validate is None:
                validate = self._validator(event_type, schema_version)
            return validate(data)
        return self._registry.parse(event_type, schema_version, data)

    def _validator(self, event_type: str, schema_version: int) -> Callable[[str | bytes], Event]:
        """How to make an event of this type and version from its JSON text: the newest
        model's own validator when the stored version is the newest (the registry's
        ``parse_json`` without a call per event to find it), else the registry's upcasting."""
        model = self._registry.latest(event_type)
        validate: Callable[[str | bytes], Event]
        if schema_version == model.schema_version:
            validate = model.__pydantic_validator__.validate_json
        else:
            registry = self._registry

            def validate(text: str | bytes) -> Event:
                return registry.parse_json(event_type, schema_version, text)

        self._validators[(event_type, schema_version)] = validate
        return validate

    def _fold_case(self, event: CaseEvent, at: datetime, version: int) -> None:
        facts, steps = fold_case(self.cases.get(event.case_id), event, at, version)
        self.cases[event.case_id] = facts
        self.dirty_cases.add(event.case_id)
        if steps:
            self._steps += steps  # each step is its row

    def fold_event(self, event: Event, at: datetime, version: int, stream_id: str) -> None:
        """Fold an event already parsed, recorded at ``at``."""
        if isinstance(event, CaseEvent):
            self._fold_case(event, at, version)
        elif isinstance(event, FeedbackSubmitted):
            case = self.cases.get(event.case_id)
            self.tables.apply(rating_changes(event, at, case.district_id if case else None))
        elif isinstance(event, QrScansRecorded):
            self.tables.apply(scan_changes(event, at))
        else:
            self.tables.apply(directory_changes(event, at))
        self.versions[stream_id] = version
        self.events += 1

    @property
    def pending_steps(self) -> int:
        """Steps folded and not taken yet."""
        return len(self._steps)

    def take_steps(self) -> list[tuple[Any, ...]]:
        """The steps folded since the last call (rows of ``case_steps``)."""
        steps, self._steps = self._steps, []
        return steps

    def take_dirty(self) -> dict[Table, list[tuple[Any, ...]]]:
        """The rows changed since the last call, per table (cases and the other tables)."""
        out: dict[Table, list[tuple[Any, ...]]] = {}
        if "cases" in self.projections:
            out[CASES] = [self.cases[c].row() for c in self.dirty_cases]
            self.dirty_cases = set()
        for p in self.projections - {"cases"}:
            for table in PROJECTIONS[p]:
                rows = self.tables.rows[table.name]
                out[table] = [rows[k] for k in self.tables.dirty[table.name]]
                self.tables.dirty[table.name] = set()
        return out


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off for the bulk read (measured on a year of a large
    district: a third of the folding's time). The fold makes millions of objects that
    form no cycles (rows, events, case facts), which reference counting frees; the
    collector would only walk the growing heap of case facts again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
