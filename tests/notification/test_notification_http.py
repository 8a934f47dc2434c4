"""The notification admin API over HTTP: the contact book, rules, templates, outside
subscriptions and the delivery log, for district admins of their own district only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.store import EventStore
from minqing.sink import Sink
from minqing.system import DEMO_CONTACTS_FILE
from services.notification.app import create_app
from services.notification.contact_book import parse_contact_file
from services.notification.settings import NotificationSettings
from tests.intake.intake_support import publish
from tests.notification.notification_support import Clock
from tests.staff_support import staff_events


class Api:
    def __init__(self, client: httpx.AsyncClient, settings: NotificationSettings) -> None:
        self.client = client
        self.settings = settings

    def as_(
        self, role: Role, district: str = "demo", subject: str = "admin_demo"
    ) -> dict[str, str]:
        token = issue_token(self.settings, role=role, district_id=district, subject=subject)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(
    notification_settings: NotificationSettings, pool: asyncpg.Pool, clock: Clock, store: EventStore
) -> AsyncIterator[Api]:
    app: FastAPI = create_app(notification_settings, pool=pool, clock=clock, background=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as client,
    ):
        # The callers are staff routing knows (their events folded into the roster): the
        # administrator of both districts, and a liaison officer of a station of demo.
        consumer = app.state.notification.consumer
        demo = [("admin_demo", Role.DISTRICT_ADMIN), ("admin_demo", Role.LIAISON)]
        await publish(store, consumer, staff_events("demo", demo, station="s", desk="desk"))
        other = [("admin_demo", Role.DISTRICT_ADMIN)]
        await publish(store, consumer, staff_events("other", other, station="s"))
        yield Api(client, notification_settings)


async def test_a_district_admin_imports_and_edits_the_contact_book(api: Api) -> None:
    admin = api.as_(Role.DISTRICT_ADMIN)
    imported = await api.client.post(
        "/api/v1/contacts/import", content=DEMO_CONTACTS_FILE.read_bytes(), headers=admin
    )
    assert imported.status_code == 200, imported.text
    in_file = len(parse_contact_file(DEMO_CONTACTS_FILE.read_text(encoding="utf-8")).contacts)
    assert imported.json()["contacts"] == imported.json()["added"] == in_file
    again = await api.client.post(
        "/api/v1/contacts/import", content=DEMO_CONTACTS_FILE.read_bytes(), headers=admin
    )
    assert again.json()["added"] == again.json()["changed"] == 0  # safe to repeat

    r001 = (await api.client.get("/api/v1/contacts/r001", headers=admin)).json()
    assert r001["email"] == "r001@demo.minqing.local"
    changed = await api.client.put(
        "/api/v1/contacts/r001",
        json={**r001, "preferred": ["sms", "email"], "mobile": "13911112222"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["preferred"] == ["sms", "email"]
    wrong = await api.client.put(
        "/api/v1/contacts/r001", json={**r001, "mobile": "12345"}, headers=admin
    )
    assert wrong.status_code == 422
    assert wrong.headers["content-type"] == "application/problem+json"
    assert (await api.client.delete("/api/v1/contacts/r001", headers=admin)).status_code == 204
    assert (await api.client.get("/api/v1/contacts/r001", headers=admin)).status_code == 404


async def test_only_a_district_admin_of_the_district_sees_its_contacts(api: Api) -> None:
    admin = api.as_(Role.DISTRICT_ADMIN)
    await api.client.post(
        "/api/v1/contacts/import", content=DEMO_CONTACTS_FILE.read_bytes(), headers=admin
    )
    liaison = await api.client.get("/api/v1/contacts", headers=api.as_(Role.LIAISON))
    assert liaison.status_code == 403
    other = api.as_(Role.DISTRICT_ADMIN, district="other")
    assert (await api.client.get("/api/v1/contacts", headers=other)).json() == {"contacts": []}
    assert (await api.client.get("/api/v1/contacts/r001", headers=other)).status_code == 404
    refused = await api.client.post(
        "/api/v1/contacts/import", content=DEMO_CONTACTS_FILE.read_bytes(), headers=other
    )
    assert refused.status_code == 422  # the file is for another district
    assert (await api.client.get("/api/v1/contacts")).status_code == 401


async def test_a_district_switches_a_rule_and_writes_its_own_template(api: Api) -> None:
    admin = api.as_(Role.DISTRICT_ADMIN)
    rules = (await api.client.get("/api/v1/rules", headers=admin)).json()["rules"]
    assert {r["name"] for r in rules} >= {"case_assigned", "receipt", "overdue", "urgent_case"}
    off = await api.client.put(
        "/api/v1/rules/case_assigned", json={"enabled": True, "channels": ["sms"]}, headers=admin
    )
    assert off.json()["district_channels"] == ["sms"]
    assert (await api.client.put("/api/v1/rules/nope", json={}, headers=admin)).status_code == 404

    shipped = (await api.client.get("/api/v1/templates/receipt", headers=admin)).json()
    assert shipped["overridden"] is False
    bad = await api.client.put(
        "/api/v1/templates/receipt", json={"subject": "{{ x", "body": "y"}, headers=admin
    )
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("/invalid-template")
    own = await api.client.put(
        "/api/v1/templates/receipt",
        json={"subject": "示范区回执 / Receipt", "body": "查询码 {{ tracking_code }}"},
        headers=admin,
    )
    assert own.json()["overridden"] is True
    back = await api.client.delete("/api/v1/templates/receipt", headers=admin)
    assert back.json() == shipped


async def test_a_subscription_is_created_with_its_secret_once_and_managed(
    api: Api, sink: Sink
) -> None:
    admin = api.as_(Role.DISTRICT_ADMIN)
    insecure = await api.client.post(
        "/api/v1/subscriptions",
        json={"name": "市热线", "url": "http://12345.example.cn/hook"},
        headers=admin,
    )
    assert insecure.status_code == 422  # https, except to this machine
    created = await api.client.post(
        "/api/v1/subscriptions",
        json={
            "name": "市热线",
            "url": f"http://127.0.0.1:{sink.http_port}/webhook/x",
            "event_types": ["CaseOpened", "CaseResolved"],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    sid, secret = body["subscription_id"], body["secret"]
    assert secret.startswith("whsec_")
    listed = (await api.client.get("/api/v1/subscriptions", headers=admin)).json()
    assert "secret" not in listed["subscriptions"][0]
    paused = await api.client.post(f"/api/v1/subscriptions/{sid}/pause", headers=admin)
    assert paused.json()["status"] == "paused"
    resumed = await api.client.post(f"/api/v1/subscriptions/{sid}/resume", headers=admin)
    assert resumed.json()["status"] == "active"
    rotated = await api.client.post(f"/api/v1/subscriptions/{sid}/rotate-secret", headers=admin)
    assert rotated.json()["secret"] not in (secret, None)
    log = await api.client.get(f"/api/v1/subscriptions/{sid}/deliveries", headers=admin)
    assert log.json() == {"deliveries": []}
    other = api.as_(Role.DISTRICT_ADMIN, district="other")
    assert (await api.client.get(f"/api/v1/subscriptions/{sid}", headers=other)).status_code == 404
    deleted = await api.client.delete(f"/api/v1/subscriptions/{sid}", headers=admin)
    assert deleted.json()["status"] == "deleted"
    again = await api.client.post(f"/api/v1/subscriptions/{sid}/resume", headers=admin)
    assert again.status_code == 404


async def test_the_documents_show_the_public_topic_and_every_answer(api: Api) -> None:
    asyncapi = (await api.client.get("/asyncapi")).json()
    assert "minqing.public.{district}.cases.v1" in str(asyncapi["channels"])
    openapi = (await api.client.get("/openapi.json")).json()
    rules = openapi["paths"]["/api/v1/rules"]["get"]["responses"]["200"]
    assert rules["content"]["application/json"]["schema"]["$ref"].endswith("/RuleList")
    unknown = await api.client.post(
        "/api/v1/deliveries/00000000-0000-0000-0000-000000000000/reconcile",
        json={"outcome": "sent"},
        headers=api.as_(Role.DISTRICT_ADMIN),
    )
    assert unknown.status_code == 404
    metrics = (await api.client.get("/metrics")).text
    assert "minqing_notification_outbox_pending" in metrics
