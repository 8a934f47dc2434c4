"""The public endpoints leak nothing: Open311 (read by anyone) shows only the texts staff
marked public, attachments only from the residents' own channels, positions rounded,
numbers masked, nothing of another resident; the tracking page (the resident's own
capability URL) shows what was written for the resident and no internal note.

Tried as an attacker would: every text below that must stay internal carries a marker
of its own, and the test looks for every marker in every public answer, in both formats.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from contracts import (
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseLinked,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    DepartmentResponded,
)
from contracts.cases import CaseEvent
from eventkit.auth import issue_token
from eventkit.consumer import Consumer
from eventkit.identity import Role
from eventkit.settings import Settings
from eventkit.store import Checkpoint, EventStore
from services.intake.app import create_app
from services.intake.bootstrap import Intake, bootstrap
from services.intake.progress import CaseProgress, Names, Step, evolve
from services.intake.settings import IntakeSettings
from services.intake.tracking_views import describe
from tests.intake.intake_support import (
    API_KEY,
    DISTRICT,
    LIAISON,
    REPRESENTATIVE,
    STATION,
    case_events,
    directory_events,
    now,
    opinion_body,
    publish,
)
from tests.sealed_support import opened_case_events
from tests.security.service_apps import build, prepare

V2 = "/open311/v2"
J = {"jurisdiction_id": DISTRICT}

INTERNAL = {
    "escalated": "升级原因INT-ESC 联系人张科长13811112222",
    "transferred": "转办原因INT-TRF",
    "closed": "核实意见INT-CLS",
    "reopened": "重新办理原因INT-REO",
    "department": "部门反馈INT-DEP",
    "station_head": "站长赵德明INT-HEAD",
    "reply": "仅居民可见的答复INT-RPL",
    "result": "仅居民可见的结果INT-RES",
    "evidence": "https://files.example.cn/INT-EVIDENCE.jpg",
}
"""Texts that anyone reading Open311 must never see (the last three are for the
resident: their tracking page shows them, Open311 does not)."""

FOR_THE_RESIDENT = ("reply", "result")


def intake_settings_of(settings: Settings) -> IntakeSettings:
    return IntakeSettings(
        **{
            **settings.model_dump(),
            "open311_api_keys": {DISTRICT: [API_KEY]},
            "public_base_url": "https://minqing.example.cn",
            "rate_submit_per_minute": 10_000,
            "rate_submit_burst": 10_000,
            "rate_read_per_minute": 10_000,
            "rate_read_burst": 10_000,
        }
    )


@dataclass
class Public:
    """Intake as the public and its residents reach it, and the consumer the tests hand
    routing's case events to."""

    client: httpx.AsyncClient
    intake: Intake
    store: EventStore
    settings: IntakeSettings

    @property
    def consumer(self) -> Consumer:
        return self.intake.consumer

    async def publish(self, *events: CaseEvent) -> None:
        await publish(self.store, self.consumer, list(events))

    def staff(self, role: Role = Role.LIAISON, subject: str = "staff_0012") -> dict[str, str]:
        token = issue_token(self.settings, role=role, district_id=DISTRICT, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    async def open311_post(self, **overrides: str) -> str:
        form = {
            "api_key": API_KEY,
            "jurisdiction_id": DISTRICT,
            "service_code": "municipal.road",
            "lat": "39.96123456",
            "long": "116.33016789",
            "address_string": "科学院南路菜市场东门",
            "description": "路口有个大坑，下雨积水，电动车容易摔倒。",
            "media_url": "https://img.example.cn/pothole.jpg",
            **overrides,
        }
        response = await self.client.post(f"{V2}/requests.json", data=form)
        assert response.status_code == 200, response.text
        return str(response.json()[0]["service_request_id"])

    async def submit(
        self, headers: dict[str, str] | None = None, **overrides: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/opinions", json=opinion_body(**overrides), headers=headers or {}
        )
        assert response.status_code == 201, response.text
        receipt: dict[str, Any] = response.json()
        return receipt

    async def everything_public(self) -> str:
        """Every Open311 answer that lists requests or updates, in both formats, as one
        text (what a scraper of the public endpoints collects)."""
        answers = []
        for fmt in ("json", "xml"):
            for path in ("requests", "servicerequestupdates"):
                response = await self.client.get(f"{V2}/{path}.{fmt}", params=J)
                assert response.status_code == 200, response.text
                answers.append(response.text)
        listed = (await self.client.get(f"{V2}/requests.json", params=J)).json()
        for request in listed:
            one = await self.client.get(
                f"{V2}/requests/{request['service_request_id']}.xml", params=J
            )
            assert one.status_code == 200
            answers.append(one.text)
        return "\n".join(answers)

    async def requests(self) -> dict[str, dict[str, Any]]:
        listed = (await self.client.get(f"{V2}/requests.json", params=J)).json()
        return {r["service_request_id"]: r for r in listed}

    async def updates(self) -> list[dict[str, Any]]:
        updates: list[dict[str, Any]] = (
            await self.client.get(f"{V2}/servicerequestupdates.json", params=J)
        ).json()
        return updates


@pytest.fixture
async def public(
    settings: Settings, pool: asyncpg.Pool, store: EventStore
) -> AsyncIterator[Public]:
    own = intake_settings_of(settings)
    async with bootstrap(own, pool=pool, background=False) as intake:
        await publish(store, intake.consumer, directory_events())
        app = create_app(own, pool=pool, background=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://intake.test"
            ) as client,
        ):
            yield Public(client, intake, store, own)


