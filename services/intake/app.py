"""The composition root: build intake's parts in the app's lifespan, never at import."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from eventkit.asyncapi import asyncapi_document
from eventkit.consumer import Consumer
from eventkit.http import create_app as create_service_app
from eventkit.privacy import PersonalDataVault
from eventkit.service import Runtime, service_runtime
from eventkit.store import EventStore
from services.intake import api, open311, pages
from services.intake.consumers import intake_consumer
from services.intake.deps import MAX_BODY_BYTES, Intake
from services.intake.directory import Directory
from services.intake.ratelimit import RateLimiter
from services.intake.settings import IntakeSettings
from services.intake.submission import Submissions
from services.intake.taxonomy import TaxonomySource
from services.intake.tracking import TrackingService

STATIC_DIR = Path(__file__).parent / "static"


def build_intake(settings: IntakeSettings, pool: asyncpg.Pool, store: EventStore) -> Intake:
    """Every part of intake, on an open pool."""
    directory = Directory(pool, cache_seconds=settings.directory_cache_seconds)
    taxonomy = TaxonomySource(
        settings.districts_dir, pool, cache_seconds=settings.directory_cache_seconds
    )
    vault = PersonalDataVault(pool)
    return Intake(
        settings=settings,
        pool=pool,
        store=store,
        vault=vault,
        directory=directory,
        taxonomy=taxonomy,
        submissions=Submissions(
            pool=pool,
            store=store,
            vault=vault,
            directory=directory,
            public_base_url=settings.public_base_url,
        ),
        tracking=TrackingService(pool=pool, store=store, directory=directory, taxonomy=taxonomy),
        submit_limiter=RateLimiter(settings.rate_submit_per_minute, settings.rate_submit_burst),
        read_limiter=RateLimiter(settings.rate_read_per_minute, settings.rate_read_burst),
    )


def create_app(settings: IntakeSettings | None = None, *, consumers: bool = True) -> FastAPI:
    """The intake app. ``consumers=False`` leaves Kafka alone (tests apply events
    themselves)."""
    settings = settings or IntakeSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def start_consumers(runtime: Runtime) -> list[Consumer]:
            return [intake_consumer(settings, runtime.pool)]

        async with service_runtime(
            settings, consumers=start_consumers if consumers else None
        ) as runtime:
            app.state.intake = build_intake(settings, runtime.pool, runtime.store)
            app.state.asyncapi = asyncapi_document(
                "intake", settings, runtime.consumers or start_consumers(runtime)
            )

            async def database_ready() -> bool:
                try:
                    return bool(await runtime.pool.fetchval("SELECT true"))
                except (OSError, asyncpg.PostgresError):
                    return False

            async def consumers_ready() -> bool:
                return runtime.consumers_ready.is_set()

            app.state.ready_checks.extend([database_ready, consumers_ready])
            yield

    app = create_service_app(
        service="intake",
        title="民情 intake · 受理服务",
        lifespan=lifespan,
        max_body_bytes=MAX_BODY_BYTES,
    )
    app.include_router(api.router)
    app.include_router(open311.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
