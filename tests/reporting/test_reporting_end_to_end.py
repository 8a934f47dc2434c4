"""End to end on the real broker: events appended to the store reach the reporting app's
own consumer through the relay and Kafka, and its API counts them.

The reporting app runs as in production (its lifespan starts the consumer group); the
relay runs in-process. Events are recorded now, so the figures are today's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import Envelope
from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.relay import Relay
from eventkit.settings import Settings
from eventkit.store import EventStore
from services.reporting.app import create_app
from services.reporting.settings import ReportingSettings
from tests.reporting.history import store_history
from tests.reporting.march import march_history
from tests.staff_support import staff_events


@pytest.fixture
async def running(settings: Settings, store: EventStore) -> AsyncIterator[FastAPI]:
    own = ReportingSettings(**settings.model_dump(), reporting_consumer_batch=50)
    app = create_app(own)
    stop = asyncio.Event()
    relay = asyncio.create_task(Relay(store, own).run(stop))
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay, 15)


async def test_events_on_kafka_reach_the_reporting_api(
    running: FastAPI, store: EventStore, settings: Settings
) -> None:
    # Recorded now, by the store's own clock: every case is today's.
    events = await store_history(store, None, march_history().ordered())
    # The administrator's account, invited in routing, reaches reporting's roster the
    # same way: on the directory topic.
    for account in staff_events("demo", [("a", Role.DISTRICT_ADMIN)], station="dh_home"):
        await store.append(account.stream_id, [Envelope.wrap(account)])
    consumer = running.state.reporting.consumer
    deadline = time.monotonic() + 90
    while consumer.stats.applied + consumer.stats.gap_filled < len(events) + 1:
        assert time.monotonic() < deadline, f"{consumer.stats} after 90 s"
        await asyncio.sleep(0.2)

    token = issue_token(settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="a")
    transport = httpx.ASGITransport(app=running)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
        response = await client.get(
            "/api/v1/districts/demo/overview", headers={"Authorization": f"Bearer {token}"}
        )
        body = response.json()
        assert body["figures"]["counts"]["received"] == 13  # C9X is the other district's
        # C1 C3 C5 C8 C11 as in March, and C0 and C12 of February: all recorded today.
        assert body["figures"]["rates"]["response"]["numerator"] == 7
        metrics = (await client.get("/metrics")).text
        assert 'minqing_consumer_lag_records{consumer="reporting"' in metrics
        assert "minqing_reporting_last_recorded_timestamp_seconds{topic=" in metrics
        ready = await client.get("/readyz")
        assert ready.json()["checks"] == {"database": True, "consumers": True, "projections": True}
    assert consumer.stats.dead_lettered == 0
