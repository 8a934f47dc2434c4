"""The reports API over HTTP on the March history: the figures, and who sees what
(another district's token: 404; a street supervisor their streets; a liaison officer
their stations; a representative their own archive; an auditor everything, read-only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from eventkit.auth import issue_token
from eventkit.identity import Role
from services.reporting.app import create_app
from tests.every_district import every_district
from tests.reporting.conftest import Loaded, fixed_clock

pytestmark = pytest.mark.asyncio(loop_scope="module")

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


class Api:
    def __init__(self, client: httpx.AsyncClient, march: Loaded) -> None:
        self.client = client
        self.march = march

    async def get(
        self, path: str, role: Role, subject: str, district: str = "demo", **params: Any
    ) -> httpx.Response:
        token = issue_token(self.march.settings, role=role, district_id=district, subject=subject)
        return await self.client.get(
            path, params={**MARCH, **params}, headers={"Authorization": f"Bearer {token}"}
        )

    async def ok(
        self,
        path: str,
        role: Role = Role.DISTRICT_ADMIN,
        subject: str = "admin_demo",
        **params: Any,
    ) -> Any:
        response = await self.get(path, role, subject, **params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(march: Loaded) -> AsyncIterator[Api]:
    app: FastAPI = create_app(march.settings, pool=march.pool, clock=fixed_clock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
            yield Api(client, march)


D = "/api/v1/districts/demo"


async def test_the_overview_gives_the_three_rates_with_their_denominators(api: Api) -> None:
    body = await api.ok(f"{D}/overview")
    rates = body["figures"]["rates"]
    assert rates["response"] == {
        "numerator": 5,
        "denominator": 7,
        "value": 0.7143,
        "percent": "71.4%",
    }
    assert (rates["resolution"]["numerator"], rates["resolution"]["denominator"]) == (4, 5)
    assert (rates["satisfaction"]["numerator"], rates["satisfaction"]["denominator"]) == (2, 3)
    assert body["figures"]["counts"]["received"] == 10
    assert body["period"]["start"] == "2026-03-01T00:00:00+08:00"
    assert body["previous_period"]["first_day"] == "2026-02-01"
    assert body["previous"]["counts"]["received"] == 2
    # A month is shown week by week (Mondays; the first week starts on 1 March).
    assert body["trend_granularity"] == "week"
    assert [(b["bucket"], b["figures"]["counts"]["received"]) for b in body["trend"]] == [
        ("2026-02-23", 0),
        ("2026-03-02", 3),
        ("2026-03-09", 3),
        ("2026-03-16", 2),
        ("2026-03-23", 1),
        ("2026-03-30", 1),
    ]
    assert body["trend"][0]["label"]["zh"] == "3月1日起"
    assert {c["key"]: c["count"] for c in body["channels"]} == {
        "qr": 8,
        "hotline_12345": 1,
        "walk_in": 1,
    }
    assert body["scope"]["role"] == "district_admin"


async def test_streets_stations_and_representatives_answer_with_every_unit(api: Api) -> None:
    streets = await api.ok(f"{D}/streets")
    assert [(s["street_code"], s["figures"]["counts"]["received"]) for s in streets["streets"]] == [
        ("dh", 7),
        ("xs", 2),
        (None, 1),
    ]
    stations = await api.ok(f"{D}/stations")
    assert {s["station_code"]: s["figures"]["counts"]["counted"] for s in stations["stations"]} == {
        "dh_donghu": 2,
        "dh_home": 3,
        "xs_home": 1,
    }
    reps = await api.ok(f"{D}/representatives")
    r1 = next(r for r in reps["representatives"] if r["representative_id"] == "r1")
    assert r1["activity"]["resolved"] == 4
    assert r1["activity"]["average_satisfaction"] == 3.67
    assert r1["activity"]["activities"] == 0  # no activity recorded in the history


async def test_a_station_shows_its_days_and_why_it_stands_where_it_does(api: Api) -> None:
    body = await api.ok(f"{D}/stations/dh_home")
    assert body["station"]["official_stars"] == 5
    (march,) = body["assessments"]
    assert march["month"] == "2026-03"
    # Three counted cases, fewer than the five the default criteria ask for.
    assert march["points"] == 0
    assert march["stars"] is None
    assert "样本不足" in march["details"][0]["reason"]["zh"]
    assert march["details"][4]["reason"]["en"].startswith("representatives' activity records")
    assert [d["day"] for d in body["days"]][:2] == ["2026-03-05", "2026-03-06"]
    assert [r["representative_id"] for r in body["representatives"]] == ["r2"]


async def test_a_district_admin_sets_the_criteria_and_the_rating_follows_them(
    api: Api, march: Loaded
) -> None:
    token = issue_token(
        march.settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="admin_demo"
    )
    criteria = {
        "min_cases": 2,
        "criteria": [
            {"metric": "response_rate", "threshold": 0.9, "points": 2},
            {"metric": "resolution_rate", "threshold": 0.9},
            {"metric": "satisfaction_rate", "threshold": 0.8},
            {"metric": "overdue_share", "threshold": 0.1},
            {"metric": "activities", "threshold": 2},
        ],
    }
    put = await api.client.put(
        f"{D}/assessment/criteria", json=criteria, headers={"Authorization": f"Bearer {token}"}
    )
    assert put.status_code == 200, put.text
    assert put.json()["is_default"] is False
    try:
        body = await api.ok(f"{D}/stations/dh_home")
        (month,) = body["assessments"]
        assert [p["points"] for p in month["details"]] == [2, 1, 0, 1, 0]
        assert month["stars"] == 4
        assert month["details"][0]["reason"]["zh"] == "响应率 100.0%（3/3），不低于 90.0%，得2分"
        assert month["details"][2]["reason"]["en"] == (
            "satisfaction rate 0.0% (0/1), below 80.0%: no point"
        )
        auditor = await api.client.put(
            f"{D}/assessment/criteria",
            json=criteria,
            headers={
                "Authorization": "Bearer "
                + issue_token(march.settings, role=Role.AUDITOR, district_id="demo", subject="au")
            },
        )
        assert auditor.status_code == 403
        bad = await api.client.put(
            f"{D}/assessment/criteria",
            json={"criteria": [{"metric": "response_rate", "threshold": 2}]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
    finally:
        async with every_district(march.pool).acquire() as conn:
            await conn.execute("DELETE FROM reporting.assessment_criteria")


async def test_another_district_s_token_finds_nothing(api: Api) -> None:
    for path in (
        "overview",
        "streets",
        "stations",
        "stations/dh_home",
        "representatives",
        "representatives/r1/archive",
        "hotspots",
        "trends",
    ):
        response = await api.get(f"{D}/{path}", Role.DISTRICT_ADMIN, "admin_other", "other")
        assert response.status_code == 404, path
        assert response.json()["title"] == "没有找到该区"
    other = await api.ok("/api/v1/districts/other/overview", Role.AUDITOR, "au", district="other")
    assert other["figures"]["counts"]["received"] == 1  # C9X, transferred in from demo


async def test_a_street_supervisor_sees_their_streets_only(api: Api) -> None:
    overview = await api.ok(f"{D}/overview", Role.STREET_SUPERVISOR, "ss_dh")
    assert overview["scope"]["streets"] == ["dh"]
    assert overview["figures"]["counts"]["received"] == 7
    streets = await api.ok(f"{D}/streets", Role.STREET_SUPERVISOR, "ss_dh")
    assert [s["street_code"] for s in streets["streets"]] == ["dh"]
    stations = await api.ok(f"{D}/stations", Role.STREET_SUPERVISOR, "ss_dh")
    assert [s["station_code"] for s in stations["stations"]] == ["dh_donghu", "dh_home"]
    hot = await api.ok(f"{D}/hotspots", Role.STREET_SUPERVISOR, "ss_dh")
    # C5, a 西山社区 matter, was transferred to a station of the street: theirs now.
    assert [(h["community"], h["count"]) for h in hot["hotspots"]] == [
        ("东湖社区", 3),
        ("湖滨社区", 3),
        ("西山社区", 1),
    ]
    away = await api.get(f"{D}/stations/xs_home", Role.STREET_SUPERVISOR, "ss_dh")
    assert away.status_code == 403
    assert away.json()["title"] == "不在您的查看范围内"
    assert (
        await api.get(f"{D}/representatives/r3/archive", Role.STREET_SUPERVISOR, "ss_dh")
    ).status_code == 403
    assert (await api.ok(f"{D}/representatives/r2/archive", Role.STREET_SUPERVISOR, "ss_dh"))[
        "representative"
    ]["name"] == "王建国"


async def test_a_liaison_officer_sees_their_stations_only(api: Api) -> None:
    overview = await api.ok(f"{D}/overview", Role.LIAISON, "lo_dh")
    assert overview["scope"]["stations"] == ["dh_home"]
    assert overview["figures"]["counts"]["received"] == 4
    stations = await api.ok(f"{D}/stations", Role.LIAISON, "lo_dh")
    assert [s["station_code"] for s in stations["stations"]] == ["dh_home"]
    reps = await api.ok(f"{D}/representatives", Role.LIAISON, "lo_dh")
    assert [r["representative_id"] for r in reps["representatives"]] == ["r2"]
    assert (await api.get(f"{D}/streets", Role.LIAISON, "lo_dh")).status_code == 403
    assert (await api.get(f"{D}/stations/dh_donghu", Role.LIAISON, "lo_dh")).status_code == 403


async def test_a_representative_sees_their_own_archive_and_nothing_else(api: Api) -> None:
    archive = await api.ok(f"{D}/representatives/r1/archive", Role.REPRESENTATIVE, "r1")
    kinds = [e["kind"] for e in archive["entries"]]
    # C12: accepted, resolved, closed; C1: assigned, accepted, replied, resolved, closed;
    # C2: assigned, missed, accepted, missed, resolved, reopened, resolved; C7: assigned.
    assert archive["total"] == len(kinds) == 16
    assert kinds.count("resolved") == 4
    assert kinds.count("overdue") == 2
    newest = archive["entries"][0]  # C7, assigned one second after it was opened
    assert (newest["case_id"], newest["kind"]) == ("C7", "assigned")
    assert newest["recorded_at"] == "2026-03-15T09:00:01+08:00"
    assert archive["activities_recorded"] is True
    for path in (
        "overview",
        "streets",
        "stations",
        "representatives",
        "hotspots",
        "trends",
        "representatives/r2/archive",
    ):
        response = await api.get(f"{D}/{path}", Role.REPRESENTATIVE, "r1")
        assert response.status_code == 403, path


async def test_an_auditor_reads_everything_and_others_read_nothing(api: Api) -> None:
    assert (await api.ok(f"{D}/overview", Role.AUDITOR, "au"))["scope"]["role"] == "auditor"
    assert (await api.ok(f"{D}/representatives/r4/archive", Role.AUDITOR, "au"))["total"] == 3
    for role, person in ((Role.HOTLINE, "hl"), (Role.SPOKESPERSON, "sp")):
        assert (await api.get(f"{D}/overview", role, person)).status_code == 403
    assert (await api.client.get(f"{D}/overview")).status_code == 401


async def test_no_answer_carries_a_resident_s_words_or_name(api: Api) -> None:
    for path in ("overview", "stations/dh_donghu", "representatives/r1/archive", "hotspots"):
        text = (await api.get(f"{D}/{path}", Role.DISTRICT_ADMIN, "admin_demo")).text
        assert "王女士" not in text  # the feedback comment of the history
        assert "subj_x" not in text


async def test_a_period_that_makes_no_sense_is_refused_in_words(api: Api) -> None:
    response = await api.get(
        f"{D}/overview",
        Role.DISTRICT_ADMIN,
        "admin_demo",
        **{"from": "2026-04-01", "to": "2026-03-01"},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "开始日期晚于结束日期"
    bad = await api.get(f"{D}/overview", Role.DISTRICT_ADMIN, "admin_demo", to="31/03/2026")
    assert bad.status_code == 422
    assert bad.json()["title"] == "统计期间无效"
