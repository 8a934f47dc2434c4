"""The workbench and directory API over HTTP (real database, no Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts import Actor, ActorRole, FeedbackSubmitted, OpinionWithdrawn
from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.store import EventStore
from services.routing.app import create_app
from services.routing.bootstrap import Routing
from services.routing.case_state import CaseStatus
from services.routing.classification import JiebaSegmenter
from services.routing.ids import case_id_for
from services.routing.settings import RoutingSettings
from tests.routing.routing_support import (
    ADMIN,
    DEMO_FILE,
    SHANGHAI,
    Clock,
    Submit,
    append_event,
    load_case,
)

OTHER_DISTRICT = """
district: {code: other, name_zh: 邻区}
streets:
  - code: hx
    name_zh: 河西街道
    communities: [{name: 河西社区, electoral_district: 第一选区}]
stations:
  - {code: hx_home, name_zh: 河西街道人大代表之家, kind: home, street: hx,
     communities: [河西社区], liaison_officers: [lo_hx_01]}
representatives:
  - {id: h001, name_zh: 周建平, level: district, electoral_district: 第一选区,
     residence_community: 河西社区, expertise: [市政设施], stations: [hx_home]}
taxonomy:
  default_deadlines: {normal: {response: 2wd, resolution: 15wd}}
  categories:
    - {code: municipal, name_zh: 市政设施, keywords: [路灯, 井盖], expertise: [市政设施]}
