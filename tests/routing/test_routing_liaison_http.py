"""The liaison API over HTTP (real database, no Kafka): a department sees and works only
what was whistled to it; reception days cancelled and moved; activities and rosters kept
by the stations' own liaison officers; refusals as problem documents in both languages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts import Actor, ActorRole, Location, OpinionSubmitted
from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.store import EventStore
from services.routing.app import create_app
from services.routing.bootstrap import Routing
from services.routing.classification import JiebaSegmenter
from services.routing.district_file import DistrictFile
from services.routing.ids import case_id_for
from services.routing.settings import RoutingSettings
from tests.routing.routing_support import ADMIN, Clock, act, append_event, load_case


class Client:
    def __init__(self, client: httpx.AsyncClient, settings: RoutingSettings) -> None:
        self.client = client
        self.settings = settings

    def _headers(self, role: Role, subject: str) -> dict[str, str]:
        token = issue_token(self.settings, role=role, district_id="demo", subject=subject)
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, role: Role, subject: str) -> httpx.Response:
        return await self.client.get(path, headers=self._headers(role, subject))

    async def post(self, path: str, role: Role, subject: str, body: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self._headers(role, subject))


@pytest.fixture
async def app(
    routing_settings: RoutingSettings,
    segmenter: JiebaSegmenter,
    clock: Clock,
    demo_file: DistrictFile,
) -> AsyncIterator[FastAPI]:
    settings = routing_settings.model_copy(update={"routing_consume": False})
    application = create_app(settings, clock=clock, segmenter=segmenter)
    async with application.router.lifespan_context(application):
        await application.state.routing.directory.change("demo", demo_file, ADMIN)
        yield application


@pytest.fixture
async def api(app: FastAPI, routing_settings: RoutingSettings) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        yield Client(client, routing_settings)


async def whistled_case(routing: Routing, store: EventStore, clock: Clock, department: str) -> str:
    opinion = OpinionSubmitted(
        district_id="demo",
        occurred_at=clock.now,
        actor=Actor(id="subj_" + uuid.uuid4().hex[:8], role=ActorRole.RESIDENT),
        opinion_id="op_" + uuid.uuid4().hex[:12],
        channel="qr",
        text="小区楼下餐馆油烟直排，熏得没法开窗",
        location=Location(station_code="dh_home", community="东湖社区", address="东湖路12号"),
    )
    await routing.consumer.apply(await append_event(store, opinion))
    case_id = case_id_for("demo", opinion.opinion_id)
    state = await load_case(routing, case_id)
    assert state is not None
    liaison = Actor(id="lo_dh_01", role=ActorRole.LIAISON)
    await act(routing, "accept", "demo", case_id, liaison)
    await act(
        routing,
        "escalate",
        "demo",
        case_id,
        liaison,
        to_level="department",
        department_code=department,
        reason="请部门执法",
    )
    return case_id


async def test_a_department_sees_and_works_only_what_was_whistled_to_it(
    api: Client, app: FastAPI, store: EventStore, clock: Clock
) -> None:
    routing: Routing = app.state.routing
    ours = await whistled_case(routing, store, clock, "chengguan")
    theirs = await whistled_case(routing, store, clock, "huanjing")

    queue = await api.get("/api/v1/department/whistles", Role.DEPARTMENT, "cg_01")
    assert queue.status_code == 200, queue.text
    assert [w["case_id"] for w in queue.json()["whistles"]] == [ours]
    assert queue.json()["departments"] == ["chengguan"]

    seen = await api.get(f"/api/v1/department/cases/{ours}", Role.DEPARTMENT, "cg_01")
    assert seen.status_code == 200
    assert seen.json()["address"] == "东湖路12号"
    assert [w["department_code"] for w in seen.json()["whistles"]] == ["chengguan"]
    hidden = await api.get(f"/api/v1/department/cases/{theirs}", Role.DEPARTMENT, "cg_01")
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    # Nor the district's case list.
    listed = await api.get("/api/v1/cases", Role.DEPARTMENT, "cg_01")
    assert listed.status_code in (401, 403)

    reported = await api.post(
        f"/api/v1/department/cases/{ours}/report", Role.DEPARTMENT, "cg_01", {"note": "已派中队"}
    )
    assert reported.status_code == 200, reported.text
    answered = await api.post(
        f"/api/v1/department/cases/{ours}/respond",
        Role.DEPARTMENT,
        "cg_01",
        {"action": "已责令安装油烟净化设备"},
    )
    assert answered.status_code == 200, answered.text
    whistle = answered.json()["whistles"][0]
    assert (whistle["reported_by"], whistle["responded_by"]) == ("cg_01", "cg_01")
    again = await api.post(
        f"/api/v1/department/cases/{theirs}/report", Role.DEPARTMENT, "cg_01", {}
    )
    assert again.status_code == 404

    # A token naming someone no department lists is refused before any route runs.
    stranger = await api.get("/api/v1/department/whistles", Role.DEPARTMENT, "nobody_01")
    assert stranger.status_code == 401
    assert stranger.json()["type"].endswith("/not-active-staff")


async def test_a_liaison_officer_cancels_and_moves_their_station_s_reception_days(
    api: Client, app: FastAPI
) -> None:
    days = await api.get(
        "/api/v1/directory/stations/dh_home/reception-days", Role.LIAISON, "lo_dh_01"
    )
    assert days.status_code == 200
    mine = [d for d in days.json()["days"] if d["representative_id"] == "r001"]
    first, second = mine[0]["day"], mine[1]["day"]
    assert mine[0]["leading_cadre"] is True

    body = {
        "representative_id": "r001",
        "station_code": "dh_home",
        "day": first,
        "reason": "外出学习",
    }
    other = await api.post(
        "/api/v1/directory/reception-days/cancel", Role.LIAISON, "lo_dh_02", body
    )
    assert other.status_code == 403
    cancelled = await api.post(
        "/api/v1/directory/reception-days/cancel", Role.LIAISON, "lo_dh_01", body
    )
    assert cancelled.status_code == 200, cancelled.text
    twice = await api.post(
        "/api/v1/directory/reception-days/cancel", Role.LIAISON, "lo_dh_01", body
    )
    assert twice.status_code == 404
    moved = await api.post(
        "/api/v1/directory/reception-days/move",
        Role.LIAISON,
        "lo_dh_01",
        {"representative_id": "r001", "station_code": "dh_home", "day": second, "to_day": first},
    )
    assert moved.status_code == 200, moved.text

    after = await api.get(
        "/api/v1/directory/stations/dh_home/reception-days", Role.LIAISON, "lo_dh_01"
    )
    statuses = {
        (d["day"], d["status"]) for d in after.json()["days"] if d["representative_id"] == "r001"
    }
    assert {(second, "moved"), (first, "scheduled")} <= statuses
    assert (first, "cancelled") not in statuses  # the moved day took its place


async def test_activities_and_rosters_are_kept_by_the_station_s_own_staff(
    api: Client,
) -> None:
    activity = {
        "id": "act_test_01",
        "station": "dh_home",
        "kind": "reception",
        "title": "代表进站接待",
        "held_on": "2026-09-24",
        "representatives": ["r001", "r002"],
        "residents_met": 7,
        "opinions_taken": 3,
    }
    refused = await api.post("/api/v1/activities", Role.LIAISON, "lo_dh_02", activity)
    assert refused.status_code == 403
    recorded = await api.post("/api/v1/activities", Role.LIAISON, "lo_dh_01", activity)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["summary"] == {"ActivityRecorded": 1}
    unknown = await api.post(
        "/api/v1/activities",
        Role.LIAISON,
        "lo_dh_01",
        {**activity, "id": "act_test_02", "representatives": ["r999"]},
    )
    assert unknown.status_code == 422
    assert "r999" in unknown.json()["detail"]

    listed = await api.get(
        "/api/v1/activities?station=dh_home&from=2026-09-01&to=2026-09-30",
        Role.REPRESENTATIVE,
        "r001",
    )
    found = {a["activity_id"]: a for a in listed.json()["activities"]}
    assert found["act_test_01"]["kind_label"] == {"zh": "接待选民", "en": "reception of residents"}

    roster = await api.get(
        "/api/v1/directory/stations/dh_home/spokespersons", Role.LIAISON, "lo_dh_01"
    )
    assert {s["spokesperson_id"] for s in roster.json()["spokespersons"]} >= {"sp_dh_01"}
    people = await api.get(
        "/api/v1/directory/people?role=community_commissioner", Role.LIAISON, "lo_dh_01"
    )
    assert [p["person_id"] for p in people.json()["people"]][:2] == ["cm_dh_01", "cm_dh_02"]
