"""End to end on the real broker: case events on Kafka reach the representative's mailbox
and the resident's phone; the outcomes come back on ``minqing.notifications.v1``, the
public feed on ``minqing.public.demo.cases.v1``.

The notification app runs as in production (its lifespan: the consumer group, the
sender, the public feed); the relay runs in-process; routing's and intake's events are
appended as those services would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from contracts.cases import CaseReplied
from contracts.envelope import Envelope
from contracts.topics import NOTIFICATIONS, public_cases_topic
from eventkit.relay import Relay
from eventkit.store import EventStore
from minqing.sink import Sink
from services.notification.app import create_app
from services.notification.bootstrap import Notification
from services.notification.settings import NotificationSettings
from tests.helpers import read_topic
from tests.notification.notification_support import (
    LIAISON,
    PHONE,
    Clock,
    assigned,
    opened,
    resident_opinion,
)


@pytest.fixture
async def running(
    demo: Notification,
    notification_settings: NotificationSettings,
    pool: asyncpg.Pool,
    store: EventStore,
    clock: Clock,
) -> AsyncIterator[FastAPI]:
    """The relay, and the app with everything running in the background."""
    app = create_app(notification_settings, pool=pool, clock=clock)
    stop = asyncio.Event()
    relay = asyncio.create_task(Relay(store, notification_settings).run(stop))
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay, 15)


async def test_case_events_on_kafka_are_delivered_and_the_outcomes_published(
    running: FastAPI, demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    opinion = await resident_opinion(demo.vault, demo.pool)
    case = opened(opinion.opinion_id)
    reply = CaseReplied(
        district_id="demo",
        occurred_at=clock(),
        actor=LIAISON,
        case_id=case.case_id,
        message="已安排维修",
    )
    for event in (opinion, case, assigned(case.case_id, "r017"), reply):
        await store.append(event.stream_id, [Envelope.wrap(event)])

    received = await sink.wait_for(
        lambda messages: {m.kind for m in messages} >= {"mail", "sms"}, timeout=45
    )
    [mail] = [m for m in received if m.kind == "mail"]
    [sms] = [m for m in received if m.kind == "sms"]
    assert mail.path == "r017@demo.minqing.local"
    assert json.loads(sms.body)["to"] == PHONE

    settings = demo.settings
    outcomes = await read_topic(
        settings.kafka_bootstrap,
        settings.topic(NOTIFICATIONS),
        until=lambda records: len(records) >= 2,
        timeout=30,
    )
    types = sorted(dict(r.headers)["ce_type"].decode() for r in outcomes)
    assert types == ["cn.minqing.notification.NotificationSent.v1"] * 2
    assert {json.loads(r.value or b"{}")["case_id"] for r in outcomes} == {case.case_id}

    public = await read_topic(
        settings.kafka_bootstrap,
        settings.topic(public_cases_topic("demo")),
        until=lambda records: len(records) >= 3,
        timeout=30,
    )
    assert all(b"\xe5\xb7\xb2\xe5\xae\x89\xe6\x8e\x92" not in (r.value or b"") for r in public)

    transport = httpx.ASGITransport(app=running)
    async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
        assert (await client.get("/readyz")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert 'minqing_consumer_lag_records{consumer="notification"' in metrics
    assert 'minqing_notification_deliveries_total{channel="email",status="sent"}' in metrics