def staff_notes(case_id: str, opinion_id: str) -> list[CaseEvent]:
    """A case's life with every kind of staff text, none of it marked public."""
    e = case_events(case_id, opinion_id)
    common: dict[str, Any] = {"district_id": DISTRICT, "case_id": case_id, "actor": LIAISON}
    at = e["accepted"].occurred_at
    return [
        e["opened"],
        e["assigned"],
        e["accepted"],
        CaseEscalated(
            **common,
            occurred_at=at + timedelta(seconds=10),
            to_level="station_head",
            to_name=INTERNAL["station_head"],
            reason=INTERNAL["escalated"],
        ),
        CaseTransferred(
            **common,
            occurred_at=at + timedelta(seconds=20),
            to_station_code=STATION,
            to_representative_id=REPRESENTATIVE,
            reason=INTERNAL["transferred"],
        ),
        DepartmentResponded(
            **common,
            occurred_at=at + timedelta(seconds=30),
            department_code="cgj",
            whistle_seq=1,
            action=INTERNAL["department"],
        ),
        CaseReplied(**common, occurred_at=at + timedelta(seconds=40), message=INTERNAL["reply"]),
        CaseResolved(
            **common,
            occurred_at=at + timedelta(seconds=50),
            resolution_seq=1,
            result=INTERNAL["result"],
            evidence_urls=[INTERNAL["evidence"]],
        ),
        CaseReopened(**common, occurred_at=at + timedelta(seconds=60), reason=INTERNAL["reopened"]),
        CaseClosed(**common, occurred_at=at + timedelta(seconds=70), note=INTERNAL["closed"]),
    ]


def leaked(text: str, markers: dict[str, str]) -> list[str]:
    """The markers found in ``text``, as written or as JSON or XML would escape them."""
    found = []
    for name, marker in markers.items():
        variants = {marker, json.dumps(marker)[1:-1], marker.replace("&", "&amp;")}
        tag = re.search(r"INT-[A-Z]+", marker)
        if any(v in text for v in variants) or (tag is not None and tag.group(0) in text):
            found.append(name)
    return found


