"""Tracking from the case events intake consumes, the resident's pages, and feedback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from eventkit.consumer import Consumer
from eventkit.store import EventStore
from tests.every_district import every_district
from tests.intake.intake_support import STATION, case_events, now, opinion_body, publish
from tests.sealed_support import opened


async def submit(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/opinions", json=opinion_body(**overrides))
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


def code_of(receipt: dict[str, Any]) -> str:
    return str(receipt["tracking_code"]).replace("-", "")


async def track(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/track/{code}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_the_timeline_tells_the_case_in_plain_words(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    receipt = await submit(client)
    code = code_of(receipt)
    before = await track(client, code)
    assert before["status"]["stage"] == "submitted"
    assert [e["text_zh"] for e in before["timeline"]] == ["已提交（扫描民情码）"]

    e = case_events("case_a1", receipt["opinion_id"], start=now())
    await publish(store, consumer, [e["opened"], e["assigned"], e["accepted"], e["replied"]])
    view = await track(client, receipt["tracking_code"].lower())  # codes forgive case

    assert view["case_id"] == "case_a1"
    assert view["status"] == {
        "stage": "in_progress",
        "label_zh": "办理中",
        "label_en": "Being handled",
        "open311_status": "open",
    }
    texts = [entry["text_zh"] for entry in view["timeline"]]
    assert texts[0] == "已提交（扫描民情码）"
    assert texts[1].startswith("已受理，归入「路灯照明」类，应于")
    assert texts[2:] == [
        "已分派至中关村街道人大代表之家，由李建华代表办理",
        "李建华代表已接手办理",
        "答复：已联系街道城管办，本周五前检修，联系人电话13800001111。",
    ]
    assert view["timeline"][2]["text_en"] == (
        "Assigned to 中关村街道人大代表之家, handled by representative 李建华"
    )
    assert view["resolution_due"].endswith("+08:00")
    assert view["feedback"]["open"] is False


async def test_a_case_event_delivered_twice_changes_nothing(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    receipt = await submit(client)
    e = case_events("case_a2", receipt["opinion_id"])
    await publish(store, consumer, [e["opened"], e["assigned"]])
    stored = await store.read_stream("case-case_a2")
    assert await consumer.apply(stored[1].envelope()) is False
    view = await track(client, code_of(receipt))
    assert len(view["timeline"]) == 3


@pytest.mark.parametrize("code", ["0000-0000-0000", "not-a-code", "A" * 40, "%2e%2e"])
async def test_an_unknown_or_malformed_code_gets_one_and_the_same_answer(
    client: httpx.AsyncClient, code: str
) -> None:
    response = await client.get(f"/api/v1/track/{code}")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/tracking-code-not-found")
    page = await client.get(f"/t/{code}")
    assert page.status_code == 404
    assert "没有找到这个查询码" in page.text


async def test_feedback_is_given_once_per_resolution(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    receipt = await submit(client)
    code = code_of(receipt)
    e = case_events("case_a3", receipt["opinion_id"])
    await publish(store, consumer, [e["opened"], e["assigned"]])
    rating = {"satisfaction": 5, "resolved": True, "comment": "代表第二天就来看了"}

    early = await client.post(f"/api/v1/track/{code}/feedback", json=rating)
    assert early.status_code == 409
    assert early.json()["type"].endswith("/feedback-not-open")

    await publish(store, consumer, [e["resolved"]])
    assert (await track(client, code))["feedback"]["open"] is True
    first = await client.post(f"/api/v1/track/{code}/feedback", json=rating)
    assert first.status_code == 201, first.text
    assert first.json()["resolution_seq"] == 1

    second = await client.post(f"/api/v1/track/{code}/feedback", json=rating)
    assert second.status_code == 409
    problem = second.json()
    assert problem["type"].endswith("/feedback-already-given")
    assert problem["title"] == "您已评价过本次办理结果"
    assert problem["title_en"] == "You have already rated this resolution"

    await publish(store, consumer, [e["closed"], e["reopened"]])
    assert (await track(client, code))["feedback"]["open"] is False
    await publish(store, consumer, [e["resolved_again"]])
    again = await client.post(
        f"/api/v1/track/{code}/feedback", json={"satisfaction": 2, "resolved": False}
    )
    assert again.status_code == 201
    assert again.json()["resolution_seq"] == 2

    events = await store.read_stream(f"opinion-{receipt['opinion_id']}")
    feedback = [ev.data for ev in events if ev.event_type == "FeedbackSubmitted"]
    assert [(f["resolution_seq"], f["satisfaction"], f["resolved"]) for f in feedback] == [
        (1, 5, True),
        (2, 2, False),
    ]
    assert feedback[0]["case_id"] == "case_a3"
    view = await track(client, code)
    assert [g["resolution_seq"] for g in view["feedback"]["given"]] == [1, 2]
    assert "您已评价：满意度 5/5，问题已解决" in [t["text_zh"] for t in view["timeline"]]


async def test_bad_feedback_is_refused(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    receipt = await submit(client)
    e = case_events("case_a4", receipt["opinion_id"])
    await publish(store, consumer, [e["opened"], e["resolved"]])
    code = code_of(receipt)
    zero = await client.post(
        f"/api/v1/track/{code}/feedback", json={"satisfaction": 0, "resolved": True}
    )
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["field"] == "satisfaction"
    missing = await client.post(f"/api/v1/track/{code}/feedback", json={"satisfaction": 3})
    assert missing.status_code == 422


# --- the pages -----------------------------------------------------------------------


async def test_the_tracking_page_shows_the_timeline_and_offers_the_rating(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    receipt = await submit(client)
    code = code_of(receipt)
    e = case_events("case_a5", receipt["opinion_id"])
    await publish(store, consumer, [e["opened"], e["assigned"], e["resolved"]])

    page = await client.get(f"/t/{code}")
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert receipt["tracking_code"] in html
    assert "已办结" in html
    assert "已分派至中关村街道人大代表之家，由李建华代表办理" in html
    assert 'action="/t/' in html
    assert "评价办理结果" in html

    english = await client.get(f"/t/{code}?lang=en")
    assert 'lang="en"' in english.text
    assert "Rate the result" in english.text
    assert "Resolved: 三盏路灯已更换为LED灯具" in english.text

    rated = await client.post(
        f"/t/{code}/feedback",
        data={"satisfaction": "4", "resolved": "yes", "comment": "", "lang": "zh"},
    )
    assert rated.status_code == 303
    assert rated.headers["location"] == f"/t/{code}?feedback=thanks"
    after = await client.get(rated.headers["location"])
    assert "感谢您的评价" in after.text
    assert "您已评价本次办理结果" in after.text
    twice = await client.post(
        f"/t/{code}/feedback", data={"satisfaction": "4", "resolved": "yes", "lang": "zh"}
    )
    assert twice.status_code == 409
    assert "您已评价过本次办理结果" in twice.text


async def test_a_code_typed_on_the_home_page_leads_to_its_page(
    client: httpx.AsyncClient,
) -> None:
    receipt = await submit(client)
    home = await client.get("/")
    assert "查询办理进度" in home.text
    lookup = await client.get("/t", params={"code": receipt["tracking_code"].lower()})
    assert lookup.status_code == 303
    assert lookup.headers["location"] == f"/t/{code_of(receipt)}"


async def test_the_qr_form_shows_the_station_its_categories_and_a_consent_line(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(f"/q/{STATION}")
    assert page.status_code == 200
    html = page.text
    assert "中关村街道人大代表之家" in html
    assert "本站代表：李建华" in html
    assert '<option value="municipal.street_light"' in html
    assert "路灯照明" in html
    assert "我同意将以上联系方式仅用于办理和回访本事项" in html
    assert 'src="/static/qr.js"' in html
    assert "script-src 'self'" in page.headers["content-security-policy"]
    english = await client.get(f"/q/{STATION}?lang=en")
    assert "Street lights" in english.text
    assert "Your problem or suggestion" in english.text
    missing = await client.get("/q/no_such_station")
    assert missing.status_code == 404
    assert "没有找到这个联络站" in missing.text
    assert (await client.get("/static/qr.js")).status_code == 200


async def test_the_qr_form_works_without_javascript(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    form = {
        "text": "电梯经常停运，老人上下楼很困难",
        "category_hint": "property.elevator",
        "community": "科育社区",
        "address": "",
        "lat": "",
        "long": "",
        "name": "",
        "phone": "13912345678",
        "idempotency_key": "form-123",
        "lang": "zh",
    }
    refused = await client.post(f"/q/{STATION}", data=form)
    assert refused.status_code == 422
    assert "留下联系方式需勾选同意" in refused.text
    assert "电梯经常停运" in refused.text  # what was typed is kept

    accepted = await client.post(f"/q/{STATION}", data={**form, "consent": "yes"})
    assert accepted.status_code == 201
    assert "提交成功" in accepted.text
    again = await client.post(f"/q/{STATION}", data={**form, "consent": "yes"})
    assert again.status_code == 201
    count = await every_district(store.pool).fetchval(
        "SELECT count(*) FROM eventstore.events WHERE category = 'opinion'"
    )
    assert count == 1


async def test_a_printable_poster_carries_the_qr_code(client: httpx.AsyncClient) -> None:
    page = await client.get(f"/q/{STATION}/poster")
    assert page.status_code == 200
    assert f'src="/api/v1/stations/{STATION}/qr.svg?district=demo"' in page.text
    assert "扫一扫 · 码上说事" in page.text


async def test_a_resident_may_withdraw_a_matter_until_it_is_handled(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    receipt = await submit(client)
    code = code_of(receipt)
    assert (await track(client, code))["withdrawal"]["open"] is True

    response = await client.post(
        f"/api/v1/track/{code}/withdraw", json={"reason": "物业已经修好了"}
    )

    assert response.status_code == 201, response.text
    events = await store.read_stream(f"opinion-{receipt['opinion_id']}")
    assert [e.event_type for e in events] == ["OpinionSubmitted", "OpinionWithdrawn"]
    assert "物业" not in str(events[1].data)  # sealed with the opinion's key
    assert (await opened(store.pool, events[1].data, "OpinionWithdrawn"))["reason"] == (
        "物业已经修好了"
    )
    view = await track(client, code)
    assert view["status"]["stage"] == "withdrawn"
    assert view["status"]["open311_status"] == "closed"
    assert view["withdrawal"]["open"] is False
    assert view["timeline"][-1]["text_zh"] == "您已撤回此事项：物业已经修好了"
    twice = await client.post(f"/api/v1/track/{code}/withdraw", json={})
    assert twice.status_code == 409
    assert twice.json()["type"].endswith("/already-withdrawn")
    listed = (await client.get("/open311/v2/requests.json", params={"status": "closed"})).json()
    assert [r["service_request_id"] for r in listed] == [receipt["opinion_id"]]

    handled = await submit(client)
    e = case_events("case_w1", handled["opinion_id"])
    await publish(store, consumer, [e["opened"], e["resolved"]])
    late = await client.post(f"/api/v1/track/{code_of(handled)}/withdraw", json={})
    assert late.status_code == 409
    assert late.json()["title"] == "事项已办结，不能撤回"


async def test_the_tracking_page_offers_withdrawal_without_javascript(
    client: httpx.AsyncClient,
) -> None:
    code = code_of(await submit(client))
    page = await client.get(f"/t/{code}")
    assert f'action="/t/{code}/withdraw"' in page.text
    withdrawn = await client.post(f"/t/{code}/withdraw", data={"reason": "", "lang": "zh"})
    assert withdrawn.status_code == 303
    after = await client.get(withdrawn.headers["location"])
    assert "已撤回，此事项不再办理" in after.text
    assert "/withdraw" not in after.text
