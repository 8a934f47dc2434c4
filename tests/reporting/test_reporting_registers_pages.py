"""The registers (六簿一表) and the station's liaison figures in a real browser (Debian's
Chromium, driven by Playwright), served by uvicorn on the demo district's history: every
register renders with the API's rows, prints on A4 landscape, downloads as CSV, and the
console stays empty. Screenshots are saved under the run's temporary directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, async_playwright

from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.local import free_port
from services.reporting.app import create_app
from services.reporting.registers import REGISTERS
from tests.reporting.conftest import Loaded, fixed_clock
from tests.reporting.liaison_history import NOW, loaded_liaison
from tests.reporting.test_reporting_pages import ARGS, CHROMIUM

pytestmark = pytest.mark.asyncio(loop_scope="module")

AUTUMN = "from=2026-08-01&to=2026-11-30"


@dataclass
class Site:
    base: str
    loaded: Loaded
    browser: Browser
    shots: Path
    console: list[str] = field(default_factory=list)

    def token(self, role: Role = Role.LIAISON, subject: str = "lo_dh_01") -> str:
        return issue_token(self.loaded.settings, role=role, district_id="demo", subject=subject)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    async with loaded_liaison(pg_admin_url) as loaded:
        port = free_port()
        app = create_app(loaded.settings, pool=loaded.pool, clock=fixed_clock(NOW))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, not an event
            await asyncio.sleep(0.02)
        shots = tmp_path_factory.mktemp("register-screenshots")
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    yield Site(f"http://127.0.0.1:{port}", loaded, browser, shots)
                finally:
                    await browser.close()
        finally:
            server.should_exit = True
            await serving


async def test_every_register_of_the_demo_home_renders_with_the_api_s_rows(site: Site) -> None:
    context = await site.browser.new_context(
        viewport={"width": 1400, "height": 900}, locale="zh-CN"
    )
    page = await context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            site.console.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: site.console.append(f"pageerror: {error}"))
    await page.goto(f"{site.base}/dashboard/login?token={site.token()}")
    base = f"{site.base}/dashboard/demo/stations/dh_home"
    headers = {"Authorization": f"Bearer {site.token()}"}
    try:
        await page.goto(f"{base}?{AUTUMN}")
        assert await page.get_by_test_id("activities-held").inner_text() != "0"
        await page.screenshot(path=str(site.shots / "station.png"), full_page=True)

        await page.get_by_test_id("registers-link").click()
        await page.wait_for_load_state()
        assert await page.title() == "东湖街道人大代表之家 · 六簿一表"
        await page.screenshot(path=str(site.shots / "registers.png"), full_page=True)

        async with httpx.AsyncClient(base_url=site.base, headers=headers) as api:
            answers = {}
            for name in REGISTERS:
                found = await api.get(
                    f"/api/v1/districts/demo/stations/dh_home/registers/{name}",
                    params={"from": "2026-08-01", "to": "2026-11-30"},
                )
                assert found.status_code == 200, found.text
                answers[name] = found.json()["rows"]
                shown_count = await page.get_by_test_id(f"rows-{name}").inner_text()
                assert shown_count == str(len(answers[name]))
            for name, spec in REGISTERS.items():
                rows = answers[name]
                await page.goto(f"{base}/registers/{name}?{AUTUMN}")
                assert await page.title() == f"东湖街道人大代表之家 · {spec.zh}"
                table = page.get_by_test_id("register-table")
                shown = await table.locator("tbody tr").count()
                assert shown == max(1, len(rows))
                if rows:
                    first = await table.locator("tbody tr").first.locator("td").all_inner_texts()
                    assert first[1:] == ["" if c is None else str(c) for c in rows[0]]
                await page.screenshot(path=str(site.shots / f"register-{name}.png"), full_page=True)

            # Printed, the page keeps the ledger and drops the dashboard around it.
            await page.goto(f"{base}/registers/receptions?{AUTUMN}")
            await page.emulate_media(media="print")
            assert not await page.locator("header.bar").is_visible()
            assert await page.get_by_test_id("register").is_visible()
            await page.screenshot(path=str(site.shots / "register-receptions-print.png"))
            pdf = await page.pdf(format="A4", landscape=True)
            assert pdf.startswith(b"%PDF")
            await page.emulate_media(media="screen")

            download = await api.get(
                f"/dashboard/demo/stations/dh_home/registers/theme.csv?{AUTUMN}"
            )
            assert download.status_code == 303  # the CSV link needs the signed-in cookie
        cookies = await context.cookies()
        jar = {c["name"]: c["value"] for c in cookies}
        async with httpx.AsyncClient(base_url=site.base, cookies=jar) as browser_like:
            csv_file = await browser_like.get(
                f"/dashboard/demo/stations/dh_home/registers/theme.csv?{AUTUMN}"
            )
        assert csv_file.status_code == 200
        assert csv_file.headers["content-type"].startswith("text/csv")
        assert csv_file.text.startswith("\ufeff日期 / date")
    finally:
        await context.close()
    assert site.console == []


async def test_the_registers_read_in_english_and_refuse_another_station_s_officer(
    site: Site,
) -> None:
    context = await site.browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(f"{site.base}/dashboard/login?token={site.token(subject='lo_dh_02')}")
        await page.goto(f"{site.base}/dashboard/demo/stations/dh_home/registers?{AUTUMN}")
        assert "不在您的查看范围内" in await page.content()
        await page.goto(
            f"{site.base}/dashboard/demo/stations/dh_donghu/registers/receptions?{AUTUMN}&lang=en"
        )
        assert await page.locator("html").get_attribute("lang") == "en"
        assert "Register of receptions of residents" in await page.content()
        await page.screenshot(path=str(site.shots / "register-en.png"), full_page=True)
    finally:
        await context.close()