"""


STAFF_ACCOUNTS = [
    ("demo", "admin_demo", Role.DISTRICT_ADMIN),
    ("demo", "audit_01", Role.AUDITOR),
    ("other", "admin_other", Role.DISTRICT_ADMIN),
    ("other", "admin_x", Role.DISTRICT_ADMIN),
]


class Api:
    """A client that speaks for one staff member."""

    def __init__(self, client: httpx.AsyncClient, settings: RoutingSettings) -> None:
        self.client = client
        self.settings = settings

    def headers(self, role: Role, subject: str, district: str = "demo") -> dict[str, str]:
        token = issue_token(self.settings, role=role, district_id=district, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    async def get(
        self, path: str, role: Role, subject: str, district: str = "demo"
    ) -> httpx.Response:
        return await self.client.get(path, headers=self.headers(role, subject, district))

    async def post(
        self,
        path: str,
        role: Role,
        subject: str,
        body: Any = None,
        district: str = "demo",
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {**self.headers(role, subject, district), **kwargs.pop("headers", {})}
        return await self.client.post(path, json=body, headers=headers, **kwargs)


@pytest.fixture
async def app(
    routing_settings: RoutingSettings, segmenter: JiebaSegmenter, clock: Clock
) -> AsyncIterator[FastAPI]:
    settings = routing_settings.model_copy(update={"routing_consume": False})
    application = create_app(settings, clock=clock, segmenter=segmenter)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(app: FastAPI, routing_settings: RoutingSettings) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        api = Api(client, routing_settings)
        # Administrators and auditors are known by their accounts (the directory lists
        # the other roles).
        routing: Routing = app.state.routing
        for district, person, role in STAFF_ACCOUNTS:
            await routing.accounts.invite(district, person, role, ADMIN)
        response = await client.post(
            "/api/v1/directory/import",
            content=DEMO_FILE.read_bytes(),
            headers={**api.headers(Role.DISTRICT_ADMIN, "admin_demo"), "Content-Type": "text/yaml"},
        )
        assert response.status_code == 200, response.text
        yield api


async def open_case(
    app: FastAPI, routing_settings: RoutingSettings, submit: Submit, text: str, **where: Any
) -> str:
    routing: Routing = app.state.routing
    opinion = await submit(text, **where)
    await routing.consumer.apply(opinion)
    return case_id_for(opinion.district_id, opinion.data["opinion_id"])


async def test_a_representative_works_a_case_from_the_queue_to_its_close(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    case_id = await open_case(
        app,
        routing_settings,
        submit,
        "电梯坏了，物业不修",
        station_code="dh_donghu",
        community="东湖社区",
    )

    queue = await api.get("/api/v1/queue", Role.REPRESENTATIVE, "r002")
    assert queue.status_code == 200
    assert [c["case_id"] for c in queue.json()["cases"]] == [case_id]
    assert queue.json()["cases"][0]["status_label"] == {
        "zh": "待报到",
        "en": "assigned, awaiting acceptance",
    }

    accepted = await api.post(f"/api/v1/cases/{case_id}/accept", Role.REPRESENTATIVE, "r002")
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "in_progress"
    replied = await api.post(
        f"/api/v1/cases/{case_id}/reply",
        Role.REPRESENTATIVE,
        "r002",
        {"message": "已联系物业，明天检修"},
    )
    assert replied.status_code == 200
    resolved = await api.post(
        f"/api/v1/cases/{case_id}/resolve",
        Role.REPRESENTATIVE,
        "r002",
        {"result": "电梯已修复", "evidence_urls": ["https://files.example.cn/after.jpg"]},
    )
    assert resolved.json()["status"] == "resolved"
    closed = await api.post(
        f"/api/v1/cases/{case_id}/close", Role.LIAISON, "lo_dh_02", {"note": "回访核实"}
    )
    assert closed.json()["status"] == "closed"
    assert [a["command"] for a in closed.json()["allowed_actions"]] == [
        "reopen",
        "link",
        "rate_department",
        "callback",
    ]

    detail = await api.get(f"/api/v1/cases/{case_id}", Role.AUDITOR, "audit_01")
    assert detail.status_code == 200
    body = detail.json()
    assert [h["type"] for h in body["history"]] == [
        "CaseOpened",
        "CaseAssigned",
        "CaseAccepted",
        "CaseReplied",
        "CaseResolved",
        "CaseClosed",
    ]
    assert body["history"][2]["actor"] == {"id": "r002", "role": "representative"}
    assert body["opinion"]["text"] == "电梯坏了，物业不修"
    assert body["representative_name"] == "李秀英"
    assert body["station_name"] == "东湖社区代表联络站"


async def test_an_illegal_transition_is_a_409_problem_naming_the_allowed_ones(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    case_id = await open_case(app, routing_settings, submit, "路灯坏了", station_code="dh_donghu")

    response = await api.post(
        f"/api/v1/cases/{case_id}/close", Role.LIAISON, "lo_dh_02", {"note": "想直接结项"}
    )

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/illegal-transition")
    assert problem["case_status"] == "assigned"
    assert problem["command"] == "close"
    assert problem["allowed_transitions"] == [
        "accept",
        "reply",
        "classify",
        "transfer",
        "withdraw",
        "merge",
        "link",
        "department_report",
        "department_respond",
        "hand_on",
    ]
    assert "报到" in problem["detail"]
    assert "accept" in problem["detail_en"]


async def test_a_token_of_another_district_cannot_see_or_touch_the_case(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    imported = await api.client.post(
        "/api/v1/directory/import",
        content=OTHER_DISTRICT.encode(),
        headers=api.headers(Role.DISTRICT_ADMIN, "admin_other", "other"),
    )
    assert imported.status_code == 200, imported.text
    case_id = await open_case(app, routing_settings, submit, "路灯坏了", station_code="dh_donghu")
    theirs = await open_case(
        app, routing_settings, submit, "路灯坏了", district="other", station_code="hx_home"
    )

    seen = await api.get(f"/api/v1/cases/{case_id}", Role.DISTRICT_ADMIN, "admin_x", "other")
    touched = await api.post(
        f"/api/v1/cases/{case_id}/accept", Role.DISTRICT_ADMIN, "admin_x", district="other"
    )
    listed = await api.get("/api/v1/cases", Role.DISTRICT_ADMIN, "admin_x", "other")
    listed_here = await api.get("/api/v1/cases", Role.DISTRICT_ADMIN, "admin_demo")
    own = await api.get(f"/api/v1/cases/{case_id}", Role.DISTRICT_ADMIN, "admin_demo")

    assert seen.status_code == 404
    assert seen.json()["type"].endswith("/case-not-found")
    assert touched.status_code == 404
    assert [c["case_id"] for c in listed.json()["cases"]] == [theirs]
    assert [c["case_id"] for c in listed_here.json()["cases"]] == [case_id]
    assert own.status_code == 200


async def test_roles_limit_what_staff_may_do(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    case_id = await open_case(app, routing_settings, submit, "路灯坏了", station_code="dh_donghu")

    auditor = await api.post(f"/api/v1/cases/{case_id}/accept", Role.AUDITOR, "audit_01")
    someone_else = await api.post(f"/api/v1/cases/{case_id}/accept", Role.REPRESENTATIVE, "r017")
    representative_transfer = await api.post(
        f"/api/v1/cases/{case_id}/transfer",
        Role.REPRESENTATIVE,
        "r002",
        {"reason": "x", "to_representative_id": "r017"},
    )
    anonymous = await api.client.get(f"/api/v1/cases/{case_id}")
    spokesperson = await api.get(f"/api/v1/cases/{case_id}", Role.SPOKESPERSON, "sp_dh_01")

    assert auditor.status_code == 403
    assert someone_else.status_code == 403
    assert someone_else.json()["type"].endswith("/not-your-case")
    assert representative_transfer.status_code == 403
    assert anonymous.status_code == 401
    assert spokesperson.status_code == 403


async def test_a_liaison_officer_triages_a_case_from_the_stations_queue(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    case_id = await open_case(
        app, routing_settings, submit, "社区活动室能不能延长开放时间", station_code="xs_fenglin"
    )

    queue = await api.get("/api/v1/queue", Role.LIAISON, "lo_xs_02")
    assert [c["case_id"] for c in queue.json()["cases"]] == [case_id]
    classified = await api.post(
        f"/api/v1/cases/{case_id}/classify",
        Role.LIAISON,
        "lo_xs_02",
        {"category_code": "elderly", "reason": "活动室主要服务老年人"},
    )

    assert classified.status_code == 200, classified.text
    body = classified.json()
    assert body["status"] == "assigned"
    assert body["category_code"] == "elderly"
    assert body["representative_id"] is not None
    unknown = await api.post(
        f"/api/v1/cases/{case_id}/classify",
        Role.LIAISON,
        "lo_xs_02",
        {"category_code": "nope", "reason": "x"},
    )
    assert unknown.status_code == 422


async def test_escalation_and_transfer_keep_one_case_with_its_history(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    case_id = await open_case(app, routing_settings, submit, "井盖缺失", station_code="dh_donghu")
    await api.post(
        f"/api/v1/cases/{case_id}/transfer",
        Role.LIAISON,
        "lo_dh_02",
        {"reason": "专长对口", "to_representative_id": "r010"},
    )
    await api.post(f"/api/v1/cases/{case_id}/accept", Role.REPRESENTATIVE, "r010")

    escalated = await api.post(
        f"/api/v1/cases/{case_id}/escalate",
        Role.REPRESENTATIVE,
        "r010",
        {"to_level": "department", "to_name": "区城管局", "reason": "需专业队伍", "due_in": "3wd"},
    )

    assert escalated.status_code == 200, escalated.text
    body = escalated.json()
    assert body["status"] == "escalated"
    assert body["station_code"] == "dh_liuan"
    assert body["representative_id"] == "r010"
    # Escalated Monday 28 Sep 2026 10:00: 3 working days are 29, 30 Sep and 8 Oct.
    assert body["escalations"] == [
        {"to_level": "department", "to_name": "区城管局", "due": "2026-10-08T17:30:00+08:00"}
    ]
    # The liaison officer of the station it went to (dh_liuan) sees it now.
    detail = (await api.get(f"/api/v1/cases/{case_id}", Role.LIAISON, "lo_dh_04")).json()
    assert [h["label"] for h in detail["history"]] == ["立案", "分派", "转办", "报到", "吹哨"]


async def test_a_case_transferred_to_another_district_continues_there_with_its_record(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    imported = await api.client.post(
        "/api/v1/directory/import",
        content=OTHER_DISTRICT.encode(),
        headers=api.headers(Role.DISTRICT_ADMIN, "admin_other", "other"),
    )
    assert imported.status_code == 200, imported.text
    case_id = await open_case(
        app, routing_settings, submit, "河西社区路灯坏了", station_code="dh_donghu"
    )

    moved = await api.post(
        f"/api/v1/cases/{case_id}/transfer",
        Role.DISTRICT_ADMIN,
        "admin_demo",
        {
            "reason": "属河西社区，归邻区管辖",
            "to_district_id": "other",
            "to_station_code": "hx_home",
        },
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "transferred_out"
    target = moved.json()["transferred_to"]
    assert target["district_id"] == "other"
    there = await api.get(f"/api/v1/cases/{target['case_id']}", Role.LIAISON, "lo_hx_01", "other")
    assert there.status_code == 200
    body = there.json()
    assert body["category_code"] == "municipal"
    assert body["station_code"] == "hx_home"
    assert body["representative_id"] == "h001"
    assert body["opinion_id"] == moved.json()["opinion_id"]
    assert body["transferred_from"]["case_id"] == case_id
    assert [h["type"] for h in body["transferred_from"]["history"]][-1] == "CaseTransferred"
    again = await api.post(
        f"/api/v1/cases/{case_id}/transfer",
        Role.DISTRICT_ADMIN,
        "admin_demo",
        {"reason": "x", "to_district_id": "other"},
    )
    assert again.status_code == 409


async def transferred_to_other(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> tuple[str, httpx.Response]:
    """A case of the demo district transferred to the district "other" (imported first):
    its id and the transfer's answer."""
    imported = await api.client.post(
        "/api/v1/directory/import",
        content=OTHER_DISTRICT.encode(),
        headers=api.headers(Role.DISTRICT_ADMIN, "admin_other", "other"),
    )
    assert imported.status_code == 200, imported.text
    case_id = await open_case(
        app, routing_settings, submit, "河西社区路灯坏了", station_code="dh_donghu"
    )
    moved = await api.post(
        f"/api/v1/cases/{case_id}/transfer",
        Role.DISTRICT_ADMIN,
        "admin_demo",
        {"reason": "归邻区管辖", "to_district_id": "other", "to_station_code": "hx_home"},
    )
    assert moved.status_code == 200, moved.text
    return case_id, moved


