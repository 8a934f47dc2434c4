"""Fixtures of the routing tests: the demo district, a settable clock, opinions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from contracts import Actor, ActorRole, Location, OpinionSubmitted
from contracts.envelope import Envelope
from eventkit.settings import Settings
from eventkit.store import EventStore
from services.routing.bootstrap import Routing, bootstrap
from services.routing.classification import JiebaSegmenter
from services.routing.consumers import RoutingConsumer
from services.routing.district_file import DistrictFile, load_district_file
from services.routing.settings import RoutingSettings
from tests.routing.routing_support import ADMIN, DEMO_FILE, Clock, Submit, append_event


@pytest.fixture(scope="session")
def segmenter() -> JiebaSegmenter:
    """jieba, loaded once for the whole run."""
    words = JiebaSegmenter()
    words.load()
    return words


@pytest.fixture(scope="session")
def demo_file() -> DistrictFile:
    return load_district_file(DEMO_FILE)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def routing_settings(settings: Settings) -> RoutingSettings:
    return RoutingSettings(
        **settings.model_dump(),
        routing_district_files=[],
        routing_scan_interval=0,
    )


@pytest.fixture
async def service(
    routing_settings: RoutingSettings, pool: asyncpg.Pool, segmenter: JiebaSegmenter, clock: Clock
) -> AsyncIterator[Routing]:
    """The routing service from its composition root, on the test's pool and clock, with
    nothing running in the background (the tests drive it)."""
    async with bootstrap(
        routing_settings, pool=pool, clock=clock, segmenter=segmenter, background=False
    ) as routing:
        yield routing


@pytest.fixture
async def demo(service: Routing, demo_file: DistrictFile) -> Routing:
    """The service with the demo district imported."""
    await service.directory.change("demo", demo_file, ADMIN)
    return service


@pytest.fixture
def consumer(service: Routing) -> RoutingConsumer:
    return service.consumer


@pytest.fixture
def submit(store: EventStore, clock: Clock) -> Submit:
    """Append an OpinionSubmitted (as intake does) and return its stored envelope."""

    async def make(text: str, district: str = "demo", **location: Any) -> Envelope:
        opinion = OpinionSubmitted(
            district_id=district,
            occurred_at=clock.now,
            actor=Actor(id="subj_" + uuid.uuid4().hex[:8], role=ActorRole.RESIDENT),
            opinion_id="op_" + uuid.uuid4().hex[:12],
            channel=location.pop("channel", "qr"),
            text=text,
            category_hint=location.pop("category_hint", None),
            location=Location(**location),
        )
        return await append_event(store, opinion)

    return make
