"""A relay killed outright in the middle of a stream of events loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import pytest

from contracts.topics import CASES
from eventkit.relay import relay_checkpoint
from eventkit.settings import Settings
from eventkit.store import START, EventStore
from tests.helpers import envelope, read_topic, versions_first_seen

pytestmark = pytest.mark.slow


def start_relay(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MINQING_DATABASE_URL": settings.database_url or "",
        "MINQING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MINQING_TOPIC_PREFIX": settings.topic_prefix,
        "MINQING_KAFKA_PARTITIONS": "3",
        "MINQING_RELAY_BATCH_SIZE": "25",
        "MINQING_LOG_FORMAT": "json",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "minqing.cli", "relay", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killing_the_relay_mid_stream_loses_nothing_and_keeps_stream_order(
    store: EventStore, settings: Settings
) -> None:
    streams = [f"case-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    appended: list[str] = []
    total = 3000

    async def write() -> None:
        for i in range(total):
            stream = streams[i % len(streams)]
            event = envelope(stream)
            await store.append(stream, [event])
            appended.append(str(event.event_id))
            if i % 50 == 0:
                await asyncio.sleep(0.005)  # keep the stream coming while the relay dies

    writing = asyncio.create_task(write())
    first = start_relay(settings)
    second = None
    try:
        # Kill the first relay once it has published some, but not all, of the events.
        for _ in range(600):
            if await relay_checkpoint(store, settings) != START:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the first relay never published anything")
        assert not writing.done(), "the writer finished before the kill: test proves nothing"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = len(appended)

        second = start_relay(settings)
        await writing
        records = await read_topic(
            settings.kafka_bootstrap,
            settings.topic(CASES),
            until=lambda r: {dict(x.headers)["ce_id"].decode() for x in r} >= set(appended),
            timeout=60,
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                assert process.wait(15) == 0

    assert 0 < killed_at < total
    per_stream = versions_first_seen(records)
    assert sorted(per_stream) == sorted(streams)
    for stream, versions in per_stream.items():
        assert versions == list(range(1, total // len(streams) + 1)), stream
    print(f"\nkilled after {killed_at} of {total} appends; {len(records)} records on Kafka")
