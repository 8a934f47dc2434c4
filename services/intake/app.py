"""Intake's HTTP app: its routes on the shared edge, the service from :mod:`bootstrap`
in the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from eventkit.asyncapi import asyncapi_document
from eventkit.clock import Clock, utc_now
from eventkit.http import create_app as create_service_app
from services.intake import api, guard_routes, open311, pages
from services.intake.bootstrap import bootstrap
from services.intake.deps import MAX_BODY_BYTES
from services.intake.settings import IntakeSettings

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    settings: IntakeSettings | None = None,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    background: bool = True,
) -> FastAPI:
    """The intake app; ``pool``, ``clock`` and ``background`` go to :func:`bootstrap`
    (``background=False``: no Kafka, tests apply the events themselves)."""
    settings = settings or IntakeSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(settings, pool=pool, clock=clock, background=background) as intake:
            app.state.intake = intake
            app.state.asyncapi = asyncapi_document("intake", settings, [intake.consumer])
            app.state.readiness.update(intake.runtime.ready_checks())
            yield

    app = create_service_app(
        service="intake",
        title="民情 intake · 受理服务",
        lifespan=lifespan,
        max_body_bytes=MAX_BODY_BYTES,
        settings=settings,
    )
    app.include_router(api.router)
    app.include_router(guard_routes.router)
    app.include_router(open311.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
