"""``POST /api/v1/opinions`` through HTTP into the real event store: channels, tokens,
idempotency, every kind of bad input, rate limits; stations and their QR codes."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
import segno

from eventkit.identity import Role
from eventkit.privacy import PersonalDataVault
from eventkit.store import EventStore
from services.intake.ratelimit import RateLimiter, client_address, retry_after_header
from services.intake.settings import IntakeSettings
from tests.every_district import every_district
from tests.intake.intake_support import (
    DISTRICT,
    NAME,
    PHONE,
    STATION,
    Known,
    opinion_body,
    token,
)
from tests.sealed_support import opened

MakeClient = Callable[[IntakeSettings], AsyncIterator[httpx.AsyncClient]]


async def submitted(store: EventStore, opinion_id: str) -> dict[str, Any]:
    events = await store.read_stream(f"opinion-{opinion_id}")
    assert [e.event_type for e in events] == ["OpinionSubmitted"]
    return await opened(store.pool, events[0].data)


async def test_a_qr_submission_is_in_the_store_when_the_201_arrives(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.post("/api/v1/opinions", json=opinion_body())

    assert response.status_code == 201, response.text
    receipt = response.json()
    data = await submitted(store, receipt["opinion_id"])
    assert data["channel"] == "qr"
    assert data["district_id"] == DISTRICT
    assert data["location"] == {
        "station_code": STATION,
        "community": "中关村南路社区",
        "address": "东门",
        "lat": 39.9621,
        "long": 116.3245,
    }
    assert data["actor"] == {"id": "anonymous", "role": "resident"}
    assert data["submitter"] is None
    assert receipt["station_code"] == STATION
    assert len(receipt["tracking_code"]) == 14  # ABCD-EFGH-JKMN
    code = receipt["tracking_code"].replace("-", "")
    assert receipt["tracking_url"] == f"https://minqing.example.cn/t/{code}"
    assert response.headers["location"] == f"/api/v1/track/{code}"
    # The tracking code is a credential of intake's: never in the event; its keyed hash
    # is, for staff to find the case by the code a resident reads out.
    assert code not in str(data)
    async with every_district(store.pool).acquire() as conn:
        expected = await PersonalDataVault(store.pool).tracking_ref(code, conn=conn)
    assert data["tracking_ref"] == expected


async def test_an_online_submission_may_name_only_the_district(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    body = opinion_body(channel="online", district=DISTRICT, location=None)
    del body["station_code"]
    response = await client.post("/api/v1/opinions", json=body)
    assert response.status_code == 201, response.text
    data = await submitted(store, response.json()["opinion_id"])
    assert data["channel"] == "online"
    assert data["location"]["station_code"] is None


@pytest.mark.parametrize(
    ("channel", "role"),
    [
        ("walk_in", Role.LIAISON),
        ("spokesperson", Role.SPOKESPERSON),
        ("visit", Role.REPRESENTATIVE),
        ("hotline_12345", Role.HOTLINE),
        ("open311", Role.DISTRICT_ADMIN),
    ],
)
async def test_a_staff_channel_needs_a_staff_token_of_the_district(
    client: httpx.AsyncClient,
    store: EventStore,
    intake_settings: IntakeSettings,
    known: Known,
    channel: str,
    role: Role,
) -> None:
    await known(role, "sp_0031")
    await known(role, "staff_0012", "other")
    body = opinion_body(channel=channel, contact={"name": NAME, "phone": PHONE})

    anonymous = await client.post("/api/v1/opinions", json=body)
    assert anonymous.status_code == 401
    assert anonymous.json()["type"].endswith("/staff-token-required")
    assert anonymous.headers["www-authenticate"] == "Bearer"

    elsewhere = await client.post(
        "/api/v1/opinions",
        json=body,
        headers={"Authorization": token(intake_settings, role, district="other")},
    )
    assert elsewhere.status_code == 403
    assert elsewhere.json()["type"].endswith("/wrong-district")

    response = await client.post(
        "/api/v1/opinions",
        json=body,
        headers={"Authorization": token(intake_settings, role, subject="sp_0031")},
    )
    assert response.status_code == 201, response.text
    data = await submitted(store, response.json()["opinion_id"])
    assert data["channel"] == channel
    assert data["actor"] == {"id": "sp_0031", "role": role.value}
    assert data["submitter"]["subject_id"].startswith("subj_")
    if role in {Role.SPOKESPERSON, Role.REPRESENTATIVE, Role.LIAISON}:
        assert data["on_behalf_of"] == {"role": role.value, "staff_id": "sp_0031"}
    else:
        assert data["on_behalf_of"] is None


async def test_an_invalid_or_expired_token_is_refused(
    client: httpx.AsyncClient, intake_settings: IntakeSettings
) -> None:
    forged = intake_settings.model_copy(
        update={"jwt_secret": "another-key-that-is-long-enough-for-hs256"}
    )
    response = await client.post(
        "/api/v1/opinions",
        json=opinion_body(channel="walk_in"),
        headers={"Authorization": token(forged, Role.LIAISON)},
    )
    assert response.status_code == 401
    assert response.json()["title"] == "令牌无效或已过期"


async def test_an_auditor_may_not_register_opinions(
    client: httpx.AsyncClient, intake_settings: IntakeSettings, known: Known
) -> None:
    await known(Role.AUDITOR)
    response = await client.post(
        "/api/v1/opinions",
        json=opinion_body(channel="walk_in"),
        headers={"Authorization": token(intake_settings, Role.AUDITOR)},
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/role-may-not-submit")


# --- idempotency ---------------------------------------------------------------------


async def count_events(pool: asyncpg.Pool) -> int:
    return int(
        await every_district(pool).fetchval(
            "SELECT count(*) FROM eventstore.events WHERE category = 'opinion'"
        )
    )


async def test_a_retry_with_the_same_key_gets_the_same_answer_and_appends_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = opinion_body(contact={"phone": PHONE}, consent=True)

    first = await client.post("/api/v1/opinions", json=body, headers=key)
    again = await client.post("/api/v1/opinions", json=body, headers=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count_events(pool) == 1
    assert await every_district(pool).fetchval("SELECT count(*) FROM privacy.subject_keys") == 1


async def test_concurrent_retries_with_one_key_make_one_opinion(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = {"Idempotency-Key": "retry-" + uuid.uuid4().hex}
    responses = await asyncio.gather(
        *(client.post("/api/v1/opinions", json=opinion_body(), headers=key) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["tracking_code"] for r in responses}) == 1
    assert await count_events(pool) == 1


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert (await client.post("/api/v1/opinions", json=opinion_body(), headers=key)).is_success
    other = await client.post(
        "/api/v1/opinions", json=opinion_body(text="另一件事：小区垃圾桶满了没人清运"), headers=key
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert await count_events(pool) == 1


async def test_keys_of_different_callers_do_not_meet(
    client: httpx.AsyncClient, pool: asyncpg.Pool, intake_settings: IntakeSettings
) -> None:
    key = {"Idempotency-Key": "shared-key"}
    staff = {**key, "Authorization": token(intake_settings, Role.LIAISON)}
    assert (await client.post("/api/v1/opinions", json=opinion_body(), headers=key)).is_success
    body = opinion_body(channel="walk_in")
    assert (await client.post("/api/v1/opinions", json=body, headers=staff)).is_success
    assert await count_events(pool) == 2


# --- bad input -----------------------------------------------------------------------


def problem_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = response.json()
    assert doc["type"] == f"https://minqing.cn/problems/{code}"
    assert doc["status"] == status
    assert doc["title"]
    assert doc["title_en"]
    return doc


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"station_code": "no_such_station"}, "unknown-station", None),
        ({"district": "atlantis"}, "unknown-district", None),
        ({"text": "灯坏了"}, "text-too-short", "text"),
        ({"text": "灯" * 4001}, "text-too-long", "text"),
        ({"contact": {"phone": "1391234567"}, "consent": True}, "invalid-phone", "contact.phone"),
        ({"contact": {"phone": "02162345678"}, "consent": True}, "invalid-phone", "contact.phone"),
        (
            {"attachments": ["http://img.example.cn/1.jpg"]},
            "attachment-not-https",
            "attachments.0",
        ),
        (
            {"attachments": [f"https://img.example.cn/{i}.jpg" for i in range(10)]},
            "too-many-attachments",
            "attachments",
        ),
        ({"contact": {"name": NAME}}, "consent-required", "consent"),
        ({"station_code": None}, "place-required", "station_code"),
        ({"channel": "fax"}, "enum", "channel"),
        ({"colour": "red"}, "extra_forbidden", "colour"),
    ],
)
async def test_bad_input_gets_a_problem_a_clerk_understands(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    overrides: dict[str, Any],
    code: str,
    field: str | None,
) -> None:
    response = await client.post("/api/v1/opinions", json=opinion_body(**overrides))

    if field is None:
        problem_of(response, 422, code)
    else:
        doc = response.json()
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [(e["field"], e["code"]) for e in doc["errors"]] == [(field, code)]
        assert all(e["message"] and e["message_en"] for e in doc["errors"])
    assert await count_events(pool) == 0
    assert "1391234567" not in response.text


async def test_a_body_that_is_not_json_is_refused(client: httpx.AsyncClient) -> None:
    form = await client.post("/api/v1/opinions", data={"text": "楼道灯坏了一个月"})
    problem_of(form, 415, "unsupported-media-type")
    broken = await client.post(
        "/api/v1/opinions", content=b'{"text": ', headers={"Content-Type": "application/json"}
    )
    problem_of(broken, 400, "invalid-json")


async def test_a_body_over_64_kb_is_refused_with_or_without_a_length(
    client: httpx.AsyncClient,
) -> None:
    big = opinion_body(text="灯" * 30_000)  # 90 KB of UTF-8
    declared = await client.post("/api/v1/opinions", json=big)
    problem_of(declared, 413, "too-large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b" " * 1024

    chunked = await client.post(
        "/api/v1/opinions", content=chunks(), headers={"Content-Type": "application/json"}
    )
    problem_of(chunked, 413, "too-large")


async def test_a_malformed_idempotency_key_is_refused(client: httpx.AsyncClient) -> None:
    for key in ("not a key", "k" * 256):
        response = await client.post(
            "/api/v1/opinions", json=opinion_body(), headers={"Idempotency-Key": key}
        )
        problem_of(response, 400, "invalid-idempotency-key")


# --- rate limits ---------------------------------------------------------------------


async def test_public_submissions_are_rate_limited_per_client_address(
    intake_settings: IntakeSettings,
    directory: None,
    make_client: MakeClient,
) -> None:
    settings = intake_settings.model_copy(
        update={
            "rate_submit_per_minute": 2,
            "rate_submit_burst": 2,
            "trusted_proxies": ["127.0.0.0/8"],
        }
    )
    async for client in make_client(settings):
        behind = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(2):
            assert (
                await client.post("/api/v1/opinions", json=opinion_body(), headers=behind)
            ).is_success
        limited = await client.post("/api/v1/opinions", json=opinion_body(), headers=behind)
        problem_of(limited, 429, "rate-limited")
        assert int(limited.headers["retry-after"]) == 30
        # Another resident behind the same proxy is not affected...
        other = {"X-Forwarded-For": "203.0.113.10"}
        assert (
            await client.post("/api/v1/opinions", json=opinion_body(), headers=other)
        ).is_success
        # ...and staff with a token are not limited.
        staff = {**behind, "Authorization": token(settings, Role.LIAISON)}
        body = opinion_body(channel="walk_in")
        assert (await client.post("/api/v1/opinions", json=body, headers=staff)).is_success


async def test_tracking_lookups_are_rate_limited_too(
    intake_settings: IntakeSettings, directory: None, make_client: MakeClient
) -> None:
    settings = intake_settings.model_copy(update={"rate_read_per_minute": 1, "rate_read_burst": 3})
    async for client in make_client(settings):
        statuses = [(await client.get(f"/api/v1/track/{'0' * 12}")).status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]


@pytest.mark.parametrize("kind", ["svg", "png"])
async def test_qr_codes_are_rate_limited_like_other_reads(
    intake_settings: IntakeSettings, directory: None, make_client: MakeClient, kind: str
) -> None:
    settings = intake_settings.model_copy(update={"rate_read_per_minute": 1, "rate_read_burst": 2})
    async for client in make_client(settings):
        url = f"/api/v1/stations/{STATION}/qr.{kind}"
        statuses = [(await client.get(url)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


def test_the_token_bucket_allows_a_burst_then_one_per_interval() -> None:
    clock = [0.0]
    limiter = RateLimiter(per_minute=6, burst=2, clock=lambda: clock[0])
    assert limiter.take("1.2.3.4") == 0.0
    assert limiter.take("1.2.3.4") == 0.0
    wait = limiter.take("1.2.3.4")
    assert wait == pytest.approx(10.0)
    assert retry_after_header(wait) == "10"
    assert limiter.take("5.6.7.8") == 0.0  # another address has its own bucket
    clock[0] = 10.0
    assert limiter.take("1.2.3.4") == 0.0


def test_the_client_address_is_read_through_trusted_proxies_only() -> None:
    settings = IntakeSettings(trusted_proxies=["10.0.0.0/8"])
    trusted = settings.trusted_proxy_networks
    assert client_address("10.1.2.3", "203.0.113.9, 10.0.0.5", trusted) == "203.0.113.9"
    # A client cannot pick its own bucket by sending the header itself.
    assert client_address("198.51.100.7", "203.0.113.9", trusted) == "198.51.100.7"
    assert client_address("10.1.2.3", None, trusted) == "10.1.2.3"


# --- stations and QR codes ------------------------------------------------------------


async def test_stations_are_listed_for_the_form(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/stations", params={"district": DISTRICT})
    assert response.status_code == 200
    stations = response.json()["stations"]
    assert [s["station_code"] for s in stations] == [STATION, "kxy_comm"]
    assert stations[0]["name_zh"] == "中关村街道人大代表之家"
    assert stations[0]["position"] == {"lat": 39.9601, "long": 116.3229}
    unknown = await client.get("/api/v1/stations", params={"district": "atlantis"})
    problem_of(unknown, 404, "unknown-district")
    categories = await client.get("/api/v1/categories", params={"district": DISTRICT})
    assert [c["code"] for c in categories.json()["categories"]][:1] == ["municipal.street_light"]


async def test_a_station_tells_its_representatives_and_form_link(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/api/v1/stations/{STATION}")
    assert response.status_code == 200
    view = response.json()
    assert view["representatives"] == ["李建华"]
    assert view["form_url"] == f"https://minqing.example.cn/q/{STATION}?district={DISTRICT}"


def expected_qr(kind: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    url = f"https://minqing.example.cn/q/{STATION}?district={DISTRICT}"
    segno.make(url, error="m", micro=False).save(buffer, kind=kind, **options)
    return buffer.getvalue()


async def test_the_poster_qr_code_points_to_the_station_form_at_the_public_address(
    client: httpx.AsyncClient,
) -> None:
    svg = await client.get(f"/api/v1/stations/{STATION}/qr.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.content == expected_qr(
        "svg", scale=8, border=4, xmldecl=True, title="中关村街道人大代表之家 民情码"
    )
    png = await client.get(f"/api/v1/stations/{STATION}/qr.png")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.content == expected_qr("png", scale=10, border=4)
    missing = await client.get("/api/v1/stations/nowhere/qr.svg")
    problem_of(missing, 404, "unknown-station")


# --- the staff view ------------------------------------------------------------------


async def test_staff_of_the_district_see_the_contact_details_opened(
    client: httpx.AsyncClient, intake_settings: IntakeSettings, known: Known
) -> None:
    await known(Role.LIAISON, "staff_0012", "other")
    body = opinion_body(contact={"name": NAME, "phone": PHONE}, consent=True)
    opinion_id = (await client.post("/api/v1/opinions", json=body)).json()["opinion_id"]

    staff = {"Authorization": token(intake_settings, Role.LIAISON)}
    view = (await client.get(f"/api/v1/opinions/{opinion_id}", headers=staff)).json()
    assert view["contact"]["name"] == NAME
    assert view["contact"]["phone"] == PHONE
    assert view["contact"]["erased"] is False
    assert "tracking_code" not in view

    outsider = {"Authorization": token(intake_settings, Role.LIAISON, district="other")}
    hidden = await client.get(f"/api/v1/opinions/{opinion_id}", headers=outsider)
    assert hidden.status_code == 404
    anonymous = await client.get(f"/api/v1/opinions/{opinion_id}")
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    "role", [Role.SPOKESPERSON, Role.HOTLINE, Role.AUDITOR, Role.REPRESENTATIVE]
)
async def test_other_staff_roles_get_the_opinion_with_the_contact_withheld(
    client: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    monkeypatch: pytest.MonkeyPatch,
    known: Known,
    role: Role,
) -> None:
    from services.intake import api

    await known(role)
    audit: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            audit.append((event, fields))

    monkeypatch.setattr(api, "audit_log", Recorder())
    body = opinion_body(contact={"name": NAME, "phone": PHONE}, consent=True)
    opinion_id = (await client.post("/api/v1/opinions", json=body)).json()["opinion_id"]

    caller = {"Authorization": token(intake_settings, role)}
    response = await client.get(f"/api/v1/opinions/{opinion_id}", headers=caller)
    assert response.status_code == 200
    view = response.json()
    assert view["contact"] is None
    assert view["contact_withheld"] is True
    assert NAME not in response.text
    assert PHONE not in response.text
    assert audit == []


@pytest.mark.parametrize("role", [Role.LIAISON, Role.STREET_SUPERVISOR, Role.DISTRICT_ADMIN])
async def test_each_opening_of_a_contact_is_audited_without_the_contact(
    client: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    monkeypatch: pytest.MonkeyPatch,
    known: Known,
    role: Role,
) -> None:
    await known(role, "staff_0077")
    from services.intake import api

    audit: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            audit.append((event, fields))

    monkeypatch.setattr(api, "audit_log", Recorder())
    body = opinion_body(contact={"name": NAME, "phone": PHONE}, consent=True)
    opinion_id = (await client.post("/api/v1/opinions", json=body)).json()["opinion_id"]

    caller = {"Authorization": token(intake_settings, role, subject="staff_0077")}
    view = (await client.get(f"/api/v1/opinions/{opinion_id}", headers=caller)).json()
    assert view["contact"]["phone"] == PHONE
    assert view["contact_withheld"] is False
    assert len(audit) == 1
    _, fields = audit[0]
    assert fields["subject"] == "staff_0077"
    assert fields["role"] == role.value
    assert fields["opinion_id"] == opinion_id
    assert fields["subject_id"] == view["contact"]["subject_id"]
    assert NAME not in repr(audit)
    assert PHONE not in repr(audit)


async def test_the_asyncapi_document_names_what_intake_consumes_and_publishes(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/asyncapi")
    assert response.status_code == 200
    channels = list(response.json()["channels"].values())
    descriptions = " ".join(c.get("description", "") for c in channels)
    assert any(c["address"].endswith("minqing.opinions.v1") for c in channels)
    assert "CaseOpened" in descriptions
    assert "OpinionSubmitted" in response.json()["components"]["schemas"]
