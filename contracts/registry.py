"""Event type names ↔ models, with upcasters from older schema versions to the newest.

A consumer only ever sees the newest shape of an event: ``parse`` upcasts stored or
received data step by step (v1 → v2 → …) and then validates it with the newest model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from contracts.base import Event

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    """No model is registered under that event type name (or version)."""


class EventRegistry:
    """Maps ``(event_type, schema_version)`` to models and holds the upcasters."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[Event]] = {}
        self._latest: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, *models: type[Event]) -> None:
        """Register models; the highest ``schema_version`` of a type becomes its current shape."""
        for model in models:
            key = (model.event_type, model.schema_version)
            if key in self._models and self._models[key] is not model:
                raise ValueError(f"{key} is registered twice")
            self._models[key] = model
            current = self._latest.get(model.event_type)
            if current is None or current.schema_version < model.schema_version:
                self._latest[model.event_type] = model

    def upcaster(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` turning data of ``from_version`` into ``from_version + 1``."""
        self._upcasters[(event_type, from_version)] = fn

    def latest(self, event_type: str) -> type[Event]:
        """The newest model of ``event_type``."""
        try:
            return self._latest[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def model(self, event_type: str, schema_version: int) -> type[Event]:
        """The model of one exact version (older ones are kept for validation and schemas)."""
        try:
            return self._models[(event_type, schema_version)]
        except KeyError:
            raise UnknownEventType(f"{event_type} v{schema_version}") from None

    def knows(self, event_type: str) -> bool:
        """Whether any version of ``event_type`` is registered."""
        return event_type in self._latest

    def models(self) -> Iterable[type[Event]]:
        """Every registered model, every version, in a stable order."""
        return [self._models[k] for k in sorted(self._models)]

    def current_models(self) -> Iterable[type[Event]]:
        """The newest model of every event type, by name."""
        return [self._latest[k] for k in sorted(self._latest)]

    def upcast(self, event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Bring ``data`` from ``schema_version`` up to the newest version of its type."""
        target = self.latest(event_type).schema_version
        if schema_version > target:
            raise UnknownEventType(
                f"{event_type} v{schema_version} is newer than this code knows (v{target})"
            )
        version = schema_version
        while version < target:
            try:
                step = self._upcasters[(event_type, version)]
            except KeyError:
                raise UnknownEventType(
                    f"no upcaster for {event_type} v{version} → v{version + 1}"
                ) from None
            data = step(data)
            version += 1
        return data

    def parse(self, event_type: str, schema_version: int, data: dict[str, Any]) -> Event:
        """Upcast and validate: the newest model instance for stored or received data."""
        model = self.latest(event_type)
        return model.model_validate(self.upcast(event_type, schema_version, data))

    def parse_json(self, event_type: str, schema_version: int, text: str | bytes) -> Event:
        """:meth:`parse` for data still as JSON text: validated straight from the text
        when it is the newest version (pydantic's JSON parser, about twice as fast as
        decoding first), decoded and upcast when older."""
        model = self.latest(event_type)
        if schema_version == model.schema_version:
            return model.model_validate_json(text)
        return self.parse(event_type, schema_version, json.loads(text))


def serialize(event: Event) -> dict[str, Any]:
    """The JSON-ready form of an event, as stored in the event store and sent to Kafka."""
    return event.model_dump(mode="json")