async def test_a_withdrawal_after_a_transfer_closes_the_case_in_the_other_district(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit, store: EventStore
) -> None:
    case_id, moved = await transferred_to_other(api, app, routing_settings, submit)
    there = moved.json()["transferred_to"]["case_id"]
    withdrawn = OpinionWithdrawn(
        district_id="demo",
        occurred_at=datetime.now(SHANGHAI),
        actor=Actor(id="subj_resident", role=ActorRole.RESIDENT),
        opinion_id=moved.json()["opinion_id"],
        reason="已自行解决",
    )
    service: Routing = app.state.routing
    consumer = service.consumer

    await consumer.apply(await append_event(store, withdrawn))

    target = await load_case(service, there)
    assert target is not None
    assert target.status is CaseStatus.CLOSED
    assert [r.event_type for r in await store.read_stream(f"case-{there}")][-1] == "CaseClosed"
    source = await load_case(service, case_id)
    assert source is not None
    assert source.status is CaseStatus.TRANSFERRED_OUT


async def test_a_rating_of_a_case_transferred_away_reopens_it_in_the_other_district(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit, store: EventStore
) -> None:
    # The resident's tracking link follows the transfer, so intake records their rating
    # in the opinion's district with the other district's case id.
    _, moved = await transferred_to_other(api, app, routing_settings, submit)
    there = moved.json()["transferred_to"]["case_id"]
    accepted = await api.post(
        f"/api/v1/cases/{there}/accept", Role.REPRESENTATIVE, "h001", {}, district="other"
    )
    assert accepted.status_code == 200, accepted.text
    resolved = await api.post(
        f"/api/v1/cases/{there}/resolve",
        Role.REPRESENTATIVE,
        "h001",
        {"result": "路灯已修好"},
        district="other",
    )
    assert resolved.status_code == 200, resolved.text
    rating = FeedbackSubmitted(
        district_id="demo",
        occurred_at=datetime.now(SHANGHAI),
        actor=Actor(id="subj_resident", role=ActorRole.RESIDENT),
        opinion_id=moved.json()["opinion_id"],
        case_id=there,
        resolution_seq=1,
        satisfaction=1,
        resolved=False,
    )
    service: Routing = app.state.routing

    applied = await service.consumer.apply(await append_event(store, rating))

    assert applied
    target = await load_case(service, there)
    assert target is not None
    assert target.status is CaseStatus.IN_PROGRESS
    assert [r.event_type for r in await store.read_stream(f"case-{there}")][-1] == "CaseReopened"
    detail = await api.get(f"/api/v1/cases/{there}", Role.LIAISON, "lo_hx_01", "other")
    assert detail.json()["feedback"]["satisfaction"] == 1


