"""Properties of the contracts, for every registered event and version (Hypothesis, data
drawn from each model's JSON Schema):

- an event survives the trip through the store's JSON and the envelope;
- an envelope survives CloudEvents binary mode (encode, decode), the official CloudEvents
  SDK reads the same record, and structured mode carries the same attributes and data;
- every older version upcasts to a valid event of the newest version (OpinionSubmitted
  v1 → v2), through the registry as consumers read it.

Bounded by ``MINQING_FUZZ_CONTRACT_EXAMPLES`` per event type (a few seconds in all).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts import REGISTRY
from contracts.base import Event
from contracts.envelope import Envelope, Metadata
from contracts.registry import serialize
from eventkit.cloudevents import decode, encode, structured
from tests.fuzz.contract_data import model_data

EXAMPLES = int(os.environ.get("MINQING_FUZZ_CONTRACT_EXAMPLES", "25"))
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
CURRENT = list(REGISTRY.current_models())
OLDER = [m for m in REGISTRY.models() if m is not REGISTRY.latest(m.event_type)]


def events_of(model: type[Event]) -> st.SearchStrategy[Event]:
    """Valid instances of ``model`` (data its validators refuse is drawn again)."""

    def build(data: dict[str, Any]) -> Event | None:
        try:
            return model.model_validate(data)
        except ValidationError:
            return None

    return model_data(model.model_json_schema()).map(build).filter(lambda e: e is not None)  # type: ignore[return-value]


def test_every_registered_version_is_generated() -> None:
    # The lists the properties run over are the registry's: a new event is covered as soon
    # as it is registered, and an upcaster as soon as an older version is kept.
    assert len(CURRENT) == len({m.event_type for m in REGISTRY.models()})
    assert ("OpinionSubmitted", 1) in {(m.event_type, m.schema_version) for m in OLDER}


@pytest.mark.parametrize("model", CURRENT, ids=lambda m: m.event_type)
def test_an_event_survives_the_store_and_both_cloudevents_modes(model: type[Event]) -> None:
    @PROFILE
    @given(
        event=events_of(model),
        version=st.integers(min_value=1, max_value=2**31),
        position=st.one_of(st.none(), st.integers(min_value=1, max_value=2**62)),
        correlation=st.one_of(st.none(), st.text(min_size=1, max_size=40).filter(str.isprintable)),
    )
    def check(event: Event, version: int, position: int | None, correlation: str | None) -> None:
        # The store keeps the JSON form; reading it back gives the same event.
        stored = json.loads(json.dumps(serialize(event), ensure_ascii=False))
        assert REGISTRY.parse(event.event_type, event.schema_version, stored) == event

        envelope = Envelope.wrap(
            event, Metadata(correlation_id=correlation, causation_id=str(uuid4()))
        ).model_copy(
            update={
                "stream_version": version,
                "global_position": position,
                "recorded_at": datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=UTC),
            }
        )
        key, value, headers = encode(envelope)
        assert key == event.stream_id.encode()
        received = decode(value, headers)
        assert received.event_id == envelope.event_id
        assert received.stream_id == envelope.stream_id
        assert received.stream_version == version
        assert received.global_position == position
        assert received.occurred_at == envelope.occurred_at
        assert received.metadata.correlation_id == correlation
        assert received.event(REGISTRY) == event

        official = from_binary_event(KafkaMessage(headers=dict(headers), key=key, value=value))
        assert official.get_id() == str(envelope.event_id)
        assert official.get_subject() == event.stream_id
        data = official.get_data()
        assert model.model_validate(json.loads(data) if isinstance(data, bytes) else data) == event

        document = structured(envelope)
        assert document["id"] == str(envelope.event_id)
        assert document["type"] == official.get_type()
        assert document["data"] == envelope.data

    check()


@pytest.mark.parametrize("model", OLDER, ids=lambda m: f"{m.event_type}.v{m.schema_version}")
def test_an_older_version_upcasts_to_a_valid_newest_event(model: type[Event]) -> None:
    newest = REGISTRY.latest(model.event_type)

    @PROFILE
    @given(event=events_of(model))
    def check(event: Event) -> None:
        data = json.loads(json.dumps(serialize(event), ensure_ascii=False))
        assume(data)
        upcast = REGISTRY.parse(model.event_type, model.schema_version, data)
        assert type(upcast) is newest
        assert upcast.schema_version == newest.schema_version
        # What the upcast keeps of the old event, it keeps unchanged.
        assert upcast.stream_id == event.stream_id
        assert upcast.district_id == event.district_id
        assert upcast.occurred_at == event.occurred_at
        # And it is an event the newest code can store and read again.
        again = json.loads(json.dumps(serialize(upcast), ensure_ascii=False))
        assert REGISTRY.parse(newest.event_type, newest.schema_version, again) == upcast

    check()
