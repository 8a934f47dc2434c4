"""``python -m services.intake`` as it runs in production: learning from Kafka, and
never writing a resident's name or phone number to its logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from contracts.envelope import Envelope
from eventkit.local import free_port
from eventkit.relay import Relay
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.intake.intake_support import (
    API_KEY,
    DISTRICT,
    NAME,
    PHONE,
    STATION,
    case_events,
    directory_events,
    now,
    opinion_body,
)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 40.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except (httpx.HTTPError, AssertionError, KeyError):
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the service did not get there in time")
        await asyncio.sleep(0.2)


async def test_the_running_service_learns_from_kafka_and_logs_no_personal_data(
    settings: Settings, store: EventStore, database_url: str, tmp_path: Path
) -> None:
    for event in directory_events():
        await store.append(event.stream_id, [Envelope.wrap(event)])
    port = free_port()
    env = {
        **os.environ,
        "MINQING_DATABASE_URL": database_url,
        # Like the local stack's children: a test database, the development keys.
        "MINQING_LOCAL_STACK": "1",
        "MINQING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MINQING_TOPIC_PREFIX": settings.topic_prefix,
        "MINQING_KAFKA_PARTITIONS": "3",
        "MINQING_INTAKE_PORT": str(port),
        "MINQING_LOG_LEVEL": "DEBUG",
        "MINQING_LOG_FORMAT": "json",
        "MINQING_OPEN311_API_KEYS": json.dumps({DISTRICT: [API_KEY]}),
    }
    log_path = tmp_path / "intake.log"
    stop = asyncio.Event()
    relay = asyncio.create_task(Relay(store, settings).run(stop))
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.intake",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def stations_known() -> bool:
                response = await client.get("/api/v1/stations", params={"district": DISTRICT})
                return response.status_code == 200 and len(response.json()["stations"]) == 2

            async def taxonomy_known() -> bool:
                response = await client.get("/api/v1/categories", params={"district": DISTRICT})
                return response.status_code == 200 and len(response.json()["categories"]) == 3

            await eventually(stations_known)  # learned from minqing.directory.v1
            await eventually(taxonomy_known)  # TaxonomyPublished, on the same topic

            contact = {"name": NAME, "phone": PHONE}
            accepted = await client.post(
                "/api/v1/opinions", json=opinion_body(contact=contact, consent=True)
            )
            assert accepted.status_code == 201, accepted.text
            receipt = accepted.json()
            refused = await client.post(
                "/api/v1/opinions",
                json=opinion_body(contact={"name": NAME, "phone": PHONE[:-1]}, consent=True),
            )
            assert refused.status_code == 422
            open311 = await client.post(
                "/open311/v2/requests.xml",
                data={
                    "api_key": API_KEY,
                    "service_code": "municipal.road",
                    "address_string": "东门",
                    "description": "路口有个大坑，下雨积水",
                    "first_name": NAME[1:],
                    "last_name": NAME[0],
                    "phone": PHONE,
                },
            )
            assert open311.status_code == 200, open311.text

            events = case_events("case_p1", receipt["opinion_id"], start=now())
            for event in (events["opened"], events["assigned"]):
                await store.append(event.stream_id, [Envelope.wrap(event)])

            async def assigned() -> bool:
                code = receipt["tracking_code"]
                view = (await client.get(f"/api/v1/track/{code}")).json()
                return bool(view["status"]["stage"] == "assigned")

            await eventually(assigned)  # followed from minqing.cases.v1
            assert (await client.get("/readyz")).status_code == 200
            page = await client.get(f"/q/{STATION}")
            assert "中关村街道人大代表之家" in page.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 25)
        except TimeoutError:
            process.kill()
            await process.wait()
        stop.set()
        await asyncio.wait_for(relay, 15)

    logs = log_path.read_text(encoding="utf-8", errors="replace")
    assert receipt["opinion_id"] in logs  # the logs are there, and they are JSON lines
    assert '"event": "opinion accepted"' in logs
    for secret in (PHONE, PHONE[:-1], PHONE[-8:], NAME, NAME[1:]):
        assert secret not in logs
    # A clean shutdown; uvicorn then re-raises the SIGTERM it caught.
    assert "Application shutdown complete." in logs
    assert process.returncode in {0, -signal.SIGTERM}
