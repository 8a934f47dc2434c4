"""The envelope: what the store and the wire add around an event.

``envelope_version`` versions the envelope itself; ``schema_version`` versions the event
inside it. Both travel with every record (columns in the store, CloudEvents attributes on
Kafka), so any reader can tell what it holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import DistrictId, Event
from contracts.registry import EventRegistry, serialize


class Metadata(BaseModel):
    """Why an event happened: the chain of messages and the trace it belongs to."""

    model_config = ConfigDict(frozen=True, extra="allow")

    correlation_id: str | None = None
    """Shared by every event that follows from one original request."""
    causation_id: str | None = None
    """The id of the message (event or request) that caused this event."""
    traceparent: str | None = None
    """W3C trace context, carried to Kafka as ``ce_traceparent``."""


class Envelope(BaseModel):
    """An event with its identity and position."""

    model_config = ConfigDict(frozen=True)

    envelope_version: Literal[1] = 1
    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    schema_version: int = Field(ge=1)
    stream_id: str
    stream_version: int | None = Field(default=None, ge=1)
    """Set once the event is stored: its place in its stream, contiguous from 1."""
    global_position: int | None = None
    district_id: DistrictId
    occurred_at: AwareDatetime
    recorded_at: datetime | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls, event: Event, metadata: Metadata | None = None, event_id: UUID | None = None
    ) -> Envelope:
        """A new envelope for ``event``, not yet stored."""
        return cls(
            event_id=event_id or uuid4(),
            event_type=event.event_type,
            schema_version=event.schema_version,
            stream_id=event.stream_id,
            district_id=event.district_id,
            occurred_at=event.occurred_at,
            metadata=metadata or Metadata(),
            data=serialize(event),
        )

    def event(self, registry: EventRegistry) -> Event:
        """The event inside, upcast to the newest shape of its type."""
        return registry.parse(self.event_type, self.schema_version, self.data)
