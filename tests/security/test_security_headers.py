"""Every service answers with the security headers: a Content-Security-Policy without
inline script, nosniff, no framing, no referrer (capability URLs above all), HSTS when
browsers come over https; pages, API answers, problems and static files alike. The
residents' pages work under that policy in a real browser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import async_playwright

from eventkit.http.headers import CONTENT_SECURITY_POLICY, STRICT_TRANSPORT_SECURITY
from eventkit.local import free_port
from eventkit.settings import Settings
from minqing.sink import Sink
from tests.security.service_apps import admin_headers, build, prepare

CHROMIUM = "/usr/bin/chromium"

# Per service: a JSON answer, a page, a static file (None: the service has none), and a
# capability URL (a link that is itself the permission to see what it shows).
PATHS = {
    "intake": ("/api/v1/stations?district=demo", "/q/dh_home?district=demo", "/static/qr.js"),
    "routing": ("/api/v1/queue", "/workbench/login", "/workbench/static/workbench.js"),
    "notification": ("/api/v1/subscriptions", None, None),
    "reporting": ("/api/v1/districts/demo/overview", "/dashboard/login", "/static/reporting.css"),
}
CAPABILITIES = {
    "intake": "/t/MQ-AAAA-AAAA",
    "routing": "/workbench/welcome?code=not-a-real-code",
    "reporting": "/dashboard/login?token=not-a-real-token",
}


@pytest.fixture
async def prepared(settings: Settings, pool: asyncpg.Pool) -> Settings:
    await prepare(settings, pool)
    return settings


async def client_of(app: FastAPI, base: str = "http://svc") -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as client,
    ):
        yield client


def assert_secure(response: httpx.Response, *, hsts: bool) -> None:
    where = f"{response.request.method} {response.request.url} → {response.status_code}"
    csp = response.headers.get("content-security-policy", "")
    assert csp, where
    assert "unsafe-inline" not in csp, where
    assert "unsafe-eval" not in csp, where
    assert "frame-ancestors 'none'" in csp, where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("referrer-policy") == "no-referrer", where
    assert (response.headers.get("strict-transport-security") is not None) is hsts, where


@pytest.mark.parametrize("service", sorted(PATHS))
async def test_every_answer_of_a_service_carries_the_security_headers(
    service: str, prepared: Settings
) -> None:
    service_settings, app = build(service, prepared)
    api, page, static = PATHS[service]
    async for client in client_of(app):
        headers = admin_headers(service_settings)
        answers = [
            await client.get(api, headers=headers),
            await client.get(api, headers={"Authorization": "Bearer forged"}),
            await client.get("/no/such/path"),
            await client.get("/openapi.json"),
            await client.get("/healthz"),
        ]
        if page is not None:
            answers.append(await client.get(page))
        if static is not None:
            answers.append(await client.get(static))
        if service in CAPABILITIES:
            answers.append(await client.get(CAPABILITIES[service]))
        statuses = [a.status_code for a in answers]
        assert statuses[0] < 500, answers[0].text
        assert statuses[2] == 404
        for answer in answers:
            assert_secure(answer, hsts=False)
            assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("service", sorted(PATHS))
async def test_strict_transport_security_is_sent_when_https_is_the_rule(
    service: str, prepared: Settings
) -> None:
    https = prepared.model_copy(update={"public_base_url": "https://minqing.example.cn"})
    _, app = build(service, https)
    async for client in client_of(app):
        answer = await client.get("/healthz")
        assert_secure(answer, hsts=True)
        assert answer.headers["strict-transport-security"] == STRICT_TRANSPORT_SECURITY
    # A request that itself came over https gets it whatever the settings say; an explicit
    # "no" wins over an https public address (a deployment that terminates TLS elsewhere).
    _, app = build(service, prepared)
    async for client in client_of(app, "https://svc"):
        assert_secure(await client.get("/healthz"), hsts=True)
    off = https.model_copy(update={"https_only": False})
    _, app = build(service, off)
    async for client in client_of(app):
        assert_secure(await client.get("/healthz"), hsts=False)


async def test_the_api_documentation_page_allows_only_its_own_script_by_hash(
    prepared: Settings,
) -> None:
    _, app = build("routing", prepared)
    async for client in client_of(app):
        docs = await client.get("/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    assert len(inline) == 1
    assert "'sha256-" in csp
    assert "frame-ancestors 'none'" in csp


async def test_the_local_outbox_page_has_no_inline_style_and_the_same_headers() -> None:
    sink = Sink(smtp_port=free_port(), http_port=free_port())
    await sink.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink.http_port}") as client:
            page = await client.get("/")
            css = await client.get("/outbox.css")
    finally:
        await sink.stop()
    assert "<style" not in page.text
    assert 'href="/outbox.css"' in page.text
    assert css.headers["content-type"].startswith("text/css")
    for answer in (page, css):
        assert_secure(answer, hsts=False)


async def test_the_residents_pages_work_under_the_policy_in_a_browser(prepared: Settings) -> None:
    """The QR form submits through its script and the tracking page shows the opinion,
    with nothing written to the console (a policy violation would be)."""
    _service_settings, app = build("intake", prepared)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, not an event
        await asyncio.sleep(0.02)
    console: list[str] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(locale="zh-CN")
                # Intake has no favicon: its 404 is not what this test looks for.
                await page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
                page.on(
                    "console",
                    lambda m: (
                        console.append(f"{m.type}: {m.text}")
                        if m.type in ("error", "warning")
                        else None
                    ),
                )
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                await page.goto(f"http://127.0.0.1:{port}/q/dh_home?district=demo")
                await page.fill("#text", "小区东门的路灯坏了一个星期，晚上很黑")
                await page.check("#consent")
                await page.click("#send")
                link = page.locator("#result-link")
                await link.wait_for(state="visible", timeout=10_000)
                href = await link.get_attribute("href")
                assert href is not None
                assert "/t/" in href
                await page.goto(
                    href if href.startswith("http") else f"http://127.0.0.1:{port}{href}"
                )
                assert "路灯" in await page.content()
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving
    assert console == []
