"""No stored cross-site scripting: hostile text sent through every channel a text can
enter (the QR form, Open311, the 12345 import, staff replies and notes through the
workbench API, station and representative names through the directory admin, a
district's notification templates) comes back as text on every page that shows it:
intake's tracking and QR pages, Open311 JSON and XML, the workbench, the dashboards and
the monthly report, the local outbox.

Checked twice: at the HTTP level (the markup arrives escaped; XML stays well-formed and
gives the text back as sent) and in Chromium (no dialog opens, no element of the
attacker's exists, the text is there to read). The browser runs the pages under their
Content-Security-Policy, which would block an inline script on its own: the DOM check is
what proves the escaping. The monthly report is also a file opened without that policy,
so it is checked as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import httpx
import pytest
import uvicorn
import yaml
from aiosmtplib import send
from fastapi import FastAPI
from playwright.async_api import Browser, Dialog, Page, async_playwright

from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.local import free_port
from eventkit.settings import Settings
from minqing.sink import Sink
from services.intake.directory import SHANGHAI
from services.intake.hotline import import_work_orders, read_rows
from services.intake.open311_format import public_url
from services.notification.messages import Template, default_template, render
from tests.intake.intake_support import API_KEY
from tests.routing.routing_support import ADMIN, DEMO_FILE
from tests.sealed_support import opened_case_events
from tests.security.service_apps import build
from tests.security.test_public_leaks import DemoStack, demo_stack

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(2)>'
TEXTAREA = "</textarea><script>alert(3)</script>"
TEMPLATE = "{{7*7}}"
RTL = "\u202eRTL-gpj.exe"
HOSTILE = f"东门路灯坏了 {SCRIPT} {IMAGE} {TEXTAREA} {TEMPLATE} {RTL} 请尽快修"
"""A resident's text with every trick at once (long enough for every channel's minimum)."""
HOSTILE_NAME = f'东湖{SCRIPT}"><img src=x onerror=alert(5)>{TEMPLATE}\u202e站'
"""A station's or representative's name an administrator's account typed (or was
tricked into typing): short enough for the directory's 100 characters."""
JS_LINK = "javascript:alert(6)"

RAW_MARKUP = (
    "<script>alert",
    "<img src=x",
    "</textarea><script>",
    "onerror=alert(2)>",
)
"""What must never reach a page as markup (escaped, each is harmless text)."""

PASSWORD = "示范区-安全测试-2026"


# --- HTTP level --------------------------------------------------------------------------


def assert_escaped(html: str, where: str) -> None:
    """Nothing of the attacker's arrives as markup; the text itself does, escaped."""
    for raw in RAW_MARKUP:
        assert raw not in html, f"{where}: {raw!r} arrived as markup"
    assert "&lt;script&gt;alert" in html, f"{where}: the hostile text is not shown at all"
    assert TEMPLATE in html, f"{where}: the template text was evaluated"
    assert ">49<" not in html, f"{where}: the template text was evaluated"


def assert_json_text(body: Any, expected: str, where: str) -> None:
    """JSON gives the text back exactly as sent (JSON is data: escaping is the reader's)."""
    assert _contains(body, expected), f"{where}: text not kept"


def _contains(value: Any, expected: str) -> bool:
    if isinstance(value, str):
        return expected in value
    if isinstance(value, dict):
        return any(_contains(v, expected) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, expected) for v in value)
    return False


# --- the browser -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(*apps: FastAPI) -> AsyncIterator[list[str]]:
    """Each app (its lifespan already running) served by uvicorn on a port of its own."""
    servers = []
    for app in apps:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=free_port(), log_config=None, lifespan="off"
        )
        servers.append(uvicorn.Server(config))
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    for server in servers:
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, not an event
            await asyncio.sleep(0.02)
    try:
        yield [f"http://127.0.0.1:{s.config.port}" for s in servers]
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


