"""Intake on the real database: its settings, its consumer, a known directory, its app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from eventkit.consumer import Consumer
from eventkit.settings import Settings
from eventkit.store import EventStore
from services.intake.app import create_app
from services.intake.consumers import intake_consumer
from services.intake.settings import IntakeSettings
from tests.intake.intake_support import API_KEY, DISTRICT, TAXONOMY_YAML, directory_events, publish


@pytest.fixture
def intake_settings(settings: Settings, tmp_path: Path) -> IntakeSettings:
    """The test's settings, with a demo taxonomy, an Open311 key and generous limits."""
    districts = tmp_path / "districts"
    districts.mkdir()
    (districts / f"{DISTRICT}.yaml").write_text(TAXONOMY_YAML, encoding="utf-8")
    return IntakeSettings(
        **{
            **settings.model_dump(),
            "districts_dir": districts,
            "open311_api_keys": {DISTRICT: [API_KEY]},
            "public_base_url": "https://minqing.example.cn",
            "rate_submit_per_minute": 10_000,
            "rate_submit_burst": 10_000,
            "rate_read_per_minute": 10_000,
            "rate_read_burst": 10_000,
        }
    )


@pytest.fixture
def consumer(intake_settings: IntakeSettings, pool: asyncpg.Pool) -> Consumer:
    """Intake's consumer, applied by hand (no Kafka)."""
    return intake_consumer(intake_settings, pool)


@pytest.fixture
async def directory(store: EventStore, consumer: Consumer) -> None:
    """The demo district, its stations and a representative, known to intake."""
    await publish(store, consumer, directory_events())


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://intake.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def client(
    intake_settings: IntakeSettings, directory: None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of an intake app (without its Kafka consumers) on the test's DB."""
    async for c in _client(create_app(intake_settings, consumers=False)):
        yield c


@pytest.fixture
def make_client() -> object:
    """Build a client for an app with other settings: ``async for c in make_client(app)``."""
    return _client
