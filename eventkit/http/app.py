"""Every service's FastAPI app: problems, ``/healthz``, ``/readyz``, ``/metrics``,
``/asyncapi``, ``/docs``, and the edge middleware (request id, body limit, security
headers, request metrics)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eventkit.http.edge import Edge
from eventkit.http.headers import documentation_policy
from eventkit.http.openapi import problem_openapi
from eventkit.http.problems import Statuses, install_problem_handlers
from eventkit.refusals import Unavailable
from eventkit.settings import Settings

ReadyCheck = Callable[[], Awaitable[bool]]

READY_CHECK_TIMEOUT = 2.0
"""Seconds one readiness check may take before it counts as not ready."""

DOCS_CDN = "https://cdn.jsdelivr.net"
"""Where the API documentation's page (Swagger UI, as FastAPI serves it) loads its files."""


class Readiness:
    """The named checks ``/readyz`` runs; a service adds its own (database, consumers,
    dictionaries…) once its parts are built."""

    def __init__(self) -> None:
        self._checks: dict[str, ReadyCheck] = {}

    def add(self, name: str, check: ReadyCheck) -> None:
        """Run ``check`` on every readiness probe, reported under ``name``."""
        self._checks[name] = check

    def update(self, checks: dict[str, ReadyCheck]) -> None:
        """Add several checks at once."""
        self._checks.update(checks)

    async def report(self) -> dict[str, bool]:
        """Each check's result; one that fails or hangs is not ready."""

        async def run(check: ReadyCheck) -> bool:
            try:
                return bool(await asyncio.wait_for(check(), READY_CHECK_TIMEOUT))
            except Exception:  # noqa: BLE001 - a failing probe is an answer, not an error
                return False

        names = list(self._checks)
        results = await asyncio.gather(*(run(self._checks[n]) for n in names))
        return dict(zip(names, results, strict=True))


def create_app(
    *,
    service: str,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    max_body_bytes: int = 64 * 1024,
    statuses: Statuses | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """A FastAPI app with problems (``statuses``: the service's refusal classes and their
    HTTP status, beside the kinds' defaults), ``/healthz``, ``/readyz`` (the checks in
    ``app.state.readiness``), ``/metrics``, ``/asyncapi`` (``app.state.asyncapi``),
    ``/docs``, the body limit, the security headers (HSTS when ``settings`` say browsers
    come over https) and a correlation id per request."""
    app = FastAPI(
        title=title,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    app.state.readiness = Readiness()
    install_problem_handlers(app, statuses)
    https = settings.serves_https() if settings is not None else False
    app.add_middleware(Edge, service=service, max_body_bytes=max_body_bytes, https=https)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{title} · API", swagger_favicon_url="data:,"
        )
        html = bytes(page.body).decode()
        return HTMLResponse(
            html, headers={"Content-Security-Policy": documentation_policy(html, DOCS_CDN)}
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        readiness: Readiness = app.state.readiness
        checks = await readiness.report()
        ok = bool(checks) and all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/asyncapi", include_in_schema=False)
    async def asyncapi() -> Response:
        document = getattr(app.state, "asyncapi", None)
        if document is None:
            raise Unavailable("服务正在启动", "The service is starting", code="starting")
        return JSONResponse(document)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
