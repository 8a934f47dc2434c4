"""Events on Kafka as CloudEvents 1.0 in binary mode.

The event's data is the record's value (JSON); its attributes are ``ce_``-prefixed
headers, as the CloudEvents Kafka protocol binding defines. The record key is the
stream id, so one stream's events stay in one partition, in order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from contracts import REGISTRY
from contracts.envelope import Envelope, Metadata
from contracts.topics import SERVICE_BY_CATEGORY, category_of
from eventkit import json_bytes

if TYPE_CHECKING:
    from eventkit.store import TailEvent

CONTENT_TYPE = "application/json"
_TYPE = re.compile(r"^cn\.minqing\.(?P<context>[a-z_]+)\.(?P<name>[A-Za-z]+)\.v(?P<version>\d+)$")

Headers = list[tuple[str, bytes]]


class NotACloudEvent(ValueError):
    """A record that lacks the attributes of a Minqing CloudEvent."""


def ce_type(event_type: str, schema_version: int) -> str:
    """``cn.minqing.<context>.<EventName>.v<N>``: the one name of an event's type on every
    record the relay publishes.

    The context comes from the type, whatever the version, and is ``unknown`` for a type
    this code never heard of: the relay publishes what a newer writer stored rather than
    stall on it.
    """
    context = REGISTRY.latest(event_type).context if REGISTRY.knows(event_type) else "unknown"
    return f"cn.minqing.{context}.{event_type}.v{schema_version}"


def ce_source(district_id: str, stream_id: str) -> str:
    """``/districts/<district>/<service>``: the service that owns the stream."""
    return f"/districts/{district_id}/{SERVICE_BY_CATEGORY.get(category_of(stream_id), 'unknown')}"


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


_METADATA_ATTRIBUTES = (
    ("traceparent", "ce_traceparent"),
    ("correlation_id", "ce_correlationid"),
    ("causation_id", "ce_causationid"),
)
"""The metadata carried as extension attributes: key in the stored metadata, header."""


def encode(envelope: Envelope) -> tuple[bytes, bytes, Headers]:
    """The key, value and headers of the Kafka record carrying ``envelope``."""
    if envelope.stream_version is None:
        raise ValueError("only stored events (with a stream version) are published")
    meta = envelope.metadata
    return binary(
        event_id=envelope.event_id,
        district_id=envelope.district_id,
        stream_id=envelope.stream_id,
        event_type=envelope.event_type,
        schema_version=envelope.schema_version,
        occurred_at=envelope.occurred_at,
        stream_version=envelope.stream_version,
        global_position=envelope.global_position,
        recorded_at=envelope.recorded_at,
        metadata={
            "traceparent": meta.traceparent,
            "correlation_id": meta.correlation_id,
            "causation_id": meta.causation_id,
        },
        value=json_bytes.dumps(envelope.data),
    )


def encode_tail(event: TailEvent) -> tuple[bytes, bytes, Headers]:
    """The Kafka record of an event as the relay reads it (:meth:`EventStore.read_tail`):
    its JSON text published as the store gives it."""
    return binary(
        event_id=event.event_id,
        district_id=event.district_id,
        stream_id=event.stream_id,
        event_type=event.event_type,
        schema_version=event.schema_version,
        occurred_at=event.occurred_at,
        stream_version=event.stream_version,
        global_position=event.global_position,
        recorded_at=event.recorded_at,
        metadata=event.metadata,
        value=event.data,
    )


def binary(
    *,
    event_id: UUID,
    district_id: str,
    stream_id: str,
    event_type: str,
    schema_version: int,
    occurred_at: datetime,
    stream_version: int,
    global_position: int | None,
    recorded_at: datetime | None,
    metadata: dict[str, Any],
    value: bytes,
) -> tuple[bytes, bytes, Headers]:
    """The key, value and headers of the Kafka record of a stored event whose data are
    already JSON (``value``): the relay publishes the store's JSON text as it is."""
    attrs: dict[str, str] = {
        "ce_specversion": "1.0",
        "ce_id": str(event_id),
        "ce_source": ce_source(district_id, stream_id),
        "ce_type": ce_type(event_type, schema_version),
        "ce_subject": stream_id,
        "ce_time": _time(occurred_at),
        "ce_district": district_id,
        "ce_streamversion": str(stream_version),
        "ce_partitionkey": stream_id,
        "content-type": CONTENT_TYPE,
    }
    for key, attribute in _METADATA_ATTRIBUTES:
        given = metadata.get(key)
        if given:
            attrs[attribute] = str(given)
    if global_position is not None:
        attrs["ce_position"] = str(global_position)
    if recorded_at is not None:
        # When the store learnt it: reports cut their periods on this, never on ce_time
        # alone (a CaseOverdue happens at the missed deadline, it is known later).
        attrs["ce_recordedtime"] = _time(recorded_at)
    headers = [(k, v.encode()) for k, v in attrs.items()]
    return stream_id.encode(), value, headers


def structured(envelope: Envelope) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode JSON object (for webhooks): the same
    attributes and extensions as the Kafka binary mode, with the data inside."""
    if envelope.stream_version is None:
        raise ValueError("only stored events (with a stream version) are sent")
    _, value, headers = encode(envelope)
    event: dict[str, Any] = {}
    for name, raw in headers:
        if name.startswith("ce_"):
            event[name[3:]] = raw.decode()
    event["datacontenttype"] = CONTENT_TYPE
    event["data"] = json.loads(value)
    return event


def header_map(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers as a dict of text (the last value of a repeated header wins)."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}


def decode(value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None) -> Envelope:
    """The envelope carried by a record; raises :class:`NotACloudEvent` when it is not one."""
    h = header_map(headers)
    try:
        match = _TYPE.match(h["ce_type"])
        if h.get("ce_specversion") != "1.0" or match is None:
            raise NotACloudEvent(f"unsupported ce_type or specversion: {h.get('ce_type')!r}")
        data: Any = json.loads(value or b"null")
        if not isinstance(data, dict):
            raise NotACloudEvent("the record's value is not a JSON object")
        return Envelope(
            event_id=UUID(h["ce_id"]),
            event_type=match["name"],
            schema_version=int(match["version"]),
            stream_id=h["ce_subject"],
            stream_version=int(h["ce_streamversion"]),
            global_position=int(h["ce_position"]) if "ce_position" in h else None,
            district_id=h["ce_district"],
            occurred_at=datetime.fromisoformat(h["ce_time"].replace("Z", "+00:00")),
            recorded_at=(
                datetime.fromisoformat(h["ce_recordedtime"].replace("Z", "+00:00"))
                if "ce_recordedtime" in h
                else None
            ),
            metadata=Metadata(
                correlation_id=h.get("ce_correlationid"),
                causation_id=h.get("ce_causationid"),
                traceparent=h.get("ce_traceparent"),
            ),
            data=data,
        )
    except NotACloudEvent:
        raise
    except (KeyError, ValueError) as exc:
        raise NotACloudEvent(f"not a Minqing CloudEvent: {exc}") from exc
