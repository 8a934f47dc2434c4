"""Intake on the real database: its settings, the service from its composition root
(without Kafka: the tests apply events themselves), a known directory, its app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

from eventkit.consumer import Consumer
from eventkit.identity import Role
from eventkit.settings import Settings
from eventkit.store import EventStore
from services.intake.app import create_app
from services.intake.bootstrap import Intake, bootstrap
from services.intake.settings import IntakeSettings
from tests.intake.intake_support import (
    API_KEY,
    DISTRICT,
    STATION,
    Known,
    directory_events,
    publish,
)
from tests.staff_support import staff_events

MakeClient = Callable[[IntakeSettings], AsyncIterator[httpx.AsyncClient]]


@pytest.fixture
def intake_settings(settings: Settings) -> IntakeSettings:
    """The test's settings, with an Open311 key and generous limits."""
    return IntakeSettings(
        **{
            **settings.model_dump(),
            "open311_api_keys": {DISTRICT: [API_KEY]},
            "public_base_url": "https://minqing.example.cn",
            "rate_submit_per_minute": 10_000,
            "rate_submit_burst": 10_000,
            "rate_read_per_minute": 10_000,
            "rate_read_burst": 10_000,
        }
    )


@pytest.fixture
async def intake(intake_settings: IntakeSettings, pool: asyncpg.Pool) -> AsyncIterator[Intake]:
    """Intake from its composition root, on the test's pool, without Kafka."""
    async with bootstrap(intake_settings, pool=pool, background=False) as service:
        yield service


@pytest.fixture
def consumer(intake: Intake) -> Consumer:
    """Intake's consumer, applied by hand (no Kafka)."""
    return intake.consumer


@pytest.fixture
async def directory(store: EventStore, consumer: Consumer) -> None:
    """The demo district, its stations, a representative and its taxonomy, known to
    intake."""
    await publish(store, consumer, directory_events())


@pytest.fixture
def known(store: EventStore, consumer: Consumer) -> Known:
    """Make a person known, active staff of a role (``await known(role, person,
    district)``), through the events routing publishes (tests.staff_support): an account
    role replaces the person's account's role; a liaison officer of another district gets
    a station of their own there."""

    async def make(role: Role, person: str = "staff_0012", district: str = DISTRICT) -> None:
        events = staff_events(district, [(person, role)], station=STATION, desk=f"desk_{person}")
        await publish(store, consumer, events)

    return make


@pytest.fixture
def make_client(pool: asyncpg.Pool) -> MakeClient:
    """A client of an intake app with the given settings (without Kafka) on the test's
    pool: ``async for c in make_client(settings)``."""

    async def client_of(settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings, pool=pool, background=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://intake.test"
            ) as client,
        ):
            yield client

    return client_of


@pytest.fixture
async def client(
    intake_settings: IntakeSettings, directory: None, make_client: MakeClient
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of an intake app (without its Kafka consumers) on the test's DB."""
    async for c in make_client(intake_settings):
        yield c
