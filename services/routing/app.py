"""The composition root: builds the routing service's app with everything it runs.

In the app's lifespan (never at import): jieba's dictionary is loaded, the district
files are imported (before any opinion is consumed, so none arrives for a district not
yet known), the pool, the store and the Kafka consumer start, and the overdue scanner
runs in the background. Tests pass their own clock or segmenter, or turn parts off
through the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from contracts.base import Actor, ActorRole
from eventkit.asyncapi import asyncapi_document
from eventkit.consumer import Consumer
from eventkit.db import create_pool
from eventkit.http import create_app
from eventkit.logging import get_logger
from eventkit.service import Runtime, service_runtime
from eventkit.store import EventStore
from services.routing.classification import JiebaSegmenter, Segmenter
from services.routing.consumers import build_consumer
from services.routing.district_file import load_district_file
from services.routing.http import build_router, install_error_handlers
from services.routing.scanner import run_scanner
from services.routing.service import RoutingService, utc_now
from services.routing.settings import RoutingSettings

log = get_logger(__name__)

STARTUP = Actor(id="routing-startup", role=ActorRole.SYSTEM)


async def import_district_files(
    service: RoutingService, files: list[Path], actor: Actor = STARTUP
) -> None:
    """Import each district file (only its differences with the directory are emitted)."""
    for path in files:
        district = load_district_file(path)
        plan = await service.change_directory(district.district.code, district, actor)
        log.info(
            "district file imported",
            file=str(path),
            district=district.district.code,
            events=len(plan.events),
        )


def create_routing_app(
    settings: RoutingSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    segmenter: Segmenter | None = None,
) -> FastAPI:
    """The routing service's FastAPI app."""
    words = segmenter or JiebaSegmenter()

    def make_service(store: EventStore) -> RoutingService:
        return RoutingService(store.pool, store, segmenter=words, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if isinstance(words, JiebaSegmenter):
            await asyncio.to_thread(words.load)
        files = settings.district_files()
        if files:
            assert settings.database_url, "MINQING_DATABASE_URL is not set"
            pool = await create_pool(settings.database_url, role=settings.database_role, max_size=2)
            try:
                await import_district_files(make_service(EventStore(pool)), files)
            finally:
                await pool.close()
        built: list[RoutingService] = []

        def consumers(runtime: Runtime) -> list[Consumer]:
            service = make_service(runtime.store)
            built.append(service)
            return [build_consumer(settings, runtime.pool, service)]

        async with service_runtime(
            settings, consumers=consumers if settings.routing_consume else None
        ) as runtime:
            service = built[0] if built else make_service(runtime.store)
            app.state.service = service
            app.state.runtime = runtime
            app.state.asyncapi = asyncapi_document(
                "routing",
                settings,
                runtime.consumers or [build_consumer(settings, runtime.pool, service)],
            )

            async def database_ready() -> bool:
                try:
                    return bool(await runtime.pool.fetchval("SELECT true"))
                except Exception:
                    return False

            async def consumers_ready() -> bool:
                return runtime.consumers_ready.is_set()

            async def dictionary_ready() -> bool:
                return not isinstance(words, JiebaSegmenter) or words.loaded

            app.state.ready_checks += [database_ready, consumers_ready, dictionary_ready]
            stop = asyncio.Event()
            scanner = None
            if settings.routing_scan_interval > 0:
                scanner = asyncio.create_task(
                    run_scanner(
                        service,
                        settings.routing_scan_interval,
                        stop,
                        batch=settings.routing_scan_batch,
                    )
                )
            try:
                yield
            finally:
                stop.set()
                if scanner is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(scanner, 10)

    app = create_app(
        service="routing",
        title="民情 · 分办服务 Minqing routing",
        lifespan=lifespan,
        max_body_bytes=1024 * 1024,
    )
    install_error_handlers(app)
    app.include_router(build_router(settings))
    return app
