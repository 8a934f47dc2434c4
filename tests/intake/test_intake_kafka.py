"""Every channel, from HTTP to ``minqing.opinions.v1`` on the real broker."""

from __future__ import annotations

import asyncio
import json

import httpx

from contracts.topics import OPINIONS
from eventkit.identity import Role
from eventkit.relay import Relay
from eventkit.store import EventStore
from services.intake.settings import IntakeSettings
from tests.helpers import read_topic
from tests.intake.intake_support import API_KEY, DISTRICT, NAME, PHONE, Known, opinion_body, token

STAFF_CHANNELS = {
    "walk_in": Role.LIAISON,
    "spokesperson": Role.SPOKESPERSON,
    "visit": Role.REPRESENTATIVE,
    "hotline_12345": Role.HOTLINE,
}


async def test_every_channel_reaches_the_opinions_topic_without_personal_data(
    client: httpx.AsyncClient, store: EventStore, intake_settings: IntakeSettings, known: Known
) -> None:
    await known(Role.HOTLINE)
    contact = {"name": NAME, "phone": PHONE}
    accepted: dict[str, str] = {}
    for channel in ("qr", "online"):
        response = await client.post(
            "/api/v1/opinions", json=opinion_body(channel=channel, contact=contact, consent=True)
        )
        assert response.status_code == 201, response.text
        accepted[channel] = response.json()["opinion_id"]
    for channel, role in STAFF_CHANNELS.items():
        response = await client.post(
            "/api/v1/opinions",
            json=opinion_body(channel=channel, contact=contact),
            headers={"Authorization": token(intake_settings, role)},
        )
        assert response.status_code == 201, response.text
        accepted[channel] = response.json()["opinion_id"]
    open311 = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "jurisdiction_id": DISTRICT,
            "service_code": "municipal.street_light",
            "lat": "39.96",
            "long": "116.32",
            "description": "小区东门路灯坏了三个月",
            "last_name": "王",
            "first_name": "秀英",
            "phone": PHONE,
        },
    )
    assert open311.status_code == 200, open311.text
    accepted["open311"] = open311.json()[0]["service_request_id"]

    stop = asyncio.Event()
    relay = asyncio.create_task(Relay(store, intake_settings).run(stop))
    try:
        records = await read_topic(
            intake_settings.kafka_bootstrap,
            intake_settings.topic(OPINIONS),
            until=lambda r: len(r) >= len(accepted),
        )
    finally:
        stop.set()
        await asyncio.wait_for(relay, 15)

    by_stream = {record.key.decode(): record for record in records if record.key}
    assert set(by_stream) == {f"opinion-{opinion_id}" for opinion_id in accepted.values()}
    for channel, opinion_id in accepted.items():
        record = by_stream[f"opinion-{opinion_id}"]
        headers = {key: value.decode() for key, value in record.headers}
        assert headers["ce_type"] == "cn.minqing.intake.OpinionSubmitted.v3"
        assert headers["ce_source"] == f"/districts/{DISTRICT}/intake"
        assert headers["ce_subject"] == f"opinion-{opinion_id}"
        data = json.loads(record.value)
        assert data["channel"] == channel
        assert data["submitter"]["name_ciphertext"].startswith("mq1.")
        assert data["submitter"]["phone_ciphertext"].startswith("mq1.")
        assert data["sealed"]["ciphertext"].startswith("mq1.")  # the words, sealed
    for record in records:
        raw = (record.value or b"") + b"".join(value for _, value in record.headers)
        for secret in (PHONE, PHONE[-8:], NAME, "秀英", "路灯坏了", "东门", "39.96"):
            assert secret.encode() not in raw
