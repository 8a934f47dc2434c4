"""The workbench in a real browser (Debian's Chromium, driven by Playwright), served by
uvicorn: each role signs in through the form, a case goes from the queue to closed, a
liaison officer of another station cannot open it, a form without its CSRF token and a
double submit change nothing, nothing breaks the Content-Security-Policy (the console
stays clean), and every page is saved as a screenshot, desktop and phone, under the run's
temporary directory.

Chromium must be there (``make test`` installs it): a missing browser fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from eventkit.identity import Role
from eventkit.local import free_port
from tests.every_district import every_district
from tests.routing.routing_support import ADMIN
from tests.workbench.conftest import ADMIN_ID, AUDITOR_ID, PASSWORD, Bench

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    base: str
    bench: Bench
    browser: Browser
    shots: Path
    console: list[str] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def page(self, viewport: dict[str, int] = DESKTOP) -> AsyncIterator[Page]:
        context = await self.browser.new_context(viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
        page = await context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            # A refused page's own status (401, 403, 409…) is what the test asked for;
            # anything else (a script error, a CSP violation) is a fault.
            expected = message.text.startswith("Failed to load resource: the server responded")
            if message.type in ("error", "warning") and not expected:
                self.console.append(f"{message.type}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        try:
            yield page
        finally:
            await context.close()

    async def sign_in(self, page: Page, person: str, password: str = PASSWORD) -> None:
        await page.goto(f"{self.base}/workbench/")
        assert page.url.startswith(f"{self.base}/workbench/login")
        await page.get_by_label("账号（人员编号）").fill(person)
        await page.get_by_label("密码").fill(password)
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_load_state()

    async def shot(self, page: Page, name: str) -> None:
        await page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(bench: Bench, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    port = free_port()
    # The bench's app, already running its lifespan: uvicorn only serves it.
    server = uvicorn.Server(
        uvicorn.Config(bench.app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, not an event
        await asyncio.sleep(0.02)
    shots = tmp_path_factory.mktemp("workbench-screenshots")
    for person in ("lo_dh_01", "lo_xs_01", "ss_dh_01"):
        await bench.account(person)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield Site(f"http://127.0.0.1:{port}", bench, browser, shots)
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving


async def history_types(site: Site, case_id: str) -> list[str]:
    records = await site.bench.routing.store.read_stream(f"case-{case_id}")
    return [r.event_type for r in records]


async def test_each_role_signs_in_and_sees_its_own_start(site: Site) -> None:
    for person, role_zh in (
        (ADMIN_ID, "区管理员"),
        (AUDITOR_ID, "审计"),
        ("lo_dh_01", "联络员"),
        ("ss_dh_01", "街道工委"),
    ):
        async with site.page() as page:
            await site.sign_in(page, person)
            assert page.url == f"{site.base}/workbench/"
            assert await page.get_by_test_id("me").inner_text() == f"{person} · {role_zh}"
            await site.shot(page, f"queue-{person}")
            # Administration is the district administrator's alone.
            admin_link = page.get_by_role("link", name="管理")
            assert await admin_link.count() == (1 if person == ADMIN_ID else 0)
    assert site.console == []


async def test_a_wrong_password_is_refused_in_words_and_the_first_sign_in_sets_one(
    site: Site,
) -> None:
    async with site.page(PHONE) as page:
        await site.sign_in(page, "lo_dh_01", "not the password")
        assert "账号或密码不正确" in await page.get_by_test_id("problems").inner_text()
        await site.shot(page, "login-refused-phone")

        invitation = await site.bench.routing.accounts.invite("demo", "lo_dh_03", None, ADMIN)
        await page.goto(f"{site.base}/workbench/welcome?code={invitation.code}")
        await site.shot(page, "welcome-phone")
        await page.get_by_label("新密码", exact=True).fill(PASSWORD)
        await page.get_by_label("再次输入新密码").fill(PASSWORD)
        await page.get_by_role("button", name="设置密码并登录").click()
        await page.wait_for_load_state()
        assert page.url == f"{site.base}/workbench/"
        assert "lo_dh_03" in await page.get_by_test_id("me").inner_text()
        # The link worked once.
        await page.goto(f"{site.base}/workbench/welcome?code={invitation.code}")
        assert "邀请码无效" in await page.get_by_test_id("error").inner_text()
    assert site.console == []


async def test_a_case_goes_from_the_queue_to_closed_and_stays_in_its_station(
    site: Site,
) -> None:
    bench = site.bench
    case_id = await bench.open_case(
        "路灯坏了三个多月，晚上老人出门很不方便", phone="13800138000", station_code="dh_home"
    )
    async with every_district(bench.routing.pool).acquire() as conn:
        state = await bench.routing.cases.load(conn, case_id)
    assert state is not None
    assert state.representative_id is not None
    representative = state.representative_id
    await bench.account(representative)

    # The representative finds it in the queue, with its deadline counted down.
    async with site.page(PHONE) as page:
        await site.sign_in(page, representative)
        row = page.locator(f"[data-case='{case_id}']")
        assert "剩余" in await row.get_by_test_id("countdown").inner_text()
        await site.shot(page, "queue-representative-phone")
        await row.click()
        await page.wait_for_load_state()
        assert await page.get_by_test_id("opinion").inner_text() == (
            "路灯坏了三个多月，晚上老人出门很不方便"
        )
        assert await page.get_by_test_id("candidates").count() == 1
        await site.shot(page, "case-assigned-phone")
        await page.get_by_test_id("do-accept").click()
        await page.wait_for_load_state()
        assert await page.get_by_test_id("status").inner_text() == "办理中"
        assert "报到" in await page.get_by_test_id("done").inner_text()

        # A reply, submitted twice with the same form (a double press): one reply.
        await page.locator("details[data-action=reply] summary").click()
        await page.get_by_label("答复内容").fill("已联系物业，本周内修复")
        form = page.locator("details[data-action=reply] form")
        fields = await form.evaluate("f => Object.fromEntries(new FormData(f).entries())")
        for _ in range(2):
            sent = await page.request.post(
                f"{site.base}/workbench/cases/{case_id}/do/reply", form=fields
            )
            assert sent.ok
        assert (await history_types(site, case_id)).count("CaseReplied") == 1

        await page.reload()
        await page.locator("details[data-action=resolve] summary").click()
        await page.get_by_label("办理结果").fill("已更换灯具三盏")
        await page.get_by_test_id("do-resolve").click()
        await page.wait_for_load_state()
        assert await page.get_by_test_id("status").inner_text() == "待核实"
        await site.shot(page, "case-resolved-phone")

    # A liaison officer of another station cannot open it.
    async with site.page() as page:
        await site.sign_in(page, "lo_xs_01")
        response = await page.goto(f"{site.base}/workbench/cases/{case_id}")
        assert response is not None
        assert response.status == 403
        assert "不在您的负责范围" in await page.get_by_test_id("error").inner_text()
        await site.shot(page, "case-out-of-scope")

    # The station's liaison officer calls the resident back and closes it.
    async with site.page() as page:
        await site.sign_in(page, "lo_dh_01")
        await page.goto(f"{site.base}/workbench/cases/{case_id}")
        await page.get_by_test_id("open-contact").click()
        await page.wait_for_load_state()
        assert "13800138000" in await page.get_by_test_id("contact").inner_text()
        opened = await bench.routing.store.read_stream("staff-demo.lo_dh_01")
        assert [r.event_type for r in opened].count("ResidentContactOpened") == 1
        assert "13800138000" not in str([r.data for r in opened])
        await site.shot(page, "case-contact")

        # A form stripped of its CSRF token is refused, and changes nothing.
        await page.locator("details[data-action=close] summary").click()
        await page.evaluate(
            "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove())"
        )
        await page.get_by_test_id("do-close").click()
        await page.wait_for_load_state()
        assert "表单已失效" in await page.locator("main").inner_text()
        assert "CaseClosed" not in await history_types(site, case_id)

        await page.goto(f"{site.base}/workbench/cases/{case_id}")
        await page.locator("details[data-action=close] summary").click()
        await page.get_by_label("核实意见").fill("已电话回访，居民确认路灯已亮")
        await page.get_by_test_id("do-close").click()
        await page.wait_for_load_state()
        assert await page.get_by_test_id("status").inner_text() == "已结项"
        history = await page.get_by_test_id("history").inner_text()
        for label in ("立案", "分派", "报到", "答复居民", "办结", "核实结项"):
            assert label in history
        await site.shot(page, "case-closed")
        await page.get_by_role("link", name="English").click()
        await page.wait_for_load_state()
        assert await page.locator("html").get_attribute("lang") == "en"
        assert await page.get_by_test_id("status").inner_text() == "closed"
        await site.shot(page, "case-closed-en")
    assert site.console == []


async def test_a_refusal_of_the_state_machine_is_shown_in_words(site: Site) -> None:
    bench = site.bench
    case_id = await bench.open_case("路灯坏了，晚上很黑", station_code="dh_home")
    async with site.page() as page:
        await site.sign_in(page, "lo_dh_01")
        await page.goto(f"{site.base}/workbench/cases/{case_id}")
        # Meanwhile the case moves on elsewhere: the page's accept comes too late.
        admin = bench.bearer(Role.DISTRICT_ADMIN, ADMIN_ID)
        moved = await bench.client.post(f"/api/v1/cases/{case_id}/accept", headers=admin)
        assert moved.status_code == 200
        await page.get_by_test_id("do-accept").click()
        await page.wait_for_load_state()
        problems = await page.get_by_test_id("problems").inner_text()
        assert "当前状态不允许此操作" in problems
        assert "办理中" in problems
        await site.shot(page, "case-refused")
    assert site.console == []


async def test_a_case_is_found_by_the_tracking_code_a_resident_reads_out(site: Site) -> None:
    case_id = await site.bench.open_case(
        "小区门口的路灯坏了三天", tracking_code="ABCDEFGHJKMN", station_code="dh_home"
    )
    async with site.page(PHONE) as page:
        await site.sign_in(page, "lo_dh_01")
        await page.goto(f"{site.base}/workbench/search")
        # Read out over the phone: lower case, spaces, an O for a zero would all do.
        await page.get_by_label("查询码").fill("abcd efgh-jkmn")
        await page.get_by_label("查询码").press("Enter")
        await page.wait_for_url(f"**/workbench/cases/{case_id}")
        assert "小区门口的路灯坏了三天" in await page.locator("main").inner_text()
        await site.shot(page, "found-by-tracking-code")
        await page.goto(f"{site.base}/workbench/search?tracking_code=ABCD-EFGH-JKMP")
        assert await page.get_by_test_id("code-unknown").is_visible()
    async with site.page() as page:
        # A liaison officer of another station finds nothing: the case is out of scope.
        await site.sign_in(page, "lo_xs_01")
        await page.goto(f"{site.base}/workbench/search?tracking_code=ABCD-EFGH-JKMN")
        assert await page.get_by_test_id("code-unknown").is_visible()
        assert f"/workbench/cases/{case_id}" not in page.url
    assert site.console == []


async def test_search_directory_and_administration(site: Site) -> None:
    async with site.page() as page:
        await site.sign_in(page, ADMIN_ID)
        await page.goto(f"{site.base}/workbench/search?text=路灯&open_only=1")
        assert int((await page.get_by_test_id("count").inner_text()).split()[1]) >= 1
        await site.shot(page, "search")
        await page.get_by_label("缓急").select_option("urgent")  # the script submits it
        await page.wait_for_url("**priority=urgent**")
        await page.goto(f"{site.base}/workbench/directory")
        assert await page.get_by_test_id("stations").locator("tbody tr").count() >= 20
        await site.shot(page, "directory")
        await page.goto(f"{site.base}/workbench/admin")
        await page.get_by_label("人员编号").fill("lo_dh_04")
        await page.get_by_role("button", name="发送邀请").click()
        await page.wait_for_load_state()
        assert "/workbench/welcome?code=" in await page.get_by_test_id("invitation").inner_text()
        await site.shot(page, "admin")
    async with site.page(PHONE) as page:
        await site.sign_in(page, "lo_dh_01")
        await page.goto(f"{site.base}/workbench/search")
        await site.shot(page, "search-phone")
        await page.goto(f"{site.base}/workbench/directory")
        await site.shot(page, "directory-phone")
        await page.get_by_role("button", name="退出").click()
        await page.wait_for_load_state()
        assert "您已退出" in await page.locator("main").inner_text()
        await page.goto(f"{site.base}/workbench/")
        assert "/workbench/login" in page.url
    assert site.console == []
