"""Residents' words sealed inside their events (``eventkit.sealed_texts``): an opinion's
text, address, point and attachments travel sealed with the opinion's own text key, every
reader opens them, and deleting the key (forget, retention) leaves nothing of them in the
append-only store that opens, its chains intact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from contracts import REGISTRY, Actor, ActorRole, Channel, Location, OpinionSubmitted
from contracts.intake import OpinionSubmittedV2
from contracts.registry import serialize
from eventkit.audit.timeline import case_timeline
from eventkit.db import create_pool, district_transaction, scope
from eventkit.keys import KeyRing
from eventkit.privacy import SealError, wrapped_with
from eventkit.privacy_rights import ERASED
from eventkit.sealed_texts import OPINION_FIELD, TextKey, TextKeys, opened_opinion
from tests.every_district import every_district
from tests.privacy.privacy_support import (
    ADMIN_ID,
    A,
    B,
    Matter,
    System,
    broken_chains,
    resident,
    rows_containing,
)
from tests.sealed_support import opened

WHEN = datetime(2026, 3, 14, 1, 30, tzinfo=UTC)


async def _stored_opinion(system: System, matter: Matter) -> dict[str, Any]:
    submitted, *_ = await system.store.read_stream(f"opinion-{matter.opinion_id}")
    assert submitted.event_type == "OpinionSubmitted"
    return submitted.data


async def _text_key_ids(pool: asyncpg.Pool) -> set[str]:
    return {
        r["key_id"]
        for r in await every_district(pool).fetch("SELECT key_id FROM privacy.text_keys")
    }


# --- the mechanism, without a database ------------------------------------------------


def test_a_sealed_text_opens_only_with_its_key_and_for_its_field() -> None:
    key = TextKey("op_1", bytes(range(32)))
    sealed = key.seal(OPINION_FIELD, {"text": "楼道灯坏了", "lat": 39.9})

    assert "楼道灯" not in sealed.ciphertext
    assert key.open(OPINION_FIELD, sealed) == {"text": "楼道灯坏了", "lat": 39.9}
    with pytest.raises(SealError):
        key.open("message", sealed)  # moved to another field
    with pytest.raises(SealError):
        TextKey("op_1", bytes(32)).open(OPINION_FIELD, sealed)  # another key


def _v2_opinion() -> dict[str, Any]:
    return serialize(
        OpinionSubmittedV2(
            district_id=A,
            occurred_at=WHEN,
            actor=Actor(id="subj_x", role=ActorRole.RESIDENT),
            opinion_id="op_legacy",
            channel=Channel.QR,
            text="旧事件：路灯坏了",
            location=Location(community="东湖社区", address="东门 3 号楼", lat=39.9, long=116.3),
        )
    )


def test_an_opinion_stored_before_sealing_is_read_in_clear_marked_legacy() -> None:
    event = REGISTRY.parse("OpinionSubmitted", 2, _v2_opinion())

    assert isinstance(event, OpinionSubmitted)
    assert event.legacy_clear is True
    assert event.sealed is None
    # Readers open nothing and change nothing: no key is asked for.
    assert opened_opinion(event, {}) == event
    assert event.text == "旧事件：路灯坏了"
    assert event.location.address == "东门 3 号楼"


# --- end to end, every service --------------------------------------------------------


async def test_an_opinion_travels_sealed_and_is_still_classified_answered_and_counted(
    system: System,
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    who = jia.resident

    data = await _stored_opinion(system, jia)
    for clear in (who.text, "东门 3 号楼", who.attachment):
        assert clear not in str(data), clear
    assert data["sealed"]["key_id"] == jia.opinion_id
    assert data["text"] == ""
    assert (await opened(system.store.pool, data))["text"] == who.text
    # Routing opened it to classify and keep it with the case: the words it matched come
    # from the text.
    async with district_transaction(system.store.pool, A) as conn:
        case = await conn.fetchrow(
            "SELECT text, address, matched_keywords FROM routing.cases WHERE case_id = $1",
            jia.case_id,
        )
    assert case is not None
    assert (case["text"], case["address"]) == (who.text, "东门 3 号楼")
    assert case["matched_keywords"]
    assert all(word in who.text for word in case["matched_keywords"])

    await system.work_through(jia)
    sms = [m.body for m in system.sink.received if m.kind == "sms"]
    assert any(who.reply in body for body in sms), "the resident was told the reply"
    async with district_transaction(system.store.pool, A) as conn:
        notes = await conn.fetch(
            "SELECT note FROM reporting.case_steps WHERE case_id = $1", jia.case_id
        )
    assert who.result in {n["note"] for n in notes}
    # The resident's comment on the resolution travels sealed with the opinion's key;
    # intake keeps it for the tracking page.
    _, rated = await system.store.read_stream(f"opinion-{jia.opinion_id}")
    assert rated.event_type == "FeedbackSubmitted"
    assert rated.data["comment"] is None
    assert who.comment not in str(rated.data)
    assert rated.data["sealed"]["key_id"] == jia.opinion_id
    async with district_transaction(system.store.pool, A) as conn:
        kept = await conn.fetchval(
            "SELECT comment FROM intake.feedback WHERE opinion_id = $1", jia.opinion_id
        )
    assert kept == who.comment


async def test_forgetting_a_resident_deletes_their_opinions_text_keys_and_nothing_opens(
    system: System, database_url: str
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    yi = await system.submit(resident("乙", "13800001111"), A)
    await system.work_through(jia)
    assert {jia.opinion_id, yi.opinion_id} <= await _text_key_ids(system.store.pool)

    async with system.store.pool.acquire() as conn:
        before = await case_timeline(conn, jia.case_id)
    assert before is not None
    shown = {e.event_type: e.data for e in before.entries}
    assert shown["OpinionSubmitted"]["text"] == jia.resident.text
    assert shown["FeedbackSubmitted"]["comment"] == jia.resident.comment

    forgotten = await system.rights.forget_phone(
        A, jia.resident.phone, requested_by=ADMIN_ID, reason="居民申请删除"
    )

    assert forgotten.erased["intake"]["text_keys"] == 1
    keys = await _text_key_ids(system.store.pool)
    assert jia.opinion_id not in keys
    assert yi.opinion_id in keys  # another resident's key stays
    data = await _stored_opinion(system, jia)
    assert "ciphertext" in data["sealed"]  # the event is as it was stored...
    reread = await opened(system.store.pool, data)
    assert (reread["text"], reread["location"]["address"], reread["attachments"]) == (
        ERASED,
        None,
        [],
    )  # ...and opens to nothing
    assert (await opened(system.store.pool, await _stored_opinion(system, yi)))["text"] == (
        yi.resident.text
    )
    assert await rows_containing(database_url, jia.resident.text, ("eventstore",)) == []
    # The auditor's timeline shows the text erased; the chains still verify.
    async with system.store.pool.acquire() as conn:
        timeline = await case_timeline(conn, jia.case_id)
    assert timeline is not None
    [submitted] = [e for e in timeline.entries if e.event_type == "OpinionSubmitted"]
    assert submitted.data["text"] == ERASED
    [rated] = [e for e in timeline.entries if e.event_type == "FeedbackSubmitted"]
    assert rated.data["comment"] == ERASED
    assert await rows_containing(database_url, jia.resident.comment, ("eventstore",)) == []
    assert timeline.intact
    assert await broken_chains(database_url) == []


async def test_retention_deletes_the_text_keys_of_matters_closed_before_the_period_only(
    system: System,
) -> None:
    await system.rights.set_retention(A, 30, requested_by=ADMIN_ID)
    old = await system.submit(resident("旧", "13900000001"), A)
    await system.work_through(old)
    system.clock.advance(days=40)
    recent = await system.submit(resident("近", "13900000003"), A)
    await system.work_through(recent)
    still_open = await system.submit(resident("开", "13900000004"), A)

    await system.rights.retention_run(A)

    keys = await _text_key_ids(system.store.pool)
    assert old.opinion_id not in keys
    assert {recent.opinion_id, still_open.opinion_id} <= keys
    old_data = await opened(system.store.pool, await _stored_opinion(system, old))
    assert old_data["text"] == ERASED
    recent_data = await opened(system.store.pool, await _stored_opinion(system, recent))
    assert recent_data["text"] == recent.resident.text


async def test_a_text_key_is_out_of_reach_of_another_districts_scope(system: System) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    data = await _stored_opinion(system, jia)

    async with system.store.pool.acquire() as conn, conn.transaction():
        await scope(conn, B)
        found = await TextKeys().found(conn, [jia.opinion_id])
        deleted = await conn.execute("DELETE FROM privacy.text_keys")
    assert found == {}
    assert deleted == "DELETE 0"
    assert (await opened(system.store.pool, data))["text"] == jia.resident.text


async def test_text_keys_are_wrapped_again_with_the_current_vault_key(
    pool: asyncpg.Pool, database_url: str
) -> None:
    first = KeyRing("v1", "vault-one-0123456789abcdef0123456789")
    async with district_transaction(pool, A) as conn:
        key = await TextKeys(first).create(conn, A, "op_rotated")
    sealed = key.seal(OPINION_FIELD, {"text": "井盖丢了"})
    second = KeyRing("v2", "vault-two-0123456789abcdef0123456789", {"v1": first.current})

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await TextKeys(second).rewrap(pool)  # the services may not rewrite keys
    owner = await create_pool(database_url, role=None, max_size=2)
    try:
        assert await TextKeys(second).rewrap(owner) == 1
        assert await TextKeys(second).rewrap(owner) == 0
    finally:
        await owner.close()

    stored = await every_district(pool).fetchval(
        "SELECT key FROM privacy.text_keys WHERE key_id = 'op_rotated'"
    )
    assert wrapped_with(bytes(stored)) == "v2"
    async with district_transaction(pool, A) as conn:
        only_new = await TextKeys(KeyRing("v2", second.current)).found(conn, ["op_rotated"])
    assert only_new["op_rotated"].open(OPINION_FIELD, sealed) == {"text": "井盖丢了"}


async def test_a_withdrawal_reason_travels_sealed_and_is_shredded_when_forgotten(
    system: System, database_url: str
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    reason = "甲：物业已经修好了，谢谢"
    answer = await system.client.post(
        f"/api/v1/track/{jia.tracking_code}/withdraw", json={"reason": reason}
    )
    assert answer.status_code == 201, answer.text
    await system.pump()

    _, withdrawn = await system.store.read_stream(f"opinion-{jia.opinion_id}")
    assert withdrawn.event_type == "OpinionWithdrawn"
    assert withdrawn.data["reason"] is None
    assert withdrawn.data["sealed"]["key_id"] == jia.opinion_id
    assert await rows_containing(database_url, reason, ("eventstore",)) == []
    assert await system.status(jia) == "closed"  # routing closed the case all the same
    async with system.store.pool.acquire() as conn:
        before = await case_timeline(conn, jia.case_id)
    assert before is not None
    shown = {e.event_type: e.data for e in before.entries}
    assert shown["OpinionWithdrawn"]["reason"] == reason

    await system.rights.forget_phone(A, jia.resident.phone, requested_by=ADMIN_ID, reason=None)

    async with system.store.pool.acquire() as conn:
        after = await case_timeline(conn, jia.case_id)
    assert after is not None
    shown = {e.event_type: e.data for e in after.entries}
    assert shown["OpinionWithdrawn"]["reason"] == ERASED
    assert await rows_containing(database_url, reason, ("intake", "eventstore")) == []