async def test_open311_shows_no_staff_text_that_was_not_marked_public(public: Public) -> None:
    opinion_id = await public.open311_post()
    await public.publish(*staff_notes("case_leak1", opinion_id))

    assert leaked(await public.everything_public(), INTERNAL) == []
    request = (await public.requests())[opinion_id]
    assert request["status_notes"] == "已结项"  # the stage, no note
    updates = await public.updates()
    kinds = [u["external_status_code"] for u in updates]
    assert "CaseReplied" in kinds  # the steps are there…
    assert "CaseResolved" in kinds
    assert all(u["media_url"] is None for u in updates)  # the evidence is not
    escalated = next(u for u in updates if u["external_status_code"] == "CaseEscalated")
    assert escalated["description"] == "已吹哨，请站长协同办理"


async def test_a_text_staff_marked_public_is_shown_with_numbers_masked(public: Public) -> None:
    opinion_id = await public.open311_post()
    e = case_events("case_pub1", opinion_id)
    common: dict[str, Any] = {"district_id": DISTRICT, "case_id": "case_pub1", "actor": LIAISON}
    at = e["accepted"].occurred_at
    reply = CaseReplied(
        **common,
        occurred_at=at + timedelta(seconds=5),
        message="已联系城管办，本周五前修复，咨询电话13800001111",
        public=True,
    )
    private = CaseReplied(
        **common, occurred_at=at + timedelta(seconds=6), message=INTERNAL["reply"]
    )
    await public.publish(e["opened"], e["assigned"], e["accepted"], reply, private)

    request = (await public.requests())[opinion_id]
    # The latest text marked public, not the later private one.
    assert request["status_notes"] == "办理中：已联系城管办，本周五前修复，咨询电话138****1111"
    replies = [u for u in await public.updates() if u["external_status_code"] == "CaseReplied"]
    assert [u["description"] for u in replies] == [
        "答复：已联系城管办，本周五前修复，咨询电话138****1111",
        "已答复居民",
    ]

    resolved = CaseResolved(
        **common,
        occurred_at=at + timedelta(seconds=7),
        resolution_seq=1,
        result="坑已填平",
        evidence_urls=["https://files.example.cn/after.jpg"],
        public=True,
    )
    await public.publish(resolved)
    fixed = [u for u in await public.updates() if u["external_status_code"] == "CaseResolved"]
    assert fixed[0]["description"] == "已办结：坑已填平"
    assert fixed[0]["media_url"] == "https://files.example.cn/after.jpg"
    assert leaked(await public.everything_public(), {"reply": INTERNAL["reply"]}) == []

    reopened = CaseReopened(**common, occurred_at=at + timedelta(seconds=8), reason="又坏了")
    await public.publish(reopened)
    assert (await public.requests())[opinion_id]["status_notes"] == "办理中"


async def test_the_tracking_page_shows_what_was_written_for_the_resident_and_nothing_internal(
    public: Public,
) -> None:
    receipt = await public.submit()
    await public.publish(*staff_notes("case_leak2", receipt["opinion_id"]))
    code = str(receipt["tracking_code"]).replace("-", "")

    view = (await public.client.get(f"/api/v1/track/{code}")).json()
    page = (await public.client.get(f"/t/{code}")).text
    internal = {k: v for k, v in INTERNAL.items() if k not in FOR_THE_RESIDENT}
    assert leaked(json.dumps(view, ensure_ascii=False), internal) == []
    assert leaked(page, internal) == []
    timeline = [entry["text_zh"] for entry in view["timeline"]]
    # What was written for the resident is theirs to read (never the evidence's address:
    # the page links nothing a staff member uploaded).
    assert f"答复：{INTERNAL['reply']}" in timeline
    assert f"已办结：{INTERNAL['result']}" in timeline
    assert INTERNAL["reply"] in page
    # A representative's public name is meant to be read; the station head's is not.
    assert "已分派至中关村街道人大代表之家，由李建华代表办理" in timeline
    assert "李建华" in page
    assert "已吹哨，请站长协同办理" in timeline
    assert "职能部门已反馈处理情况" in timeline
    assert "已重新办理" in timeline


