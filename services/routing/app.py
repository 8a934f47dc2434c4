"""The routing service's HTTP app: the case work and directory APIs on the running
service that :func:`services.routing.bootstrap.bootstrap` builds in the app's lifespan
(never at import)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from eventkit.asyncapi import asyncapi_document
from eventkit.http import create_app as create_service_app
from eventkit.settings import Settings
from services.routing.bootstrap import bootstrap
from services.routing.case_routes import case_router
from services.routing.directory_routes import MAX_DISTRICT_FILE_BYTES, directory_router
from services.routing.liaison_routes import liaison_router
from services.routing.settings import RoutingSettings
from services.routing.workbench.case_pages import case_pages
from services.routing.workbench.directory_pages import directory_pages
from services.routing.workbench.sign_in_pages import sign_in_pages
from services.routing.workbench.web import STATIC_DIR, Web


def create_app(settings: Settings | None = None, **overrides: Any) -> FastAPI:
    """The routing app; ``overrides`` go to :func:`bootstrap` (a clock, a segmenter…)."""
    routing_settings = (
        settings
        if isinstance(settings, RoutingSettings)
        else RoutingSettings(**(settings.model_dump() if settings else {}))
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(routing_settings, **overrides) as routing:
            app.state.routing = routing
            app.state.asyncapi = asyncapi_document("routing", routing_settings, [routing.consumer])
            app.state.readiness.update(routing.ready_checks())
            yield

    app = create_service_app(
        service="routing",
        title="民情 · 分办服务 Minqing routing",
        lifespan=lifespan,
        max_body_bytes=MAX_DISTRICT_FILE_BYTES,
        settings=routing_settings,
    )
    app.include_router(case_router(routing_settings))
    app.include_router(directory_router(routing_settings))
    app.include_router(liaison_router(routing_settings))
    # The workbench: staff pages with their own sign-in (docs/workbench.md).
    web = Web(routing_settings)
    app.include_router(sign_in_pages(web))
    app.include_router(case_pages(web))
    app.include_router(directory_pages(web))
    app.mount("/workbench/static", StaticFiles(directory=STATIC_DIR), name="workbench-static")
    return app
