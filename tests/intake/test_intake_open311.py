"""Open311 GeoReport v2 (and mySociety's updates), in XML and JSON, as a client sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest

from contracts import DistrictRegistered
from eventkit.consumer import Consumer
from eventkit.db import create_pool
from eventkit.store import EventStore
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from tests.every_district import every_district
from tests.intake.intake_support import (
    ADMIN,
    API_KEY,
    DISTRICT,
    PHONE,
    case_events,
    opinion_body,
    publish,
)
from tests.sealed_support import opened

V2 = "/open311/v2"
J = {"jurisdiction_id": DISTRICT}


def xml(response: httpx.Response, root: str) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    element = ET.fromstring(response.content)
    assert element.tag == root
    return element


def as_json(response: httpx.Response) -> Any:
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def errors_of(response: httpx.Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("text/xml"):
        root = xml(response, "errors")
        assert all(e.findtext("code") == str(status) for e in root)
        return [e.findtext("description") or "" for e in root]
    body = as_json(response)
    assert all(e["code"] == status for e in body)
    return [e["description"] for e in body]


def form(**overrides: str) -> dict[str, str]:
    values = {
        "api_key": API_KEY,
        "jurisdiction_id": DISTRICT,
        "service_code": "municipal.road",
        "lat": "39.9612",
        "long": "116.3301",
        "address_string": "科学院南路菜市场东门",
        "first_name": "秀英",
        "last_name": "王",
        "phone": PHONE,
        "email": "wang@example.cn",
        "device_id": "tt222111",
        "description": "路口有个大坑，下雨积水，电动车容易摔倒。",
        "media_url": "https://img.example.cn/pothole.jpg",
    }
    values.update(overrides)
    return values


async def test_discovery_names_the_endpoint_and_its_formats(client: httpx.AsyncClient) -> None:
    root = xml(await client.get("/open311/discovery.xml"), "discovery")
    endpoint = root.find("endpoints/endpoint")
    assert endpoint is not None
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint.findtext("url") == "https://minqing.example.cn/open311/v2"
    assert endpoint.findtext("type") == "production"
    document = as_json(await client.get(f"{V2}/discovery.json"))
    assert document["endpoints"][0]["formats"] == ["text/xml", "application/json"]


async def test_services_are_the_districts_categories_in_both_formats(
    client: httpx.AsyncClient,
) -> None:
    root = xml(await client.get(f"{V2}/services.xml", params=J), "services")
    services = root.findall("service")
    assert [s.findtext("service_code") for s in services] == [
        "municipal.street_light",
        "municipal.road",
        "property.elevator",
    ]
    first = services[0]
    assert first.findtext("service_name") == "路灯照明"
    assert first.findtext("metadata") == "false"
    assert first.findtext("type") == "realtime"
    assert first.findtext("keywords") == "路灯, 不亮, 照明"
    assert first.find("group") is not None  # empty: the published taxonomy has no groups

    listed = as_json(await client.get(f"{V2}/services.json", params=J))
    assert listed[2] == {
        "service_code": "property.elevator",
        "service_name": "电梯故障",
        "description": "电梯故障 / Lift breakdowns",
        "metadata": False,
        "type": "realtime",
        "keywords": "电梯, 困人",
        "group": None,
    }


async def test_a_service_definition_has_no_extra_attributes(client: httpx.AsyncClient) -> None:
    root = xml(
        await client.get(f"{V2}/services/municipal.road.xml", params=J), "service_definition"
    )
    assert root.findtext("service_code") == "municipal.road"
    assert root.find("attributes") is not None
    definition = as_json(await client.get(f"{V2}/services/municipal.road.json", params=J))
    assert definition == {"service_code": "municipal.road", "attributes": []}
    missing = await client.get(f"{V2}/services/nothing.xml", params=J)
    assert "service_code not found" in errors_of(missing, 404)[0]


async def test_the_jurisdiction_is_the_district_and_optional_while_there_is_one(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    assert (await client.get(f"{V2}/services.json")).status_code == 200
    unknown = await client.get(f"{V2}/services.xml", params={"jurisdiction_id": "atlantis"})
    assert "jurisdiction_id not found" in errors_of(unknown, 404)[0]
    other = DistrictRegistered(
        district_id="other",
        occurred_at=datetime.now(UTC),
        actor=ADMIN,
        name_zh="另一区",
    )
    await publish(store, consumer, [other])
    missing = await client.get(f"{V2}/services.json")
    assert "jurisdiction_id was not provided" in errors_of(missing, 400)[0]
    bad_format = await client.get(f"{V2}/services.html", params=J)
    assert bad_format.status_code == 404


async def test_post_requests_creates_an_opinion_and_answers_with_its_id(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.post(f"{V2}/requests.xml", data=form())

    assert response.status_code == 200, response.text
    request = xml(response, "service_requests").find("request")
    assert request is not None
    opinion_id = request.findtext("service_request_id")
    assert opinion_id
    assert request.find("token") is None
    notice = request.findtext("service_notice") or ""
    assert "https://minqing.example.cn/t/" in notice
    events = await store.read_stream(f"opinion-{opinion_id}")
    for secret in ("科学院南路菜市场东门", "pothole.jpg"):
        assert secret not in str(events[0].data)  # sealed in the event
    data = await opened(store.pool, events[0].data)
    assert data["channel"] == "open311"
    assert data["category_hint"] == "municipal.road"
    assert data["actor"]["role"] == "external"
    assert data["actor"]["id"].startswith("open311:")
    for secret in (API_KEY, PHONE, "王秀英", "wang@example.cn"):
        assert secret not in str(data)
    assert data["attachments"] == ["https://img.example.cn/pothole.jpg"]
    assert data["location"]["address"] == "科学院南路菜市场东门"
    assert data["submitter"]["phone_ciphertext"].startswith("mq1.")

    as_list = as_json(await client.post(f"{V2}/requests.json", data=form()))
    assert set(as_list[0]) == {"service_request_id", "service_notice", "account_id"}
    assert isinstance(as_list[0]["service_request_id"], str)


async def test_post_requests_needs_the_districts_api_key(client: httpx.AsyncClient) -> None:
    missing = await client.post(f"{V2}/requests.xml", data=form(api_key=""))
    assert (
        "Invalid api_key received -- can't proceed with create_request."
        in errors_of(missing, 403)[0]
    )
    wrong = await client.post(f"{V2}/requests.json", data=form(api_key="guess"))
    errors_of(wrong, 403)


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        ({"service_code": "nothing"}, 404, "service_code not found"),
        ({"service_code": ""}, 400, "service_code was not provided"),
        ({"lat": "", "long": "", "address_string": ""}, 400, "a location is required"),
        ({"description": "很" * 4001}, 400, "The text is too long"),
        ({"lat": "north"}, 400, "lat is not a number"),
    ],
)
async def test_post_requests_errors_follow_the_spec(
    client: httpx.AsyncClient, overrides: dict[str, str], status: int, words: str
) -> None:
    response = await client.post(f"{V2}/requests.xml", data=form(**overrides))
    descriptions = errors_of(response, status)
    assert any(words in d for d in descriptions), descriptions
    assert "12345" not in " ".join(descriptions) or status != 400 or "phone" not in overrides


async def test_an_address_alone_is_a_location(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{V2}/requests.json", data=form(lat="", long=""))
    assert response.status_code == 200, response.text


async def test_get_requests_follows_the_case_in_both_formats(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    created = as_json(await client.post(f"{V2}/requests.json", data=form()))
    opinion_id = created[0]["service_request_id"]
    other = (await client.post("/api/v1/opinions", json=opinion_body())).json()["opinion_id"]
    e = case_events("case_o1", opinion_id)
    public = e["resolved"].model_copy(update={"public": True})  # staff marked it public
    await publish(store, consumer, [e["opened"], e["assigned"], e["replied"], public])

    listed = as_json(await client.get(f"{V2}/requests.json", params=J))
    assert [r["service_request_id"] for r in listed] == [other, opinion_id]
    request = listed[1]
    assert request["status"] == "closed"
    assert request["service_code"] == "municipal.street_light"  # routing's category wins
    assert request["service_name"] == "路灯照明"
    assert request["agency_responsible"] == "中关村街道人大代表之家（李建华代表）"
    assert request["status_notes"] == "已办结：三盏路灯已更换为LED灯具"
    assert request["requested_datetime"].endswith("+08:00")
    assert request["expected_datetime"].endswith("+08:00")
    assert request["address"] == "科学院南路菜市场东门"
    assert (request["lat"], request["long"]) == (39.961, 116.33)
    assert request["media_url"] == "https://img.example.cn/pothole.jpg"
    assert request["description"] == "路口有个大坑，下雨积水，电动车容易摔倒。"
    assert listed[0]["status"] == "open"
    assert listed[0]["agency_responsible"] is None

    root = xml(await client.get(f"{V2}/requests.xml", params=J), "service_requests")
    requests = root.findall("request")
    assert [r.findtext("service_request_id") for r in requests] == [other, opinion_id]
    assert requests[1].findtext("status") == "closed"
    assert requests[0].find("expected_datetime") is not None  # empty, but present
    assert requests[0].findtext("expected_datetime") == ""

    one = xml(await client.get(f"{V2}/requests/{opinion_id}.xml", params=J), "service_requests")
    assert [r.findtext("service_request_id") for r in one] == [opinion_id]
    missing = await client.get(f"{V2}/requests/op_nothing.json", params=J)
    assert "service_request_id not found" in errors_of(missing, 404)[0]


async def test_get_requests_filters(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    road = as_json(await client.post(f"{V2}/requests.json", data=form()))[0]["service_request_id"]
    lift = as_json(
        await client.post(f"{V2}/requests.json", data=form(service_code="property.elevator"))
    )[0]["service_request_id"]
    e = case_events("case_o2", road)
    closed_case = e["opened"].model_copy(update={"category_code": "municipal.road"})
    await publish(store, consumer, [closed_case, e["resolved"], e["closed"]])

    async def ids(**params: str) -> list[str]:
        listed = as_json(await client.get(f"{V2}/requests.json", params={**J, **params}))
        return [r["service_request_id"] for r in listed]

    assert await ids(status="closed") == [road]
    assert await ids(status="open") == [lift]
    assert await ids(status="open,closed") == [lift, road]
    assert await ids(service_code="property.elevator") == [lift]
    assert await ids(service_request_id=f"{road},{lift}", status="open") == [lift, road]
    now = datetime.now(UTC)
    past = (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await ids(end_date=past) == []
    assert await ids(start_date=past) == [lift, road]
    too_long = await client.get(
        f"{V2}/requests.xml",
        params={**J, "start_date": "2025-01-01T00:00:00Z", "end_date": "2025-06-01T00:00:00Z"},
    )
    assert "90 days" in errors_of(too_long, 400)[0]
    bad_status = await client.get(f"{V2}/requests.json", params={**J, "status": "pending"})
    errors_of(bad_status, 400)
    bad_date = await client.get(f"{V2}/requests.json", params={**J, "start_date": "soon"})
    errors_of(bad_date, 400)


async def test_public_descriptions_have_phone_numbers_masked(client: httpx.AsyncClient) -> None:
    text = "我的电话13912345678，楼下路灯坏了一个月"
    await client.post(f"{V2}/requests.json", data=form(description=text))
    listed = as_json(await client.get(f"{V2}/requests.json", params=J))
    assert listed[0]["description"] == "我的电话139****5678，楼下路灯坏了一个月"


async def test_service_request_updates_follow_mysocietys_extension(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    opinion_id = as_json(await client.post(f"{V2}/requests.json", data=form()))[0][
        "service_request_id"
    ]
    e = case_events("case_o3", opinion_id)
    public = e["resolved"].model_copy(update={"public": True})  # staff marked it public
    await publish(
        store,
        consumer,
        [e["opened"], e["assigned"], e["accepted"], public, e["closed"], e["reopened"]],
    )
    updates = as_json(await client.get(f"{V2}/servicerequestupdates.json", params=J))
    assert [u["status"] for u in updates] == [
        "open",
        "investigating",
        "in_progress",
        "fixed",
        "closed",
        "reopen",
    ]
    assert {u["service_request_id"] for u in updates} == {opinion_id}
    assert len({u["update_id"] for u in updates}) == 6
    fixed = updates[3]
    assert fixed["description"] == "已办结：三盏路灯已更换为LED灯具"
    assert fixed["media_url"] == "https://files.example.cn/after.jpg"
    assert fixed["external_status_code"] == "CaseResolved"
    assert fixed["updated_datetime"].endswith("+08:00")

    root = xml(
        await client.get(f"{V2}/servicerequestupdates.xml", params=J), "service_request_updates"
    )
    first = root.find("request_update")
    assert first is not None
    assert [child.tag for child in first] == [
        "update_id",
        "service_request_id",
        "status",
        "updated_datetime",
        "description",
        "media_url",
        "external_status_code",
    ]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    none = as_json(
        await client.get(f"{V2}/servicerequestupdates.json", params={**J, "start_date": later})
    )
    assert none == []


async def test_an_open311_retry_with_an_idempotency_key_creates_nothing_new(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    headers = {"Idempotency-Key": "fms-report-4711"}
    first = as_json(await client.post(f"{V2}/requests.json", data=form(), headers=headers))
    again = as_json(await client.post(f"{V2}/requests.json", data=form(), headers=headers))
    assert first == again
    count = await every_district(store.pool).fetchval(
        "SELECT count(*) FROM eventstore.events WHERE category = 'opinion'"
    )
    assert count == 1


async def test_control_characters_never_reach_the_open311_xml(client: httpx.AsyncClient) -> None:
    text = "楼道里\x01的灯坏了一个月了\x7f"
    created = await client.post("/api/v1/opinions", json=opinion_body(channel="online", text=text))
    assert created.status_code == 201, created.text
    posted = await client.post(
        f"{V2}/requests.json", data=form(description="路口有个\x02大坑，下雨积水")
    )
    assert posted.status_code == 200, posted.text

    root = xml(await client.get(f"{V2}/requests.xml", params=J), "service_requests")
    descriptions = [r.findtext("description") for r in root.findall("request")]
    assert "楼道里的灯坏了一个月了" in descriptions
    assert "路口有个大坑，下雨积水" in descriptions


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (None, "【道路破损】 科学院南路菜市场东门"),
        ("", "【道路破损】 科学院南路菜市场东门"),
        ("有坑", "【道路破损】 科学院南路菜市场东门 有坑"),
    ],
)
async def test_a_missing_or_short_description_becomes_the_service_and_address(
    client: httpx.AsyncClient, store: EventStore, description: str | None, expected: str
) -> None:
    values = form()
    if description is None:
        del values["description"]
    else:
        values["description"] = description
    response = await client.post(f"{V2}/requests.json", data=values)
    assert response.status_code == 200, response.text
    opinion_id = as_json(response)[0]["service_request_id"]
    events = await store.read_stream(f"opinion-{opinion_id}")
    assert (await opened(store.pool, events[0].data))["text"] == expected


async def test_a_short_description_is_still_refused_on_our_own_channels(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/opinions", json=opinion_body(text="有坑"))
    assert response.status_code == 422


async def test_an_open311_phone_in_another_format_is_sealed_as_given(
    client: httpx.AsyncClient, store: EventStore, pool: Any
) -> None:
    from eventkit.privacy import PersonalDataVault

    ids = []
    for _ in range(2):
        response = await client.post(f"{V2}/requests.json", data=form(phone="+1 415 555 0100"))
        assert response.status_code == 200, response.text
        ids.append(as_json(response)[0]["service_request_id"])
    submitters = [(await store.read_stream(f"opinion-{i}"))[0].data["submitter"] for i in ids]
    # Not an identifier: no blind index, so the two posts are not merged into one resident.
    assert submitters[0]["subject_id"] != submitters[1]["subject_id"]
    opened = await PersonalDataVault(pool).open(
        submitters[0]["subject_id"], {"phone": submitters[0]["phone_ciphertext"]}
    )
    assert opened == {"phone": "+1 415 555 0100"}
    refused = await client.post(
        "/api/v1/opinions",
        json=opinion_body(contact={"name": "王", "phone": "+1 415 555 0100"}, consent=True),
    )
    assert refused.status_code == 422


async def test_an_http_media_url_is_left_out_and_said_so(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.post(
        f"{V2}/requests.json", data=form(media_url="http://img.example.cn/1.jpg")
    )
    assert response.status_code == 200, response.text
    created = as_json(response)[0]
    assert "media_url" in created["service_notice"]
    events = await store.read_stream(f"opinion-{created['service_request_id']}")
    assert events[0].data["attachments"] == []


async def test_public_requests_show_text_and_address_only_for_the_public_web_channels(
    client: httpx.AsyncClient, intake_settings: Any
) -> None:
    from eventkit.identity import Role
    from tests.intake.intake_support import token as staff_token

    posted = as_json(await client.post(f"{V2}/requests.json", data=form()))
    open311_id = posted[0]["service_request_id"]
    online = await client.post("/api/v1/opinions", json=opinion_body(channel="online"))
    qr = await client.post("/api/v1/opinions", json=opinion_body())
    walk_in = await client.post(
        "/api/v1/opinions",
        json=opinion_body(channel="walk_in"),
        headers={"Authorization": staff_token(intake_settings, Role.LIAISON)},
    )
    listed = {
        r["service_request_id"]: r
        for r in as_json(await client.get(f"{V2}/requests.json", params=J))
    }
    body = opinion_body()
    for opinion_id in (open311_id, online.json()["opinion_id"]):
        assert listed[opinion_id]["address"] is not None
        assert listed[opinion_id]["description"] not in (None, listed[opinion_id]["service_name"])
    assert listed[online.json()["opinion_id"]]["description"] == body["text"]
    for response in (qr, walk_in):
        request = listed[response.json()["opinion_id"]]
        assert request["description"] == request["service_name"] == "路灯照明"
        assert request["address"] is None
        assert body["text"] not in str(request)
        assert (request["lat"], request["long"]) == (39.962, 116.325)  # 39.9621, 116.3245
    assert (listed[open311_id]["lat"], listed[open311_id]["long"]) == (39.961, 116.33)


def test_open311_api_keys_are_per_district() -> None:
    settings = IntakeSettings(open311_api_keys={DISTRICT: ["k1"]})
    assert settings.api_key_valid(DISTRICT, "k1")
    assert not settings.api_key_valid(DISTRICT, "k2")
    assert not settings.api_key_valid("other", "k1")


async def test_a_database_out_of_reach_is_503_with_retry_after_not_a_service_error(
    intake_settings: IntakeSettings, directory: None
) -> None:
    assert intake_settings.database_url
    pool = await create_pool(intake_settings.database_url, role=intake_settings.database_role)
    app = create_app(intake_settings, pool=pool, background=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://intake.test") as client,
    ):
        await pool.close()  # as if the server had gone away
        for path in (f"{V2}/services.json", f"{V2}/requests.xml", "/api/v1/track/0000-0000-0000"):
            response = await client.get(path, params=J)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"]