async def test_attachments_are_shown_only_from_the_residents_own_channels(
    public: Public, tmp_path: Path
) -> None:
    from services.intake.directory import SHANGHAI
    from services.intake.hotline import import_work_orders, read_rows

    photo = "https://img.example.cn/{}.jpg"
    own = {
        "open311": await public.open311_post(media_url=photo.format("open311")),
        "qr": (await public.submit(attachments=[photo.format("qr")]))["opinion_id"],
        "online": (await public.submit(channel="online", attachments=[photo.format("online")]))[
            "opinion_id"
        ],
    }
    staff = {
        "walk_in": (
            await public.submit(
                public.staff(), channel="walk_in", attachments=[photo.format("walk_in")]
            )
        )["opinion_id"],
        "spokesperson": (
            await public.submit(
                public.staff(Role.SPOKESPERSON, "sp_0031"),
                channel="spokesperson",
                attachments=[photo.format("spokesperson")],
            )
        )["opinion_id"],
        "visit": (
            await public.submit(
                public.staff(Role.REPRESENTATIVE, REPRESENTATIVE),
                channel="visit",
                attachments=[photo.format("visit")],
            )
        )["opinion_id"],
    }
    called = (now() - timedelta(hours=1)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    workorders = tmp_path / "12345.csv"
    workorders.write_text(
        "工单编号,来电时间,诉求类别,诉求内容,诉求地址,所属社区,联系人,联系电话,承办站点,附件\n"
        f"2025031400999,{called},路灯照明,市民来电反映：东门外路灯坏了三个月。,"
        f"中关村南大街12号院,中关村南路社区,王女士,13800000001,{STATION},"
        f"{photo.format('hotline')}\n",
        encoding="utf-8",
    )
    report = await import_work_orders(
        public.intake.submissions,
        read_rows(workorders),
        district_id=DISTRICT,
        operator="12345-import",
        tz=SHANGHAI,
        now=now(),
        hash_key=public.settings.intake_hash_secret,
    )
    assert not report.rejected, report.rejected
    staff["hotline_12345"] = report.imported[0].opinion_id

    requests = await public.requests()
    for channel, opinion_id in own.items():
        assert requests[opinion_id]["media_url"] == photo.format(channel), channel
    for channel, opinion_id in staff.items():
        assert requests[opinion_id]["media_url"] is None, channel
    everything = await public.everything_public()
    for channel in staff:
        assert photo.format(channel) not in everything, channel
    # Positions, whatever the channel: 0.001° at most (about 100 m), never as given.
    for request in requests.values():
        for axis in ("lat", "long"):
            value = request[axis]
            if value is not None:
                assert round(value, 3) == value, (axis, value)
    assert "39.96123456" not in everything
    assert "116.33016789" not in everything
    assert (requests[own["open311"]]["lat"], requests[own["open311"]]["long"]) == (39.961, 116.33)


async def test_an_address_a_resident_typed_is_not_published_only_its_community(
    public: Public,
) -> None:
    door = "中关村南路8号楼2单元501室"
    location = {"community": "中关村南路社区", "address": door, "lat": 39.9621, "long": 116.3245}
    online = await public.submit(channel="online", location=location)
    qr = await public.submit(location=location)
    no_community = await public.submit(channel="online", location={"address": door})
    open311 = await public.open311_post(address_string="科学院南路菜市场东门")

    requests = await public.requests()
    assert requests[online["opinion_id"]]["address"] == "中关村南路社区"
    assert requests[qr["opinion_id"]]["address"] is None
    assert requests[no_community["opinion_id"]]["address"] is None
    # An Open311 client's address_string is what that client publishes itself.
    assert requests[open311]["address"] == "科学院南路菜市场东门"
    assert door not in await public.everything_public()


async def test_nothing_of_another_resident_is_shown_with_a_linked_case(public: Public) -> None:
    first = await public.submit(text="我家楼下（3号楼2单元）的路灯坏了，我叫王秀英电话13912345678")
    second = await public.submit(text="东门外路灯坏了三个月了，晚上很黑，请尽快修。")
    a = case_events("case_a", first["opinion_id"])
    b = case_events("case_b", second["opinion_id"])
    link = CaseLinked(
        district_id=DISTRICT,
        case_id="case_b",
        occurred_at=b["accepted"].occurred_at + timedelta(seconds=5),
        actor=LIAISON,
        related_case_id="case_a",
        relation="duplicate",
        reason="与3号楼王秀英反映的同一问题",
    )
    await public.publish(a["opened"], b["opened"], b["assigned"], b["accepted"], link)

    code = str(second["tracking_code"]).replace("-", "")
    view = (await public.client.get(f"/api/v1/track/{code}")).json()
    page = (await public.client.get(f"/t/{code}")).text
    for shown in (json.dumps(view, ensure_ascii=False), page, await public.everything_public()):
        for trace in ("王秀英", "3号楼", "13912345678", "139****5678", "case_a"):
            assert trace not in shown, trace
    assert view["status"]["stage"] == "merged"


async def test_a_suggestion_and_its_answer_reach_the_resident_but_not_the_public(
    public: Public,
) -> None:
    from contracts import SuggestionAnswered

    opinion_id = await public.open311_post()
    e = case_events("case_sg", opinion_id)
    common: dict[str, Any] = {"district_id": DISTRICT, "case_id": "case_sg", "actor": LIAISON}
    at = e["accepted"].occurred_at
    converted = CaseConvertedToSuggestion(
        **common,
        occurred_at=at + timedelta(seconds=5),
        representative_id=REPRESENTATIVE,
        title="关于王秀英家门口路灯的建议INT-TTL",
    )
    answered = SuggestionAnswered(
        **common,
        occurred_at=at + timedelta(seconds=6),
        answer="已纳入计划INT-ANS",
        answered_by="区城管局",
    )
    await public.publish(e["opened"], e["accepted"], converted, answered)
    everything = await public.everything_public()
    assert "INT-TTL" not in everything
    assert "INT-ANS" not in everything
    assert "代表建议已由区城管局答复" in everything


def test_steps_and_progress_stored_before_the_mark_existed_read_as_internal() -> None:
    """Rows written by earlier versions have no ``public`` and carry every note in
    ``last_note``: nothing of them becomes public."""
    e = case_events("case_old", "op_old")
    progress: CaseProgress | None = None
    steps: list[Step] = []
    for event in (e["opened"], e["assigned"], e["replied"], e["resolved"]):
        progress, step = evolve(progress, event, f"ev_{len(steps)}")
        steps.append(step)
    assert progress is not None
    old_progress = progress.to_json()
    del old_progress["public_note"]
    old_progress["last_note"] = "旧版本保存的内部备注"
    assert CaseProgress.from_json(old_progress).public_note is None
    notes = 0
    for step in steps:
        old = step.to_json()
        del old["public"]
        again = Step.from_json(old)
        assert again.public is False
        if again.note:
            notes += 1
            assert again.note not in "".join(describe(again, Names(), public=True))
            assert again.note in "".join(describe(again, Names()))  # the resident's view
    assert notes == 2  # the reply and the result


async def test_a_reply_staff_mark_public_in_routing_reaches_open311_and_one_unmarked_does_not(
    settings: Settings, pool: asyncpg.Pool, store: EventStore
) -> None:
    """End to end through routing's workbench API: the mark is set where staff write the
    text, carried by the event, honoured by intake."""
    async with demo_stack(settings, pool) as stack:
        posted = await stack.intake.post(
            f"{V2}/requests.json",
            data={
                "api_key": API_KEY,
                "jurisdiction_id": "demo",
                "service_code": "municipal",
                "lat": "30.2741",
                "long": "120.1551",
                "description": "东湖社区门口路灯坏了三盏，晚上很黑。",
            },
        )
        assert posted.status_code == 200, posted.text
        opinion_id = posted.json()[0]["service_request_id"]
        case_id = await stack.case_of(opinion_id)
        admin = stack.admin()
        for message, mark in (("公开答复：本周内维修", True), ("内部口径INT-PRV", False)):
            body: dict[str, Any] = {"message": message}
            if mark:
                body["public"] = True
            replied = await stack.routing.post(
                f"/api/v1/cases/{case_id}/reply", json=body, headers=admin
            )
            assert replied.status_code == 200, replied.text
        await stack.deliver()

        # As readers see the event: the message sealed inside it, opened with its key.
        events = await opened_case_events(store, case_id, stack.settings.privacy_keys())
        replies = [data for kind, data in events if kind == "CaseReplied"]
        assert [(r["message"], r["public"]) for r in replies] == [
            ("公开答复：本周内维修", True),
            ("内部口径INT-PRV", False),
        ]
        listed = (
            await stack.intake.get(f"{V2}/requests.json", params={"jurisdiction_id": "demo"})
        ).json()
        request = next(r for r in listed if r["service_request_id"] == opinion_id)
        assert request["status_notes"].endswith("公开答复：本周内维修")
        updates = await stack.intake.get(
            f"{V2}/servicerequestupdates.xml", params={"jurisdiction_id": "demo"}
        )
        root = ET.fromstring(updates.content)
        texts = [u.findtext("description") for u in root]
        assert "答复：公开答复：本周内维修" in texts
        assert "INT-PRV" not in updates.text


# --- the demo district through routing and intake ---------------------------------------


@dataclass
class DemoStack:
    """Routing and intake on one database with the demo district, their consumers fed
    by hand from the store (as Kafka would)."""

    settings: Settings
    store: EventStore
    intake_app: FastAPI
    routing_app: FastAPI
    intake: httpx.AsyncClient
    routing: httpx.AsyncClient
    extra_apps: list[FastAPI]
    """Other services' apps (reporting, notification) fed the same events."""

    def consumers(self) -> list[Consumer]:
        extra = [
            getattr(app.state, name).consumer
            for app in self.extra_apps
            for name in ("reporting", "notification")
            if hasattr(app.state, name)
        ]
        return [
            self.routing_app.state.routing.consumer,
            self.intake_app.state.intake.consumer,
            *extra,
        ]

    def now(self) -> datetime:
        """Intake's clock."""
        moment: datetime = self.intake_app.state.intake.clock()
        return moment

    async def opinion_of(self, tracking_code: str) -> str:
        """The opinion a tracking code follows."""
        view = await self.intake.get(f"/api/v1/track/{tracking_code}")
        assert view.status_code == 200, view.text
        return str(view.json()["opinion_id"])

    delivered: Checkpoint = field(default_factory=Checkpoint)

    async def deliver(self) -> None:
        """Every event stored since the last delivery to every consumer, until nothing
        new is appended (routing appends a case's events as it takes an opinion)."""
        while events := await self.store.read_all(self.delivered, limit=100_000):
            for consumer in self.consumers():
                for recorded in events:
                    await consumer.apply(recorded.envelope())
            self.delivered = events[-1].checkpoint

    async def case_of(self, opinion_id: str) -> str:
        """The case routing opened for an opinion."""
        from services.routing.ids import case_id_for

        await self.deliver()
        return case_id_for("demo", opinion_id)

    def admin(self) -> dict[str, str]:
        token = issue_token(
            self.settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="admin_demo"
        )
        return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def demo_stack(
    settings: Settings, pool: asyncpg.Pool, *extra: FastAPI
) -> AsyncIterator[DemoStack]:
    """The demo district in routing (with its district admin) and intake; ``extra``: other
    services' apps whose consumers get the events too (their lifespans run here)."""
    await prepare(settings, pool)
    service_settings, intake_app = build("intake", settings)
    _, routing_app = build("routing", settings)
    async with contextlib.AsyncExitStack() as stack:
        for app in (intake_app, routing_app, *extra):
            await stack.enter_async_context(app.router.lifespan_context(app))
        intake = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=intake_app), base_url="http://intake"
            )
        )
        routing = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=routing_app), base_url="http://routing"
            )
        )
        yield DemoStack(
            service_settings, EventStore(pool), intake_app, routing_app, intake, routing, [*extra]
        )
