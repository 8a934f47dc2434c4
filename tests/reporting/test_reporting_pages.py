"""The dashboards in a real browser (Debian's Chromium, driven by Playwright), served by
uvicorn on the March history: the numbers on the pages are the API's, the charts are
drawn, nothing is written to the console, and each page is saved as a screenshot under
the run's temporary directory.

Chromium must be there (``make test`` installs it): a missing browser fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.local import free_port
from services.reporting.app import create_app
from tests.reporting.conftest import Loaded, fixed_clock

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MARCH = "from=2026-03-01&to=2026-03-31"


@dataclass
class Site:
    base: str
    march: Loaded
    browser: Browser
    shots: Path
    console: list[str] = field(default_factory=list)

    def token(self, role: Role = Role.DISTRICT_ADMIN, subject: str = "admin_demo") -> str:
        return issue_token(self.march.settings, role=role, district_id="demo", subject=subject)

    async def api(
        self, path: str, role: Role = Role.DISTRICT_ADMIN, subject: str = "admin_demo"
    ) -> Any:
        async with httpx.AsyncClient(base_url=self.base) as client:
            response = await client.get(
                f"/api/v1/districts/demo/{path}",
                params={"from": "2026-03-01", "to": "2026-03-31"},
                headers={"Authorization": f"Bearer {self.token(role, subject)}"},
            )
        assert response.status_code == 200, response.text
        return response.json()

    @contextlib.asynccontextmanager
    async def page(
        self, role: Role = Role.DISTRICT_ADMIN, subject: str = "admin_demo"
    ) -> AsyncIterator[Page]:
        context = await self.browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="zh-CN"
        )
        page = await context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.console.append(f"{message.type}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        await page.goto(f"{self.base}/dashboard/login?token={self.token(role, subject)}")
        try:
            yield page
        finally:
            await context.close()

    async def shot(self, page: Page, name: str) -> None:
        await page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(march: Loaded, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    port = free_port()
    app = create_app(march.settings, pool=march.pool, clock=fixed_clock())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, not an event
        await asyncio.sleep(0.02)
    shots = tmp_path_factory.mktemp("screenshots")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield Site(f"http://127.0.0.1:{port}", march, browser, shots)
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving


async def test_the_overview_shows_the_api_s_rates_and_draws_their_trend(site: Site) -> None:
    api = await site.api("overview")
    async with site.page() as page:
        await page.goto(f"{site.base}/dashboard/demo?{MARCH}")
        assert await page.title() == "示范区 · 概况"
        for key in ("response", "resolution", "satisfaction"):
            rate = api["figures"]["rates"][key]
            assert await page.get_by_test_id(f"rate-{key}-value").inner_text() == rate["percent"]
            ratio = f"{rate['numerator']} / {rate['denominator']}"
            assert await page.get_by_test_id(f"rate-{key}-ratio").inner_text() == ratio
        received = await page.get_by_test_id("count-received").inner_text()
        assert int(received) == api["figures"]["counts"]["received"]
        # Each rate of each week with cases is a point carrying the API's value.
        points = page.locator("[data-testid=trend] svg circle")
        drawn = [
            float(v) for v in await points.evaluate_all("nodes => nodes.map(n => n.dataset.value)")
        ]
        expected = [
            bucket["figures"]["rates"][k]["value"]
            for k in ("response", "resolution", "satisfaction")
            for bucket in api["trend"]
            if bucket["figures"]["rates"][k]["value"] is not None
        ]
        assert drawn == pytest.approx(expected, abs=1e-4)
        assert len(drawn) >= 10
        rows = page.get_by_test_id("stations").locator("tbody tr")
        assert await rows.count() == 3
        await site.shot(page, "overview-zh")
        await page.get_by_role("link", name="English").click()
        await page.wait_for_load_state()
        assert await page.locator("html").get_attribute("lang") == "en"
        assert "Response rate" in await page.get_by_test_id("rate-response").inner_text()
        assert await page.get_by_test_id("rate-response-value").inner_text() == "71.4%"
        await site.shot(page, "overview-en")
    assert site.console == []


async def test_a_station_page_shows_its_assessment_and_its_days(site: Site) -> None:
    api = await site.api("stations/dh_home")
    async with site.page() as page:
        await page.goto(f"{site.base}/dashboard/demo/stations/dh_home?{MARCH}")
        assert await page.get_by_test_id("official-stars").inner_text() == "★★★★★"
        assessment = page.get_by_test_id("assessment")
        for point in api["assessments"][0]["details"]:
            assert await assessment.get_by_text(point["reason"]["zh"]).count() == 1
        assert await page.get_by_test_id("indicated-2026-03").inner_text() == "样本不足，暂不评定"
        bars = page.locator("[data-testid=days] svg rect[data-series]")
        drawn = sum(
            int(v)
            for v in await bars.evaluate_all(
                "nodes => nodes.filter(n => n.dataset.series === '分派').map(n => n.dataset.value)"
            )
        )
        assert drawn == sum(d["assigned"] for d in api["days"])
        await site.shot(page, "station")
    assert site.console == []


async def test_a_representative_finds_their_archive_and_only_theirs(site: Site) -> None:
    api = await site.api("representatives/r1/archive", Role.REPRESENTATIVE, "r1")
    async with site.page(Role.REPRESENTATIVE, "r1") as page:
        await page.goto(f"{site.base}/dashboard?{MARCH}")
        await page.goto(f"{site.base}/dashboard/demo/representatives/r1?{MARCH}")
        rows = page.get_by_test_id("entries").locator("tbody tr")
        assert await rows.count() == api["total"]
        assert (
            int(await page.get_by_test_id("activity-resolved").inner_text())
            == (api["representative"]["activity"]["resolved"])
        )
        assert await page.get_by_text("已修复").count() == 4  # the staff's results
        await site.shot(page, "archive")
        assert site.console == []
        response = await page.goto(f"{site.base}/dashboard/demo/representatives/r2?{MARCH}")
        assert response is not None
        assert response.status == 403
        assert await page.locator("h1").inner_text() == "不在您的查看范围内"
        response = await page.goto(f"{site.base}/dashboard/demo?{MARCH}")
        assert response is not None
        assert response.status == 403
    # The browser reports the two refusals asked for, and nothing else.
    assert [m for m in site.console if "status of 403" not in m] == []
    site.console.clear()


async def test_hot_spots_and_trends_show_the_api_s_counts(site: Site) -> None:
    hot = await site.api("hotspots")
    async with site.page() as page:
        await page.goto(f"{site.base}/dashboard/demo/hotspots?{MARCH}")
        counts = await page.get_by_test_id("hotspot-count").all_inner_texts()
        assert [int(c) for c in counts] == [h["count"] for h in hot["hotspots"]]
        await site.shot(page, "hotspots")
        await page.goto(f"{site.base}/dashboard/demo/trends?from=2026-02-01&to=2026-04-30")
        lines = page.locator("[data-testid=trend] svg polyline")
        assert await lines.count() >= 3
        await site.shot(page, "trends")
    assert site.console == []


async def test_staff_sign_in_with_their_token_and_a_wrong_one_is_told_so(site: Site) -> None:
    context = await site.browser.new_context()
    page = await context.new_page()
    try:
        response = await page.goto(f"{site.base}/dashboard/demo")
        assert response is not None
        assert page.url.endswith("/dashboard/login")
        await page.fill("#token", "not-a-token")
        await page.click("button[type=submit]")
        assert await page.locator(".error").inner_text() == "令牌无效 / the token is not valid"
        await page.fill("#token", site.token(Role.STREET_SUPERVISOR, "ss_dh"))
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{site.base}/dashboard/demo")
        assert await page.get_by_test_id("scope-note").count() == 1
        await site.shot(page, "supervisor")
    finally:
        await context.close()
