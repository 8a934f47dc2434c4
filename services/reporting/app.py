"""The reporting service's HTTP app: the reports API and the dashboards, on the running
service that :func:`services.reporting.bootstrap.bootstrap` builds in the app's lifespan
(never at import)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from eventkit.asyncapi import asyncapi_document
from eventkit.http import create_app as create_service_app
from eventkit.settings import Settings
from services.reporting.api_routes import reports_router
from services.reporting.bootstrap import bootstrap, reporting_settings
from services.reporting.page_routes import pages_router

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, **overrides: Any) -> FastAPI:
    """The reporting app; ``overrides`` go to :func:`bootstrap` (a pool, a clock…)."""
    own = reporting_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(own, **overrides) as reporting:
            app.state.reporting = reporting
            app.state.asyncapi = asyncapi_document("reporting", own, [reporting.consumer])
            app.state.readiness.update(reporting.ready_checks())
            yield

    app = create_service_app(
        service="reporting",
        title="民情 · 统计报表 Minqing reporting",
        lifespan=lifespan,
        settings=own,
    )
    app.include_router(reports_router(own))
    app.include_router(pages_router(own))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
