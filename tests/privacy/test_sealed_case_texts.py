"""Staff's texts sealed inside case events (``eventkit.sealed_texts.CASE_TEXTS``): replies,
results, notes, reasons, answers, departments' actions and the classifier's matched
words travel sealed with the case's own text key; every reader (the consumers, routing's
load and rebuild, the staff's history, the export, the audit timeline) opens them, and
deleting the key (forget, retention) leaves nothing of them in the append-only store
that opens, its chains intact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from contracts import REGISTRY, Actor, ActorRole
from contracts.cases import CaseReplied, CaseResolved
from contracts.envelope import Envelope
from contracts.registry import serialize
from eventkit.audit.timeline import case_timeline
from eventkit.db import district_transaction
from eventkit.keys import KeyRing
from eventkit.privacy_rights import ERASED
from eventkit.sealed_texts import (
    SEALED_MARK,
    TextKeys,
    open_case_data,
    opened_case_data,
    seal_case_events,
)
from services.reporting.rebuild import Rebuild, _Run
from services.routing import views
from services.routing.rebuild import rebuild
from tests.every_district import every_district
from tests.privacy.privacy_support import (
    ADMIN_ID,
    STATION,
    A,
    B,
    Matter,
    System,
    broken_chains,
    resident,
    rows_containing,
)

WHEN = datetime(2026, 3, 14, 1, 30, tzinfo=UTC)
STAFF = Actor(id="lo_dh_02", role=ActorRole.LIAISON)


async def _case_events(system: System, case_id: str) -> dict[str, dict[str, Any]]:
    """The case's stored events' data by type (the last of each type)."""
    return {r.event_type: r.data for r in await system.store.read_stream(f"case-{case_id}")}


async def _text_keys(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await every_district(pool).fetch("SELECT key_id, district_id FROM privacy.text_keys")
    return {r["key_id"]: r["district_id"] for r in rows}


async def _timeline_texts(system: System, matter: Matter) -> dict[str, Any]:
    async with system.store.pool.acquire() as conn:
        timeline = await case_timeline(conn, matter.case_id)
    assert timeline is not None
    assert timeline.intact
    return {
        e.event_type: e.data for e in timeline.entries if e.stream_id == f"case-{matter.case_id}"
    }


# --- the mechanism, without the services ----------------------------------------------


def test_a_case_event_stored_before_sealing_is_read_in_clear() -> None:
    legacy = serialize(
        CaseReplied(
            district_id=A, occurred_at=WHEN, actor=STAFF, case_id="c_old", message="旧的答复"
        )
    )
    assert "sealed" not in legacy or legacy["sealed"] is None

    opened = opened_case_data("CaseReplied", legacy, {})

    assert opened == legacy
    event = REGISTRY.parse("CaseReplied", 1, opened)
    assert isinstance(event, CaseReplied)
    assert event.message == "旧的答复"


async def test_a_case_is_sealed_with_one_key_and_its_later_texts_with_the_same(
    pool: asyncpg.Pool,
) -> None:
    texts = TextKeys(KeyRing("v1", "vault-one-0123456789abcdef0123456789"))
    base = {"district_id": A, "occurred_at": WHEN, "actor": STAFF, "case_id": "c_seal"}
    replied = CaseReplied(**base, message="已联系物业")
    resolved = CaseResolved(**base, resolution_seq=1, result="已修好")
    async with district_transaction(pool, A) as conn:
        [first] = await seal_case_events(conn, texts, [replied])
        [second] = await seal_case_events(conn, texts, [resolved])
        opened = await open_case_data(
            conn,
            texts,
            [("CaseReplied", serialize(first)), ("CaseResolved", serialize(second))],
        )

    assert (first.message, second.result) == (SEALED_MARK, SEALED_MARK)
    assert first.sealed is not None
    assert second.sealed is not None
    assert first.sealed.key_id == second.sealed.key_id == "c_seal"
    assert [opened[0]["message"], opened[1]["result"]] == ["已联系物业", "已修好"]


# --- end to end, every service --------------------------------------------------------


async def test_staff_texts_travel_sealed_and_every_reader_gets_them_in_clear(
    system: System, database_url: str
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    who = jia.resident
    await system.work_through(jia)

    for text in (who.reply, who.result):
        assert await rows_containing(database_url, text, ("eventstore",)) == [], text
    stored = await _case_events(system, jia.case_id)
    assert stored["CaseReplied"]["message"] == SEALED_MARK
    assert stored["CaseReplied"]["sealed"]["key_id"] == jia.case_id
    assert stored["CaseResolved"]["result"] == SEALED_MARK
    assert stored["CaseOpened"]["matched_keywords"] == []
    assert stored["CaseOpened"]["sealed"]["key_id"] == jia.case_id
    assert (await _text_keys(system.store.pool))[jia.case_id] == A

    # The consumers got the texts: the resident's SMS, reporting's note, intake's
    # timeline, routing's own row (the words matched, as the case was opened).
    sms = [m.body for m in system.sink.received if m.kind == "sms"]
    assert any(who.reply in body for body in sms), "the resident was told the reply"
    async with district_transaction(system.store.pool, A) as conn:
        notes = {
            r["note"]
            for r in await conn.fetch(
                "SELECT note FROM reporting.case_steps WHERE case_id = $1", jia.case_id
            )
        }
        steps = {
            r["note"]
            for r in await conn.fetch(
                "SELECT step ->> 'note' AS note FROM intake.case_steps WHERE opinion_id = $1",
                jia.opinion_id,
            )
        }
        keywords = await conn.fetchval(
            "SELECT matched_keywords FROM routing.cases WHERE case_id = $1", jia.case_id
        )
        history = await views.history(system.store, conn, jia.case_id)
    assert who.result in notes
    assert {who.reply, who.result} <= steps
    assert keywords
    assert all(word in who.text for word in keywords)
    shown = {e.type: e for e in history}
    assert who.reply in str(shown["CaseReplied"])
    assert SEALED_MARK not in str(shown["CaseReplied"])
    # The auditor reads them too.
    timeline = await _timeline_texts(system, jia)
    assert timeline["CaseReplied"]["message"] == who.reply
    assert timeline["CaseOpened"]["matched_keywords"] == keywords


async def test_a_rebuild_brings_the_texts_back_opened(system: System) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    async with district_transaction(system.store.pool, A) as conn:
        before = await conn.fetchval(
            "SELECT matched_keywords FROM routing.cases WHERE case_id = $1", jia.case_id
        )
    assert before

    async with system.routing.pool.acquire() as conn:
        await rebuild(conn, system.store, TextKeys(system.settings.privacy_keys()))

    async with district_transaction(system.store.pool, A) as conn:
        after = await conn.fetchval(
            "SELECT matched_keywords FROM routing.cases WHERE case_id = $1", jia.case_id
        )
    assert after == before


async def test_forgetting_deletes_the_case_key_and_the_timeline_shows_erased(
    system: System, database_url: str
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    yi = await system.submit(resident("乙", "13800001111"), A)
    await system.work_through(jia)
    await system.work_through(yi)

    forgotten = await system.rights.forget_phone(
        A, jia.resident.phone, requested_by=ADMIN_ID, reason="居民申请删除"
    )

    assert forgotten.erased["routing"]["text_keys"] == 1
    keys = await _text_keys(system.store.pool)
    assert jia.case_id not in keys
    assert yi.case_id in keys  # another resident's case keeps its key
    timeline = await _timeline_texts(system, jia)
    assert timeline["CaseReplied"]["message"] == ERASED
    assert timeline["CaseResolved"]["result"] == ERASED
    assert timeline["CaseOpened"]["matched_keywords"] == []
    assert (await _timeline_texts(system, yi))["CaseReplied"]["message"] == yi.resident.reply
    assert await broken_chains(database_url) == []
    # The case still loads, its texts erased.
    async with district_transaction(system.store.pool, A) as conn:
        history = await views.history(system.store, conn, jia.case_id)
    assert jia.resident.reply not in str(history)


async def test_retention_deletes_the_keys_of_cases_closed_before_the_period_only(
    system: System, database_url: str
) -> None:
    await system.rights.set_retention(A, 30, requested_by=ADMIN_ID)
    old = await system.submit(resident("旧", "13900000001"), A)
    await system.work_through(old)
    system.clock.advance(days=40)
    recent = await system.submit(resident("近", "13900000003"), A)
    await system.work_through(recent)

    await system.rights.retention_run(A)

    keys = await _text_keys(system.store.pool)
    assert old.case_id not in keys
    assert recent.case_id in keys
    assert (await _timeline_texts(system, old))["CaseResolved"]["result"] == ERASED
    assert (await _timeline_texts(system, recent))["CaseResolved"]["result"] == (
        recent.resident.result
    )
    assert await broken_chains(database_url) == []


async def test_a_case_transferred_to_another_district_seals_under_its_own_key(
    system: System, database_url: str
) -> None:
    here = await system.submit(resident("转", "13966667777"), A)
    there = await system.transfer(here, B)
    await system.work_through(there)

    stored = await _case_events(system, there.case_id)
    assert stored["CaseReplied"]["sealed"]["key_id"] == there.case_id
    keys = await _text_keys(system.store.pool)
    assert keys[there.case_id] == B
    # The transfer's reason stays with the first case, under the first district's key.
    moved = (await _case_events(system, here.case_id))["CaseTransferred"]
    assert (moved["reason"], moved["sealed"]["key_id"]) == (SEALED_MARK, here.case_id)
    assert keys[here.case_id] == A
    sms = [m.body for m in system.sink.received if m.kind == "sms"]
    assert any(here.resident.reply in body for body in sms), "told in the other district"

    await system.rights.forget_phone(
        A, here.resident.phone, requested_by=ADMIN_ID, reason="居民申请删除"
    )

    keys = await _text_keys(system.store.pool)
    assert here.case_id not in keys
    assert there.case_id not in keys  # forget followed the transfer
    assert (await _timeline_texts(system, there))["CaseReplied"]["message"] == ERASED
    assert await broken_chains(database_url) == []


async def test_the_consumer_opens_a_batchs_texts_with_one_look_up(
    system: System, pool: asyncpg.Pool
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    yi = await system.submit(resident("乙", "13800001111"), A)
    await system.work_through(jia)
    await system.work_through(yi)
    envelopes = [
        r.envelope()
        for c in (jia.case_id, yi.case_id)
        for r in await system.store.read_stream(f"case-{c}")
    ]
    queries: list[str] = []

    async with district_transaction(pool, A) as conn:
        conn.add_query_logger(lambda q: queries.append(q.query))
        opened = await system.reporting.consumer._opened(conn, envelopes)

    assert len([q for q in queries if "text_keys" in q]) == 1
    replies = [e for e in opened if e.event_type == "CaseReplied"]
    assert [e.data["message"] for e in replies] == [jia.resident.reply, yi.resident.reply]
    assert all("sealed" not in e.data for e in replies)
    legacy = Envelope.wrap(
        CaseReplied(district_id=A, occurred_at=WHEN, actor=STAFF, case_id="c_old", message="旧")
    )
    async with district_transaction(pool, A) as conn:
        assert await system.reporting.consumer._opened(conn, [legacy]) == [legacy]


async def test_an_answer_given_at_the_desk_travels_sealed_and_is_shredded_when_forgotten(
    system: System, database_url: str
) -> None:
    who = resident("公", "13977778888")
    answer = "公：已当场告知路灯报修电话，并登记了维修"
    posted = await system.client.post(
        "/api/v1/opinions",
        json={
            "channel": "walk_in",
            "district": A,
            "station_code": STATION,
            "text": who.text,
            "location": {"community": "东湖社区"},
            "contact": {"name": who.name, "phone": who.phone},
            "consent": True,
            "answered_on_the_spot": answer,
        },
        headers=system.staff_headers(A),
    )
    assert posted.status_code == 201, posted.text
    await system.pump()
    opinion_id = posted.json()["opinion_id"]

    assert await rows_containing(database_url, answer, ("eventstore",)) == []
    [submitted, *_] = await system.store.read_stream(f"opinion-{opinion_id}")
    assert submitted.data["on_the_spot"]["answer"] == SEALED_MARK
    async with district_transaction(system.store.pool, A) as conn:
        case_id = await conn.fetchval(
            "SELECT case_id FROM routing.cases WHERE opinion_id = $1", opinion_id
        )
        steps = {
            r["note"]
            for r in await conn.fetch(
                "SELECT step ->> 'note' AS note FROM intake.case_steps WHERE opinion_id = $1",
                opinion_id,
            )
        }
    assert answer in steps, "the resident's timeline shows the answer"
    matter = Matter(who, A, opinion_id, "", str(case_id))
    async with system.store.pool.acquire() as conn:
        timeline = await case_timeline(conn, matter.case_id)
    assert timeline is not None
    shown = {e.event_type: e.data for e in timeline.entries}
    assert shown["OpinionSubmitted"]["on_the_spot"]["answer"] == answer
    assert shown["CaseResolved"]["result"] == answer

    await system.rights.forget_phone(A, who.phone, requested_by=ADMIN_ID, reason="居民申请删除")

    async with system.store.pool.acquire() as conn:
        timeline = await case_timeline(conn, matter.case_id)
    assert timeline is not None
    shown = {e.event_type: e.data for e in timeline.entries}
    assert shown["OpinionSubmitted"]["on_the_spot"]["answer"] == ERASED
    assert shown["CaseResolved"]["result"] == ERASED
    assert timeline.intact


@pytest.mark.parametrize("workers", [1, 2], ids=["in the rebuild process", "in 2 fold processes"])
async def test_reportings_rebuild_folds_the_texts_opened(system: System, workers: int) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    await system.work_through(jia)
    rebuild = Rebuild(system.store, system.clock, workers=workers, settings=system.settings)

    result = await rebuild.run(["cases"])

    assert result.comparisons, "the rebuilt slot was compared with the live one"
    assert result.equal, [c.differences for c in result.comparisons]
    async with district_transaction(system.store.pool, A) as conn:
        notes = {
            r["note"]
            for r in await conn.fetch(
                "SELECT note FROM reporting.case_steps WHERE case_id = $1", jia.case_id
            )
        }
    assert {jia.resident.reply, jia.resident.result} <= notes
    assert SEALED_MARK not in notes


async def test_a_resident_forgotten_while_a_rebuild_reads_is_not_brought_back(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    yi = await system.submit(resident("乙", "13800001111"), A)
    await system.work_through(jia)
    await system.work_through(yi)
    opened = _Run._opened
    forgotten: list[bool] = []

    async def opened_then_forgotten(run: _Run, conn: Any, events: list[Any]) -> list[Any]:
        out = await opened(run, conn, events)
        reply = any(
            e.event_type == "CaseReplied" and e.stream_id.endswith(jia.case_id) for e in events
        )
        if reply and not forgotten:
            # The reply was opened with the case's key, which the rebuild keeps: the
            # resident is forgotten now, before the case's result is read.
            await system.rights.forget_phone(
                A, jia.resident.phone, requested_by=ADMIN_ID, reason="居民申请删除"
            )
            forgotten.append(True)
        return out

    monkeypatch.setattr(_Run, "_opened", opened_then_forgotten)
    rebuild = Rebuild(system.store, system.clock, batch=1, settings=system.settings)

    result = await rebuild.run(["cases"])

    assert forgotten, "the resident was forgotten while the rebuild read"
    assert result.equal, [c.differences for c in result.comparisons]
    async with district_transaction(system.store.pool, A) as conn:
        rows = await conn.fetch(
            "SELECT case_id, kind, note FROM reporting.case_steps "
            "WHERE case_id = ANY($1::text[]) AND kind = ANY($2::text[])",
            [jia.case_id, yi.case_id],
            ["replied", "resolved"],
        )
    notes = {(r["case_id"], r["kind"]): r["note"] for r in rows}
    assert notes[(jia.case_id, "replied")] == ERASED
    assert notes[(jia.case_id, "resolved")] == ERASED
    assert notes[(yi.case_id, "replied")] == yi.resident.reply