async def test_a_repeated_request_with_the_same_idempotency_key_acts_once(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit, store: EventStore
) -> None:
    case_id = await open_case(app, routing_settings, submit, "路灯坏了", station_code="dh_donghu")
    key = {"Idempotency-Key": "reply-7f3a"}

    for _ in range(2):
        response = await api.post(
            f"/api/v1/cases/{case_id}/reply",
            Role.LIAISON,
            "lo_dh_02",
            {"message": "已登记"},
            headers=key,
        )
        assert response.status_code == 200

    types = [r.event_type for r in await store.read_stream(f"case-{case_id}")]
    assert types.count("CaseReplied") == 1


async def test_duplicates_can_be_merged_and_both_cases_show_the_cluster(
    api: Api, app: FastAPI, routing_settings: RoutingSettings, submit: Submit
) -> None:
    first = await open_case(
        app, routing_settings, submit, "三号楼门口路灯坏了", community="河畔社区"
    )
    second = await open_case(
        app, routing_settings, submit, "三号楼门口路灯坏了！！", community="河畔社区"
    )

    merged = await api.post(
        f"/api/v1/cases/{second}/merge",
        Role.LIAISON,
        "lo_nc_03",
        {"into_case_id": first, "reason": "同一事项"},
    )

    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "merged"
    cluster = (await api.get(f"/api/v1/cases/{first}", Role.LIAISON, "lo_nc_03")).json()["cluster"]
    assert {(c["case_id"], c["relation"]) for c in cluster} == {
        (second, "duplicate"),
        (second, "merged"),
    }


