"""Fixtures of the notification tests: a local sink (SMTP and HTTP on free ports), a clock
the test moves, the service from its composition root, the demo district and its contacts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from contracts.envelope import Envelope
from eventkit.local import free_port
from eventkit.settings import Settings
from eventkit.store import EventStore
from minqing.sink import Sink
from minqing.system import DEMO_CONTACTS_FILE, DEMO_DISTRICT_FILE
from services.notification import contacts
from services.notification.bootstrap import Notification, bootstrap
from services.notification.contact_book import parse_contact_file
from services.notification.settings import NotificationSettings
from services.routing.directory_plan import plan_changes
from services.routing.district_file import load_district_file
from tests.notification.notification_support import ADMIN, Clock


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """A local SMTP server and HTTP receiver (SMS gateway, robots, webhooks)."""
    receiver = Sink(smtp_port=free_port(), http_port=free_port())
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def notification_settings(settings: Settings, sink: Sink) -> NotificationSettings:
    base = f"http://127.0.0.1:{sink.http_port}"
    return NotificationSettings(
        **settings.model_dump(),
        smtp_port=sink.smtp_port,
        sms_gateway_url=f"{base}/sms",
        delivery_timeout=2.0,
        delivery_backoff=0.01,
        delivery_max_attempts=3,
        sender_poll_interval=0.02,
        # Fewer than the tests' deliveries to one subscriber, so that the share binds.
        sender_per_recipient=4,
    )


@pytest.fixture
async def service(
    notification_settings: NotificationSettings, pool: asyncpg.Pool, clock: Clock
) -> AsyncIterator[Notification]:
    """The service from its composition root, nothing running in the background."""
    async with bootstrap(
        notification_settings, pool=pool, clock=clock, background=False
    ) as notification:
        yield notification


@pytest.fixture
async def demo(service: Notification, store: EventStore, sink: Sink) -> Notification:
    """The service knowing the demo district (its directory events applied) and its
    contact book, with the robots' and webhooks' addresses moved to this test's sink."""
    district = load_district_file(DEMO_DISTRICT_FILE)
    now = datetime.fromisoformat("2026-09-01T09:00:00+08:00")
    plan = plan_changes(None, district, district_id="demo", actor=ADMIN, now=now, today=now.date())
    for event in plan.events:
        await store.append(event.stream_id, [Envelope.wrap(event)])
    for record in await store.read_all(limit=10_000):
        await service.consumer.apply(record.envelope())
    text = DEMO_CONTACTS_FILE.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8025", f"http://127.0.0.1:{sink.http_port}"
    )
    await contacts.import_book(service.pool, parse_contact_file(text), "test", now)
    return service
