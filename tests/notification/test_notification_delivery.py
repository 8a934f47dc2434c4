"""From events to messages, on the real PostgreSQL and a real local SMTP server and HTTP
receiver: exactly one message per (event, recipient, channel), the resident only as they
agreed, outside subscribers signed and isolated, the public feed without personal data."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from typing import cast

import httpx
import pytest

from contracts import REGISTRY
from contracts.cases import CaseEvent, CaseReplied, CaseResolved
from contracts.topics import public_cases_topic
from eventkit.store import EventStore
from minqing.sink import Behaviour, Received, Sink
from services.notification import subscriptions
from services.notification.bootstrap import Notification
from services.notification.outbox import Finished
from services.notification.signing import verify
from tests.every_district import every_district
from tests.helpers import read_topic
from tests.notification.notification_support import (
    LIAISON,
    NAME,
    PHONE,
    SHANGHAI,
    Clock,
    assigned,
    happen,
    opened,
    resident_opinion,
)

GATEWAY_KEY = "minqing-local-sms-gateway-key"


async def statuses(service: Notification) -> list[tuple[str, str, str, str]]:
    rows = await every_district(service.pool).fetch(
        "SELECT rule, recipient, channel, status FROM notification.deliveries "
        "ORDER BY rule, recipient, channel"
    )
    return [(r["rule"], r["recipient"], r["channel"], r["status"]) for r in rows]


async def outcome_events(store: EventStore) -> list[dict[str, object]]:
    rows = await store.read_all(limit=10_000, categories=["notification"])
    return [{"type": r.event_type, **r.data} for r in rows]


def of(kind: str, received: list[Received]) -> list[Received]:
    return [m for m in received if m.kind == kind]


async def open_case(
    demo: Notification, store: EventStore, *, representative: str = "r017", **opinion: object
) -> tuple[str, str]:
    """An opinion (the resident's contact sealed), its case opened and assigned."""
    made = await resident_opinion(demo.vault, demo.pool, **opinion)  # type: ignore[arg-type]
    await happen(store, demo, made)
    case = opened(made.opinion_id)
    await happen(store, demo, case)
    await happen(store, demo, assigned(case.case_id, representative))
    return case.case_id, made.opinion_id


async def test_an_assigned_case_is_mailed_to_its_representative_once_whatever_is_redelivered(
    demo: Notification, store: EventStore, sink: Sink
) -> None:
    case_id, opinion_id = await open_case(demo, store)
    # Kafka redelivers everything, and the planner is even asked again directly.
    for record in await store.read_all(limit=10_000, categories=["case", "opinion"]):
        assert await demo.consumer.apply(record.envelope()) is False
        event = record.envelope().event(REGISTRY)
        if isinstance(event, CaseEvent):
            async with every_district(demo.pool).acquire() as conn, conn.transaction():
                await demo.planner.on_case(event, record.envelope(), conn)

    assert await statuses(demo) == [("case_assigned", "r017", "email", "pending")]
    assert await demo.sender.send_due() == 1
    assert await demo.sender.send_due() == 0

    [mail] = of("mail", list(sink.received))
    assert mail.path == "r017@demo.minqing.local"
    assert case_id in mail.subject
    assert "东湖社区代表联络站" in mail.body
    assert "市政设施" in mail.body
    assert "2026-09-30 17:30" in mail.body  # the response deadline, in Shanghai time
    assert "路灯坏了" not in mail.body  # the resident's words stay with intake
    delivery_id = await every_district(demo.pool).fetchval(
        "SELECT delivery_id FROM notification.deliveries"
    )
    assert mail.headers["Message-ID"] == f"<{delivery_id}@minqing>"
    [sent] = await outcome_events(store)
    assert sent["type"] == "NotificationSent"
    assert (sent["case_id"], sent["opinion_id"], sent["recipient"]) == (case_id, opinion_id, "r017")
    assert sent["channel"] == "email"
    assert await statuses(demo) == [("case_assigned", "r017", "email", "sent")]
    # A newcomer reads it in the local outbox.
    async with httpx.AsyncClient() as client:
        page = await client.get(f"http://127.0.0.1:{sink.http_port}/")
    assert "本地发件箱" in page.text
    assert case_id in page.text


async def test_a_resident_who_agreed_gets_the_answer_by_sms_with_their_own_tracking_link(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    case_id, _ = await open_case(demo, store, code="QRST2345WXYZ")
    await happen(
        store,
        demo,
        CaseReplied(
            district_id="demo",
            occurred_at=clock(),
            actor=LIAISON,
            case_id=case_id,
            message="已联系城管，本周内修复路灯",
        ),
    )
    await demo.sender.send_due()

    [sms] = of("sms", list(sink.received))
    payload = json.loads(sms.body)
    assert payload["to"] == PHONE
    assert "已联系城管，本周内修复路灯" in payload["text"]
    assert re.search(r"https?://[^\s]+/t/QRST2345WXYZ", payload["text"])
    assert NAME not in payload["text"]
    assert verify(GATEWAY_KEY, sms.headers, sms.body.encode(), now=int(clock().timestamp()))
    assert sms.headers["idempotency-key"] == payload["id"]
    # Neither the phone number nor the name went into an event or the outbox.
    stored = await every_district(demo.pool).fetchval(
        "SELECT string_agg(data::text, ' ') FROM eventstore.events WHERE category = 'notification'"
    )
    outbox = await every_district(demo.pool).fetchval(
        "SELECT string_agg(t::text, ' ') FROM notification.deliveries t"
    )
    for text in (stored, outbox):
        assert PHONE not in text
        assert NAME not in text


async def test_a_resident_who_did_not_agree_is_not_contacted(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    case_id, _ = await open_case(demo, store, consent=False)
    await happen(
        store,
        demo,
        CaseReplied(
            district_id="demo", occurred_at=clock(), actor=LIAISON, case_id=case_id, message="好"
        ),
    )
    await demo.sender.send_due()
    assert of("sms", list(sink.received)) == []


async def test_an_sms_to_a_resident_waits_for_the_end_of_the_quiet_hours(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    case_id, _ = await open_case(demo, store)
    clock.now = datetime(2026, 9, 29, 23, 15, tzinfo=SHANGHAI)
    await happen(
        store,
        demo,
        CaseResolved(
            district_id="demo",
            occurred_at=clock(),
            actor=LIAISON,
            case_id=case_id,
            resolution_seq=1,
            result="路灯已修复",
        ),
    )
    held = await every_district(demo.pool).fetchrow(
        "SELECT held, not_before FROM notification.deliveries WHERE rule = 'resident_resolved'"
    )
    assert held is not None
    assert held["held"] == "quiet_hours"
    assert held["not_before"] == datetime(2026, 9, 30, 8, 0, tzinfo=SHANGHAI)
    await demo.sender.send_due()
    assert of("sms", list(sink.received)) == []

    clock.now = datetime(2026, 9, 30, 8, 0, tzinfo=SHANGHAI)
    await demo.sender.send_due()
    [sms] = of("sms", list(sink.received))
    assert "路灯已修复" in sms.body
    assert "#feedback" in sms.body


async def test_a_forgotten_resident_cannot_be_contacted_and_the_failure_says_so(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    case_id, opinion_id = await open_case(demo, store)
    subject = await every_district(demo.pool).fetchval(
        "SELECT subject_id FROM notification.opinions WHERE opinion_id = $1", opinion_id
    )
    assert await demo.vault.forget(subject, requested_by="test", reason="居民申请删除")
    await happen(
        store,
        demo,
        CaseReplied(
            district_id="demo", occurred_at=clock(), actor=LIAISON, case_id=case_id, message="好"
        ),
    )
    await demo.sender.send_due()

    assert of("sms", list(sink.received)) == []
    failed = [e for e in await outcome_events(store) if e["type"] == "NotificationFailed"]
    assert len(failed) == 1
    assert "erased" in str(failed[0]["error"])
    assert failed[0]["recipient"] == subject


async def test_a_gap_in_the_contact_book_is_recorded_as_a_failure_not_lost(
    demo: Notification, store: EventStore, sink: Sink
) -> None:
    await open_case(demo, store, representative="r999")
    await demo.sender.send_due()
    [failed] = await outcome_events(store)
    assert failed["type"] == "NotificationFailed"
    assert "no contact on file for staff r999" in str(failed["error"])


async def test_a_resident_whose_opinion_staff_took_down_gets_a_receipt_with_the_link(
    demo: Notification, store: EventStore, sink: Sink
) -> None:
    opinion = await resident_opinion(demo.vault, demo.pool, channel="walk_in", code="WALK2345INXX")
    await happen(store, demo, opinion)
    await demo.sender.send_due()
    [sms] = of("sms", list(sink.received))
    assert "/t/WALK2345INXX" in sms.body
    assert "WALK-2345-INXX" in sms.body


async def test_an_urgent_case_reaches_the_station_staff_on_their_robots_and_phones(
    demo: Notification, store: EventStore, sink: Sink
) -> None:
    made = await resident_opinion(demo.vault, demo.pool)
    await happen(store, demo, made)
    case = opened(made.opinion_id, priority="urgent")  # type: ignore[arg-type]
    await happen(store, demo, case)
    await happen(store, demo, assigned(case.case_id, "r017"))
    await demo.sender.send_due()

    robots = of("wecom", list(sink.received))
    mentioned = {json.loads(r.body)["text"]["mentioned_list"][0] for r in robots}
    assert mentioned == {"lo_dh_02"}  # 东湖社区 station's liaison officer, on the group robot
    assert any("要事" in r.subject for r in robots)
    head_sms = [json.loads(m.body)["to"] for m in of("sms", list(sink.received))]
    assert "13900000002" in head_sms  # r002, the station head, has a mobile on file


async def test_a_subscriber_receives_case_events_as_signed_cloudevents(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    url = f"http://127.0.0.1:{sink.http_port}/webhook/city-12345"
    async with every_district(demo.pool).acquire() as conn:
        sub = await subscriptions.create(
            conn,
            "demo",
            "12345 平台",
            url,
            [],
            "admin_demo",
            clock(),
            keys=demo.settings.privacy_keys(),
        )
    case_id, _ = await open_case(demo, store)
    await demo.sender.send_due()

    hooks = [m for m in of("webhook", list(sink.received)) if m.path == "/webhook/city-12345"]
    documents = [json.loads(h.body) for h in hooks]
    assert sorted(d["type"] for d in documents) == [
        "cn.minqing.routing.CaseAssigned.v1",
        "cn.minqing.routing.CaseOpened.v1",
    ]
    for hook, document in zip(hooks, documents, strict=True):
        assert document["specversion"] == "1.0"
        assert document["subject"] == f"case-{case_id}"
        assert document["data"]["case_id"] == case_id
        assert hook.headers["content-type"].startswith("application/cloudevents+json")
        assert verify(sub.secret, hook.headers, hook.body.encode(), now=int(clock().timestamp()))
        assert hook.headers["idempotency-key"]
    ids = {d["id"] for d in documents}
    stored = {str(r.event_id) for r in await store.read_all(limit=1000, categories=["case"])}
    assert ids == stored  # ce_id is the event's own id: a replay can be recognised


async def test_a_failing_subscriber_is_retried_then_failed_while_the_others_keep_receiving(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    base = f"http://127.0.0.1:{sink.http_port}/webhook"
    async with every_district(demo.pool).acquire() as conn:
        broken = await subscriptions.create(
            conn,
            "demo",
            "坏的",
            f"{base}/down",
            [],
            "a",
            clock(),
            keys=demo.settings.privacy_keys(),
        )
        await subscriptions.create(
            conn, "demo", "好的", f"{base}/up", [], "a", clock(), keys=demo.settings.privacy_keys()
        )
    sink.behaviours["/webhook/down"] = Behaviour(status=503)
    await open_case(demo, store)

    for _ in range(demo.settings.delivery_max_attempts):
        await demo.sender.send_due()
        clock.advance(minutes=5)  # past any backoff

    rows = await every_district(demo.pool).fetch(
        "SELECT recipient, status, attempts, last_error FROM notification.deliveries "
        "WHERE recipient_kind = 'subscriber' ORDER BY recipient, created_at"
    )
    down = [r for r in rows if r["recipient"] == broken.subscription_id]
    up = [r for r in rows if r["recipient"] != broken.subscription_id]
    assert [r["status"] for r in up] == ["sent", "sent"]
    assert [r["status"] for r in down] == ["failed", "failed"]
    assert all(r["attempts"] == demo.settings.delivery_max_attempts for r in down)
    assert all("HTTP 503" in r["last_error"] for r in down)
    failed = [e for e in await outcome_events(store) if e["type"] == "NotificationFailed"]
    assert {e["recipient"] for e in failed} == {broken.subscription_id}


async def test_a_paused_subscription_keeps_its_deliveries_until_resumed(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    url = f"http://127.0.0.1:{sink.http_port}/webhook/paused"
    async with every_district(demo.pool).acquire() as conn:
        sub = await subscriptions.create(
            conn,
            "demo",
            "暂停",
            url,
            ["CaseOpened"],
            "a",
            clock(),
            keys=demo.settings.privacy_keys(),
        )
        await subscriptions.set_status(conn, "demo", sub.subscription_id, "paused", clock())
    await open_case(demo, store)
    await demo.sender.send_due()
    assert [m for m in sink.received if m.path == "/webhook/paused"] == []

    async with every_district(demo.pool).acquire() as conn:
        await subscriptions.set_status(conn, "demo", sub.subscription_id, "active", clock())
    await demo.sender.send_due()
    [hook] = [m for m in sink.received if m.path == "/webhook/paused"]
    assert json.loads(hook.body)["type"].endswith("CaseOpened.v1")  # only the type asked for


async def test_a_rotated_secret_signs_beside_the_old_one_during_the_grace_period(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    url = f"http://127.0.0.1:{sink.http_port}/webhook/rotating"
    async with every_district(demo.pool).acquire() as conn:
        sub = await subscriptions.create(
            conn,
            "demo",
            "轮换",
            url,
            ["CaseOpened"],
            "a",
            clock(),
            keys=demo.settings.privacy_keys(),
        )
        rotated = await subscriptions.rotate(
            conn,
            "demo",
            sub.subscription_id,
            grace=timedelta(hours=24),
            now=clock(),
            keys=demo.settings.privacy_keys(),
        )
    assert rotated.secret != sub.secret
    await open_case(demo, store)
    await demo.sender.send_due()
    [hook] = [m for m in sink.received if m.path == "/webhook/rotating"]
    now = int(clock().timestamp())
    assert verify(rotated.secret, hook.headers, hook.body.encode(), now=now)
    assert verify(sub.secret, hook.headers, hook.body.encode(), now=now)


@pytest.mark.parametrize("reply", ["电话13912345678王秀英说路灯坏了", "请联系王秀英"])
async def test_the_public_feed_carries_the_allowed_facts_and_no_free_text(
    demo: Notification, store: EventStore, clock: Clock, reply: str
) -> None:
    case_id, _ = await open_case(demo, store)
    await happen(
        store,
        demo,
        CaseReplied(
            district_id="demo", occurred_at=clock(), actor=LIAISON, case_id=case_id, message=reply
        ),
    )
    assert await demo.public_feed.publish_once() == 3
    topic = demo.settings.topic(public_cases_topic("demo"))
    records = await read_topic(demo.settings.kafka_bootstrap, topic, until=lambda r: len(r) >= 3)
    everything = " ".join(
        (r.value or b"").decode() + " ".join(v.decode() for _, v in r.headers) for r in records
    )
    for secret in (PHONE, NAME, reply, "路灯坏了", "选区、专长", "subj_"):
        assert secret not in everything
    by_type = {dict(r.headers)["ce_type"].decode(): json.loads(r.value or b"{}") for r in records}
    opened_data = by_type["cn.minqing.routing.CaseOpened.v1"]
    assert opened_data["category_code"] == "municipal"
    assert opened_data["community"] == "东湖社区"
    assert "matched_keywords" not in opened_data
    assert set(by_type["cn.minqing.routing.CaseReplied.v1"]) == {
        "case_id",
        "district_id",
        "occurred_at",
    }
    assert (
        await every_district(demo.pool).fetchval("SELECT count(*) FROM notification.public_feed")
        == 0
    )


async def test_a_slow_subscriber_gets_only_its_share_of_the_senders_and_holds_up_nobody(
    demo: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    share = demo.settings.sender_per_recipient
    url = f"http://127.0.0.1:{sink.http_port}/webhook/slow"
    async with every_district(demo.pool).acquire() as conn:
        await subscriptions.create(
            conn, "demo", "慢的", url, [], "a", clock(), keys=demo.settings.privacy_keys()
        )
    sink.behaviours["/webhook/slow"] = Behaviour(delay=0.3)
    for _ in range(4):
        await open_case(demo, store)  # 8 events for the slow subscriber, 4 mails

    stop = asyncio.Event()
    sending = asyncio.create_task(demo.sender.run(stop))
    mails = await sink.wait_for(lambda m: len(of("mail", m)) == 4, timeout=10)
    hooks_when_mails_done = len(of("webhook", mails))
    await sink.wait_for(lambda m: len(of("webhook", m)) == 8, timeout=20)
    stop.set()
    await sending

    assert sink.peak["/webhook/slow"] <= share
    assert hooks_when_mails_done < 8  # the mails did not wait for the slow subscriber
    # Stopped, the sender has recorded every outcome (its recording task finishes the
    # record it is making, and what ended after it is recorded before run returns).
    ended = [s for s in await statuses(demo) if s[0] == "subscription" or s[2] == "email"]
    assert {s[3] for s in ended} == {"sent"}
    sent = [e for e in await outcome_events(store) if e["type"] == "NotificationSent"]
    assert len(sent) == len(ended)


async def test_outcomes_waiting_to_be_recorded_hold_their_sending_slots(
    demo: Notification, store: EventStore
) -> None:
    """While the recording lags (a slow database), the sender claims nothing more: a sent
    delivery must not wait for its record until it is taken for a dead sender's."""
    await open_case(demo, store)  # one delivery due
    sender = demo.sender
    # As many outcomes waiting as there are slots (only their number counts for a claim).
    sender._unrecorded = cast(list[Finished], [None] * demo.settings.sender_concurrency)

    assert await sender._claim_and_start() == 0
    assert [s[3] for s in await statuses(demo)] == ["pending"]

    sender._unrecorded = []
    assert await sender._claim_and_start() == 1
    assert await sender.send_due() == 1
    assert [s[3] for s in await statuses(demo)] == ["sent"]