async def test_the_directory_is_administered_over_http(api: Api) -> None:
    station = {
        "code": "dh_new",
        "name_zh": "东湖新村代表联系点",
        "kind": "contact_point",
        "street": "dh",
        "communities": ["新桥社区"],
        "position": {"lat": 30.2690, "long": 120.1545},
    }
    added = await api.post("/api/v1/directory/stations", Role.DISTRICT_ADMIN, "admin_demo", station)
    by_liaison = await api.post("/api/v1/directory/stations", Role.LIAISON, "lo_dh_01", station)
    qr = await api.get("/api/v1/directory/stations/dh_new/qr.svg", Role.LIAISON, "lo_dh_01")
    retired = await api.post(
        "/api/v1/directory/stations/dh_new/retire",
        Role.DISTRICT_ADMIN,
        "admin_demo",
        {"reason": "试点结束"},
    )
    view = await api.get("/api/v1/directory/stations/dh_new", Role.LIAISON, "lo_dh_01")
    unknown = await api.post(
        "/api/v1/directory/stations/nope/retire", Role.DISTRICT_ADMIN, "admin_demo", {}
    )
    taxonomy = await api.get("/api/v1/directory/taxonomy", Role.REPRESENTATIVE, "r001")
    rep = await api.get("/api/v1/directory/representatives/r002", Role.LIAISON, "lo_dh_01")

    assert added.status_code == 200
    assert added.json()["summary"] == {"StationRegistered": 1}
    assert by_liaison.status_code == 403
    assert qr.status_code == 200
    assert qr.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in qr.content
    assert retired.status_code == 200
    assert view.json()["active"] is False
    assert unknown.status_code == 404
    assert taxonomy.json()["urgent_category"] == "safety"
    assert rep.json()["reception_days"][0] == {"station_code": "dh_donghu", "day": "2026-10-20"}


async def test_an_invalid_district_file_is_a_422_listing_the_problems(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/directory/import",
        content=(
            "district: {code: demo, name_zh: 示范区}\n"
            "stations:\n  - {code: s, name_zh: 站, kind: home, street: none}\n"
        ).encode(),
        headers=api.headers(Role.DISTRICT_ADMIN, "admin_demo"),
    )

    assert response.status_code == 422
    assert any("none" in p for p in response.json()["problems"])


async def test_the_service_reports_ready(api: Api) -> None:
    assert (await api.client.get("/readyz")).status_code == 200
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}


async def test_the_asyncapi_document_names_what_routing_consumes_and_publishes(
    api: Api,
) -> None:
    response = await api.client.get("/asyncapi")
    assert response.status_code == 200
    document = response.json()
    addresses = [c["address"] for c in document["channels"].values()]
    assert any(a.endswith("minqing.cases.v1") for a in addresses)
    assert any(a.endswith("minqing.opinions.v1") for a in addresses)
    assert {"CaseOpened", "CaseAssigned", "StationRegistered"} <= set(
        document["components"]["schemas"]
    )
