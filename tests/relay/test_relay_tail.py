"""The relay publishes what ``EventStore.read_tail`` gives, the data as the store's JSON
bytes: the same events in the same order as ``read_all``, and records equal to those
made from the events' envelopes (same key, same headers, the same JSON)."""

from __future__ import annotations

import json
import uuid

from contracts.envelope import Metadata
from eventkit import cloudevents
from eventkit.db import ALL_DISTRICTS
from eventkit.store import NO_STREAM, START, EventStore
from tests.helpers import envelope


async def test_the_tail_gives_the_records_the_envelopes_give(store: EventStore) -> None:
    stream = f"case-{uuid.uuid4().hex[:12]}"
    events = [
        envelope(stream, message='回复："已处理" \\\\ 完毕\n'),
        envelope(stream).model_copy(
            update={"metadata": Metadata(correlation_id="corr-1", causation_id="cause-1")}
        ),
    ]
    await store.append(stream, events, expected_version=NO_STREAM)

    full = await store.read_all(START, limit=1_000_000, district_id=ALL_DISTRICTS)
    tail = await store.read_tail(START, limit=1_000_000)

    assert [(e.global_position, e.checkpoint) for e in tail] == [
        (e.global_position, e.checkpoint) for e in full
    ]
    mine = [(t, f) for t, f in zip(tail, full, strict=True) if t.stream_id == stream]
    assert len(mine) == 2
    for lean, whole in mine:
        key, value, headers = cloudevents.encode_tail(lean)
        expected_key, expected_value, expected_headers = cloudevents.encode(whole.envelope())
        assert key == expected_key
        assert headers == expected_headers
        assert json.loads(value) == json.loads(expected_value) == whole.data
    assert dict(mine[1][0].metadata)["correlation_id"] == "corr-1"
