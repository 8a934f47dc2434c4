"""A consumer that dies between its effect's commit and its offset commit applies nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from eventkit.relay import Relay
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.helpers import envelope

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("crash_consumer.py")
ROOT = Path(__file__).resolve().parents[2]


def start_consumer(settings: Settings, crash_at: int | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MINQING_DATABASE_URL": settings.database_url or "",
        "MINQING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MINQING_TOPIC_PREFIX": settings.topic_prefix,
        "MINQING_LOG_FORMAT": "json",
        "CRASH_AT_VERSION": str(crash_at or 0),
    }
    return subprocess.Popen(
        [sys.executable, str(SCRIPT)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def applied(pool: asyncpg.Pool, stream: str) -> list[int]:
    rows = await pool.fetch(
        "SELECT stream_version FROM public.effects WHERE stream_id = $1 ORDER BY applied_at",
        stream,
    )
    return [r["stream_version"] for r in rows]


async def test_a_crash_after_the_effect_commit_does_not_apply_the_effect_twice(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [envelope(stream) for _ in range(10)])
    stop_relay = asyncio.Event()
    relay = asyncio.create_task(Relay(store, settings).run(stop_relay))
    survivor = None
    try:
        doomed = start_consumer(settings, crash_at=5)
        code = await asyncio.to_thread(doomed.wait, 60)
        assert code == 17, "the consumer should have died right after committing version 5"
        assert await applied(pool, stream) == [1, 2, 3, 4, 5]

        survivor = start_consumer(settings, crash_at=None)
        for _ in range(1200):
            if len(await applied(pool, stream)) >= 10:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # room for a wrong second application to show up
        assert await applied(pool, stream) == list(range(1, 11))
    finally:
        if survivor is not None and survivor.poll() is None:
            survivor.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(survivor.wait, 30) == 0
        stop_relay.set()
        await asyncio.wait_for(relay, 15)