INJECTED = """() => {
  const attrs = el => Array.from(el.attributes);
  const js = v => /^\\s*javascript:/i.test(v || '');
  return {
    inline_scripts: Array.from(document.scripts).filter(s => !s.src).map(s => s.text),
    attacker_images: document.querySelectorAll('img[src="x"]').length,
    event_handlers: Array.from(document.querySelectorAll('*'))
      .flatMap(el => attrs(el).filter(a => a.name.startsWith('on')).map(a => a.name)),
    javascript_links: Array.from(document.querySelectorAll('[href],[src],[action],[formaction]'))
      .flatMap(el => attrs(el).filter(a => ['href','src','action','formaction'].includes(a.name)))
      .filter(a => js(a.value)).map(a => a.value),
  };
}"""
CLEAN = {"inline_scripts": [], "attacker_images": 0, "event_handlers": [], "javascript_links": []}


class Visitor:
    """One browser context; every dialog any page opens is kept (and dismissed)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self._dismissing: set[asyncio.Task[None]] = set()
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        task = asyncio.ensure_future(dialog.dismiss())
        self._dismissing.add(task)
        task.add_done_callback(self._dismissing.discard)

    async def inert(self, url: str, *, shows: Sequence[str] = ()) -> str:
        """Open ``url``; no dialog, nothing injected, and each of ``shows`` readable as
        text. Returns the page's text."""
        response = await self.page.goto(url)
        assert response is not None
        assert response.status < 400, f"{url}: {response.status}"
        return await self.check(url, shows=shows)

    async def check(self, where: str, *, shows: Sequence[str] = ()) -> str:
        await self.page.wait_for_load_state()
        await asyncio.sleep(0.05)  # a timer an injected handler might have set
        assert await self.page.evaluate(INJECTED) == CLEAN, where
        assert self.dialogs == [], where
        text = await self.page.evaluate("() => document.documentElement.textContent")
        for expected in shows:
            assert expected in text, f"{where}: {expected!r} is not shown as text"
        return str(text)


@contextlib.asynccontextmanager
async def visitor(browser: Browser) -> AsyncIterator[Visitor]:
    context = await browser.new_context(locale="zh-CN")
    try:
        yield Visitor(await context.new_page())
    finally:
        await context.close()


# --- the hostile data, through every channel ------------------------------------------------


async def hostile_directory(stack: DemoStack) -> None:
    """The directory admin renames the home station and its representative."""
    district = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
    for station in district["stations"]:
        if station["code"] == "dh_home":
            station["name_zh"] = HOSTILE_NAME
    for representative in district["representatives"]:
        if representative["id"] == "r001":
            representative["name_zh"] = HOSTILE_NAME
    response = await stack.routing.post(
        "/api/v1/directory/import",
        content=yaml.safe_dump(district, allow_unicode=True).encode(),
        headers={**stack.admin(), "Content-Type": "text/yaml"},
    )
    assert response.status_code == 200, response.text
    await stack.deliver()


