"""The plain ASGI middleware at the edge of every service.

A correlation id per request (``X-Request-ID`` in and out, bound in the logs and kept on
``request.state.correlation_id``), the body-size limit on ``Content-Length``, the
security headers of every response (:mod:`eventkit.http.headers`), and the request
metrics. Written against ASGI directly rather than Starlette's
``BaseHTTPMiddleware``, which relays every request and response through extra tasks and
costs about a third of a small request's CPU.
"""

from __future__ import annotations

import time
import uuid

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventkit.http.headers import edge_headers
from eventkit.http.problems import Problem, problem_response

REQUESTS = Counter(
    "minqing_http_requests_total", "HTTP requests answered", ["service", "route", "status"]
)
LATENCY = Histogram("minqing_http_request_seconds", "HTTP request latency", ["service", "route"])


def too_large(limit: int) -> Problem:
    """The refusal of a body over ``limit`` bytes."""
    kb = limit // 1024
    return Problem(
        413,
        "too-large",
        "请求内容过大",
        "Request body too large",
        f"请求体不能超过 {kb} KB",
        f"The body may not exceed {kb} KB",
    )


class Edge:
    """See the module's note."""

    def __init__(
        self, app: ASGIApp, *, service: str, max_body_bytes: int, https: bool = False
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self._headers = edge_headers(https=https)
        self._https_headers = edge_headers(https=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        correlation = (headers.get(b"x-request-id") or b"").decode("latin-1")[:128]
        correlation = correlation or uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = correlation
        status = 500
        marker = correlation.encode("latin-1")
        extra = self._https_headers if scope.get("scheme") == "https" else self._headers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                given = list(message.get("headers", ()))
                present = {name.lower() for name, _ in given}
                message["headers"] = [
                    *given,
                    (b"x-request-id", marker),
                    *((k, v) for k, v in extra if k not in present),
                ]
            await send(message)

        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            response = problem_response(too_large(self.max_body_bytes), scope.get("path"))
            await response(scope, receive, send_with_id)
            return

        started = time.perf_counter()
        structlog.contextvars.bind_contextvars(correlation_id=correlation)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id")
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(self.service, route, str(status)).inc()
            LATENCY.labels(self.service, route).observe(time.perf_counter() - started)
