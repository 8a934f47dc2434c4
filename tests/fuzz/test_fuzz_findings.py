"""What the fuzzer found stays fixed: each request below once answered 500."""

from __future__ import annotations

import asyncpg
import httpx

from eventkit.settings import Settings
from tests.security.service_apps import admin_headers, build, prepare


async def test_text_postgresql_cannot_hold_is_refused_with_a_problem_and_nothing_stored(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await prepare(settings, pool)
    service_settings, app = build("routing", settings)
    before = await pool.fetchval("SELECT count(*) FROM eventstore.events")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        answer = await client.post(
            "/api/v1/directory/streets",
            json={"code": "nul", "name_zh": "街\u0000道", "communities": [{"name": "社区"}]},
            headers=admin_headers(service_settings),
        )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/invalid-characters")
    assert answer.json()["title_en"]
    assert await pool.fetchval("SELECT count(*) FROM eventstore.events") == before


async def test_office_hours_that_close_before_they_open_are_refused(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await prepare(settings, pool)
    service_settings, app = build("routing", settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        headers = admin_headers(service_settings)
        backwards = await client.put(
            "/api/v1/directory/calendar",
            json={"office_opens": "18:00:00", "office_closes": "09:00:00", "years": []},
            headers=headers,
        )
        offset = await client.put(
            "/api/v1/directory/calendar",
            json={"office_opens": "09:00:00Z", "office_closes": "18:00:00", "years": []},
            headers=headers,
        )
        fine = await client.put(
            "/api/v1/directory/calendar",
            json={"office_opens": "08:30:00", "office_closes": "17:30:00", "years": []},
            headers=headers,
        )
    for refused in (backwards, offset):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert fine.status_code == 200, fine.text