def workorders(rows: Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    header = ["工单编号", "来电时间", "诉求类别", "诉求内容", "诉求地址", "所属社区"]
    header += ["联系人", "联系电话", "承办站点", "附件"]
    writer = csv.DictWriter(out, fieldnames=header)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def called_at(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


async def hostile_opinions(stack: DemoStack, tmp_path: Path) -> dict[str, str]:
    """Hostile text through the QR form (without script), the API the QR page's script
    uses, a liaison officer's walk-in record, Open311 and the 12345 import: channel →
    tracking code."""
    codes: dict[str, str] = {}
    form = await stack.intake.post(
        "/q/dh_home?district=demo",
        data={
            "text": HOSTILE,
            "address": IMAGE,
            "community": "东湖社区",
            "name": SCRIPT,
            "phone": "13800138000",
            "consent": "yes",
        },
    )
    assert form.status_code == 201, form.text
    found = re.search(r'href="/t/([A-Za-z0-9-]+)', form.text)
    assert found is not None, form.text
    codes["qr_form"] = found.group(1).replace("-", "")

    api = await stack.intake.post(
        "/api/v1/opinions",
        json={
            "channel": "qr",
            "station_code": "dh_home",
            "district": "demo",
            "text": HOSTILE,
            "location": {"community": "东湖社区", "address": TEXTAREA},
            "consent": True,
        },
    )
    assert api.status_code == 201, api.text
    codes["qr_api"] = api.json()["tracking_code"].replace("-", "")

    liaison = issue_token(stack.settings, role=Role.LIAISON, district_id="demo", subject="lo_dh_01")
    walk_in = await stack.intake.post(
        "/api/v1/opinions",
        json={
            "channel": "walk_in",
            "station_code": "dh_home",
            "district": "demo",
            "text": HOSTILE,
            "location": {"community": "东湖社区", "address": IMAGE},
            "contact": {"name": SCRIPT, "phone": "13800138002"},
        },
        headers={"Authorization": f"Bearer {liaison}"},
    )
    assert walk_in.status_code == 201, walk_in.text
    codes["walk_in"] = walk_in.json()["tracking_code"].replace("-", "")

    posted = await stack.intake.post(
        "/open311/v2/requests.xml",
        data={
            "api_key": API_KEY,
            "jurisdiction_id": "demo",
            "service_code": "municipal",
            "lat": "30.2741",
            "long": "120.1551",
            "address_string": IMAGE,
            "description": HOSTILE,
            "first_name": SCRIPT,
            "media_url": "https://img.example.cn/a.jpg?q=" + TEMPLATE,
        },
    )
    assert posted.status_code == 200, posted.text
    notice = ET.fromstring(posted.content).findtext("request/service_notice") or ""
    found = re.search(r"/t/([A-Za-z0-9-]+)", notice)
    assert found is not None, notice
    codes["open311"] = found.group(1).replace("-", "")

    file = tmp_path / "12345.csv"
    file.write_text(
        workorders(
            [
                {
                    "工单编号": "2026120100001",
                    "来电时间": called_at(stack.now() - timedelta(hours=1)),
                    "诉求类别": "市政设施",
                    "诉求内容": HOSTILE,
                    "诉求地址": IMAGE,
                    "所属社区": "东湖社区",
                    "联系人": SCRIPT,
                    "联系电话": "13800138001",
                    "承办站点": "dh_home",
                    "附件": "",
                }
            ]
        ),
        encoding="utf-8",
    )
    intake = stack.intake_app.state.intake
    report = await import_work_orders(
        intake.submissions,
        read_rows(file),
        district_id="demo",
        operator="12345-import",
        tz=SHANGHAI,
        now=stack.now(),
        hash_key=intake.settings.intake_hash_secret,
    )
    assert not report.rejected, report.rejected
    codes["hotline_12345"] = report.imported[0].tracking_code
    await stack.deliver()
    return codes


async def hostile_casework(stack: DemoStack, opinion_id: str) -> str:
    """Staff work the case with a hostile reply, a reclassification's reason, a whistle
    (its addressee and reason) and a result; the reply and the result marked public, so
    that Open311 shows them too. Returns the case id."""
    case_id = await stack.case_of(opinion_id)
    admin = stack.admin()
    steps: list[tuple[str, dict[str, Any]]] = [
        ("accept", {}),
        ("reply", {"message": HOSTILE, "public": True}),
        ("classify", {"priority": "important", "reason": HOSTILE}),
        ("escalate", {"to_level": "department", "to_name": HOSTILE_NAME, "reason": HOSTILE}),
        ("resolve", {"result": HOSTILE, "public": True}),
    ]
    for name, body in steps:
        response = await stack.routing.post(
            f"/api/v1/cases/{case_id}/{name}", json=body, headers=admin
        )
        assert response.status_code == 200, f"{name}: {response.text}"
    await stack.deliver()
    return case_id


@pytest.fixture
async def stack(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[DemoStack]:
    _, reporting = build("reporting", settings)
    async with demo_stack(settings, pool, reporting) as demo:
        yield demo


# --- the tests ------------------------------------------------------------------------------


async def test_hostile_text_is_shown_as_text_on_the_residents_pages_and_in_open311(
    stack: DemoStack, tmp_path: Path
) -> None:
    await hostile_directory(stack)
    codes = await hostile_opinions(stack, tmp_path)
    open311_id = await stack.opinion_of(codes["open311"])
    await hostile_casework(stack, open311_id)

    # HTTP: every tracking page and the QR form escape what they show.
    for channel, code in codes.items():
        page = await stack.intake.get(f"/t/{code}")
        assert page.status_code == 200, page.text
        assert_escaped(page.text, f"tracking page ({channel})")
    qr_page = await stack.intake.get("/q/dh_home?district=demo")
    assert_escaped(qr_page.text, "QR form")

    # Open311 JSON: the text as sent; XML: well-formed, the text as sent.
    listed = await stack.intake.get("/open311/v2/requests.json", params={"jurisdiction_id": "demo"})
    assert listed.headers["content-type"] == "application/json; charset=utf-8"
    request = next(r for r in listed.json() if r["service_request_id"] == open311_id)
    assert request["description"] == HOSTILE
    assert request["address"] == IMAGE
    assert request["status_notes"] == f"已办结：{HOSTILE}"
    assert request["media_url"].startswith("https://img.example.cn/a.jpg")
    for path in ("requests", "servicerequestupdates"):
        xml = await stack.intake.get(f"/open311/v2/{path}.xml", params={"jurisdiction_id": "demo"})
        root = ET.fromstring(xml.content)  # raises if not well-formed
        assert "<script>" not in xml.text
        texts = [e.text or "" for e in root.iter()]
        assert any(HOSTILE in t for t in texts), path
    updates = await stack.intake.get(
        "/open311/v2/servicerequestupdates.json", params={"jurisdiction_id": "demo"}
    )
    assert_json_text(updates.json(), f"答复：{HOSTILE}", "servicerequestupdates")

    # In Chromium: nothing runs, nothing is injected, the text is there to read.
    async with served(stack.intake_app) as (base,), chromium() as browser, visitor(browser) as v:
        for channel, code in codes.items():
            text = await v.inert(f"{base}/t/{code}", shows=[SCRIPT, TEMPLATE])
            assert RTL in text, channel
        await v.inert(f"{base}/t/{codes['open311']}?lang=en", shows=[SCRIPT])
        await v.inert(f"{base}/q/dh_home?district=demo", shows=[SCRIPT])
        await v.inert(f"{base}/q/dh_home/poster?district=demo", shows=[SCRIPT])
        for path in ("requests.json", "servicerequestupdates.json"):
            await v.inert(f"{base}/open311/v2/{path}?jurisdiction_id=demo", shows=[SCRIPT])


async def test_a_refused_qr_form_gives_the_hostile_text_back_inside_its_textarea(
    stack: DemoStack,
) -> None:
    fields = {"text": HOSTILE, "address": TEXTAREA, "name": IMAGE}  # a contact, no consent
    answer = await stack.intake.post("/q/dh_home?district=demo", data=fields)
    assert answer.status_code == 422, answer.text
    assert_escaped(answer.text, "the refused QR form")
    async with served(stack.intake_app) as (base,), chromium() as browser, visitor(browser) as v:
        # Without its script (as a phone with script off posts it): the page answers.
        await v.page.route("**/static/qr.js", lambda route: route.abort())
        await v.page.goto(f"{base}/q/dh_home?district=demo")
        await v.page.fill("#text", HOSTILE)
        await v.page.fill("#address", TEXTAREA)
        await v.page.fill("#name", IMAGE)  # a contact without consent: refused
        await v.page.click("#send")
        await v.check("the refused form, in the browser")
        assert await v.page.input_value("#text") == HOSTILE
        assert await v.page.input_value("#address") == TEXTAREA
        assert await v.page.input_value("#name") == IMAGE


async def test_hostile_text_is_shown_as_text_on_the_workbench(
    stack: DemoStack, tmp_path: Path
) -> None:
    await hostile_directory(stack)
    codes = await hostile_opinions(stack, tmp_path)
    case_id = await hostile_casework(stack, await stack.opinion_of(codes["open311"]))
    routing = stack.routing_app.state.routing
    invitation = await routing.accounts.invite("demo", "admin_xss", Role.DISTRICT_ADMIN, ADMIN)
    await routing.accounts.accept_invitation(invitation.code, PASSWORD, PASSWORD)

    async with served(stack.routing_app) as (base,), chromium() as browser, visitor(browser) as v:
        await v.page.goto(f"{base}/workbench/")
        await v.page.get_by_label("账号（人员编号）").fill("admin_xss")
        await v.page.get_by_label("密码").fill(PASSWORD)
        await v.page.get_by_role("button", name="登录").click()
        await v.check("the queue")
        pages = {  # path → whether it shows a hostile text or name
            f"/workbench/cases/{case_id}": True,
            f"/workbench/cases/{case_id}?lang=en": True,
            "/workbench/directory": True,
            "/workbench/": False,
            "/workbench/search?q=路灯": False,
            "/workbench/admin": False,
        }
        for path, shows in pages.items():
            response = await v.page.goto(f"{base}{path}")
            assert response is not None
            assert response.status == 200, path
            html = await response.text()
            if shows:
                assert_escaped(html, path)
            for raw in RAW_MARKUP:
                assert raw not in html, f"{path}: {raw!r} arrived as markup"
            await v.check(path, shows=[SCRIPT] if shows else [])
        await v.page.goto(f"{base}/workbench/cases/{case_id}")
        await v.check("the case page", shows=[HOSTILE])

        # A reply typed into the form, its "公开" box ticked: shown as text, marked public.
        await v.page.locator("details[data-action=reply] summary").click()
        await v.page.fill("#reply-message", f"{TEXTAREA} 已公开")
        await v.page.locator("details[data-action=reply] input[name=public]").check()
        await v.page.get_by_test_id("do-reply").click()
        await v.check("the case page after a reply", shows=[f"{TEXTAREA} 已公开"])
    replies = [
        data
        for kind, data in await opened_case_events(
            stack.store, case_id, stack.settings.privacy_keys()
        )
        if kind == "CaseReplied"
    ]
    assert (replies[-1]["message"], replies[-1]["public"]) == (f"{TEXTAREA} 已公开", True)


async def test_hostile_names_and_texts_are_shown_as_text_on_the_dashboards_and_in_the_report(
    stack: DemoStack, tmp_path: Path
) -> None:
    await hostile_directory(stack)
    codes = await hostile_opinions(stack, tmp_path)
    await hostile_casework(stack, await stack.opinion_of(codes["open311"]))
    reporting_app = stack.extra_apps[0]
    token = issue_token(
        stack.settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="admin_demo"
    )
    month = stack.now().astimezone(SHANGHAI).strftime("%Y-%m")
    async with served(reporting_app) as (base,), chromium() as browser:
        async with visitor(browser) as v:
            await v.inert(f"{base}/dashboard/login?token={token}")
            for path in (
                "/dashboard/demo",
                "/dashboard/demo/stations/dh_home",
                "/dashboard/demo/representatives",
                "/dashboard/demo/representatives/r001",
                "/dashboard/demo/hotspots",
                "/dashboard/demo/trends",
                "/dashboard/demo/stations/dh_home/registers",
            ):
                response = await v.page.goto(f"{base}{path}")
                assert response is not None
                assert response.status == 200, path
                html = await response.text()
                for raw in RAW_MARKUP:
                    assert raw not in html, f"{path}: {raw!r} arrived as markup"
                await v.check(path)
            shown = await v.inert(f"{base}/dashboard/demo", shows=[SCRIPT])
            assert TEMPLATE in shown

        # The monthly report is a file people open anywhere: no policy protects it.
        reports = reporting_app.state.reporting.reports
        html = reports.html(await reports.build("demo", month))
        assert_escaped(html, "the monthly report")
        async with visitor(browser) as v:
            await v.page.set_content(html)
            await v.check("the monthly report, opened as a file", shows=[SCRIPT])


async def test_hostile_notification_templates_and_texts_reach_the_outbox_as_text(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    notification_settings, notification_app = build("notification", settings)
    token = issue_token(
        notification_settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="admin_demo"
    )
    hostile_template = {
        "subject": f"【民情】{SCRIPT}{{{{ message }}}}",
        "body": f"{IMAGE}{TEXTAREA}\n答复：{{{{ message }}}}\n{{{{ tracking_url }}}}",
    }
    async with (
        demo_stack(settings, pool, notification_app) as demo,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=notification_app), base_url="http://n"
        ) as client,
    ):
        await demo.deliver()  # the district and its admin's account reach notification
        put = await client.put(
            "/api/v1/templates/resident_replied",
            json=hostile_template,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert put.status_code == 200, put.text
        assert put.headers["content-type"].startswith("application/json")
        got = await client.get(
            "/api/v1/templates/resident_replied", headers={"Authorization": f"Bearer {token}"}
        )
        assert got.json()["subject"] == hostile_template["subject"]

    # A resident's text is data to a template, never template source.
    context = {"message": HOSTILE, "tracking_url": "https://minqing.example.cn/t/X"}
    shipped = render(default_template("resident_replied"), context)
    assert TEMPLATE in shipped.body
    assert "49" not in shipped.body
    message = render(Template(hostile_template["subject"], hostile_template["body"]), context)
    assert SCRIPT in message.subject
    assert TEMPLATE in message.body

    sink = Sink(smtp_port=free_port(), http_port=free_port())
    await sink.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink.http_port}") as http:
            sent = await http.post("/sms", json={"to": "13800138000", "text": message.text})
            assert sent.status_code == 200
            await http.post(
                "/robot/wecom/key", json={"msgtype": "text", "text": {"content": message.text}}
            )
            mail = EmailMessage()
            mail["From"] = "minqing@example.cn"
            mail["To"] = "resident@example.cn"
            mail["Subject"] = message.subject
            mail.set_content(message.body)
            await send(mail, hostname="127.0.0.1", port=sink.smtp_port)
            page = await http.get("/")
        assert_escaped(page.text, "the local outbox")
        async with chromium() as browser, visitor(browser) as v:
            await v.inert(f"http://127.0.0.1:{sink.http_port}/", shows=[SCRIPT, IMAGE])
    finally:
        await sink.stop()


def test_links_made_of_user_data_are_http_or_https_only() -> None:
    for bad in (
        JS_LINK,
        " javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/x.jpg",
        "/t/ABCD",
        'https://img.example.cn/a.jpg"><script>alert(1)</script>',
        "https://img.example.cn/\u202egpj.exe",
    ):
        assert public_url(bad) is None, bad
    assert public_url("https://img.example.cn/a.jpg") == "https://img.example.cn/a.jpg"
    assert public_url("http://img.example.cn/a.jpg") == "http://img.example.cn/a.jpg"


async def test_no_channel_stores_a_javascript_link(stack: DemoStack, tmp_path: Path) -> None:
    qr = await stack.intake.post(
        "/api/v1/opinions",
        json={
            "channel": "qr",
            "station_code": "dh_home",
            "district": "demo",
            "text": "东门路灯坏了三个月，晚上很黑。",
            "attachments": [JS_LINK],
            "consent": True,
        },
    )
    assert qr.status_code == 422, qr.text
    assert qr.headers["content-type"].startswith("application/problem+json")

    open311 = await stack.intake.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "jurisdiction_id": "demo",
            "service_code": "municipal",
            "lat": "30.2741",
            "long": "120.1551",
            "address_string": "东湖路88号",
            "description": "东门路灯坏了三个月，晚上很黑。",
            "media_url": JS_LINK,
        },
    )
    assert open311.status_code == 200, open311.text
    assert "media_url" in open311.json()[0]["service_notice"]  # left out, and said so
    opinion_id = open311.json()[0]["service_request_id"]
    [stored] = await stack.store.read_stream(f"opinion-{opinion_id}")
    assert stored.data["attachments"] == []

    file = tmp_path / "12345.csv"
    row = {
        "工单编号": "2026120100002",
        "来电时间": called_at(stack.now() - timedelta(hours=1)),
        "诉求类别": "路灯",
        "诉求内容": "东门路灯坏了三个月，晚上很黑。",
        "诉求地址": "东湖路88号",
        "所属社区": "东湖社区",
        "联系人": "",
        "联系电话": "",
        "承办站点": "dh_home",
        "附件": JS_LINK,
    }
    file.write_text(workorders([row]), encoding="utf-8")
    intake = stack.intake_app.state.intake
    report = await import_work_orders(
        intake.submissions,
        read_rows(file),
        district_id="demo",
        operator="12345-import",
        tz=SHANGHAI,
        now=stack.now(),
        hash_key=intake.settings.intake_hash_secret,
    )
    assert report.imported == []
    assert len(report.rejected) == 1

    await stack.deliver()
    case_id = await stack.case_of(opinion_id)
    admin = stack.admin()
    assert (
        await stack.routing.post(f"/api/v1/cases/{case_id}/accept", json={}, headers=admin)
    ).status_code == 200
    refused = await stack.routing.post(
        f"/api/v1/cases/{case_id}/resolve",
        json={"result": "已修好", "evidence_urls": [JS_LINK]},
        headers=admin,
    )
    assert refused.status_code == 422, refused.text
    events = await stack.store.read_stream(f"case-{case_id}")
    assert "CaseResolved" not in [e.event_type for e in events]
