"""Residents' rights across district borders and over what staff made public: a matter
transferred from district A to district B is exported and forgotten in both districts,
and its texts are kept until its last continuation closed; replies, results and
evidence marked public leave Open311 when they are erased; a department's action and
evidence sent to an outside subscriber, the words the classifier matched and the
reasons of links are erased with the rest."""

from __future__ import annotations

from eventkit.db import ALL_DISTRICTS, district_transaction
from services.notification import subscriptions
from tests.privacy.privacy_support import (
    ADMIN,
    ADMIN_ID,
    SCHEMAS,
    A,
    B,
    Matter,
    System,
    resident,
    rows_containing,
)


def _published(matter: Matter) -> list[str]:
    """What staff marked public of a matter: the reply, the result, its evidence."""
    who = matter.resident
    return [who.reply, who.result, who.evidence]


def _texts(matter: Matter) -> list[str]:
    """Every text of a matter kept outside the event store, and its links."""
    who = matter.resident
    return [who.text, who.reply, who.result, who.attachment, who.evidence, who.comment]


async def test_a_transferred_matter_is_exported_and_forgotten_in_every_district(
    system: System, database_url: str
) -> None:
    here = await system.submit(resident("转", "13911112222"), A)
    there = await system.transfer(here, B)
    await system.work_through(there, public=True)  # rated through the tracking link
    assert await system.status(there) == "closed"
    published = await system.open311(B)
    for text in _published(there):
        assert text in published, text

    matters, document = await system.rights.export(
        A, here.resident.phone, requested_by=ADMIN_ID, reason="居民申请 2026-031"
    )

    assert matters.districts == (A, B)
    assert document["districts"] == [A, B]
    cases = {c["case_id"]: c["district_id"] for c in document["routing"]["cases"]}
    assert cases == {here.case_id: A, there.case_id: B}
    notes = {s["note"] for s in document["intake"]["timeline"] if s["district_id"] == B}
    assert there.resident.reply in notes
    assert there.resident.result in notes
    evidence = {s["media_url"] for s in document["intake"]["timeline"]}
    assert there.resident.evidence in evidence
    texts = [m["texts"] for m in document["notification"]["messages"]]
    assert {"result": there.resident.result} in texts
    reported = {c["case_id"] for c in document["reporting"]["cases"]}
    assert reported == {here.case_id, there.case_id}
    assert {r["case_id"] for r in document["reporting"]["ratings"]} == {there.case_id}
    # The rating of the case continued in B is counted in B, where the case is.
    async with district_transaction(system.store.pool, ALL_DISTRICTS) as conn:
        rated = await conn.fetch(
            "SELECT case_id, district_id FROM reporting.ratings WHERE case_id = ANY($1::text[])",
            [here.case_id, there.case_id],
        )
    assert {(r["case_id"], r["district_id"]) for r in rated} == {(there.case_id, B)}

    forgotten = await system.rights.forget_phone(
        A, here.resident.phone, requested_by=ADMIN_ID, reason="居民申请删除 2026-032"
    )

    assert forgotten.matters.districts == (A, B)
    assert forgotten.erased["routing"]["cases"] == 2
    for text in _texts(there):
        assert await rows_containing(database_url, text, SCHEMAS) == [], text
    for district in (A, B):
        shown = await system.open311(district)
        for text in _published(there):
            assert text not in shown, (district, text)
    # The request is recorded in the resident's district, naming both.
    async with district_transaction(system.store.pool, A) as conn:
        outcome = await conn.fetchval(
            "SELECT outcome FROM privacy.rights_requests WHERE kind = 'forget'"
        )
    assert outcome["districts"] == [A, B]


async def test_retention_keeps_a_transferred_matter_until_its_last_continuation_closed(
    system: System, database_url: str
) -> None:
    await system.rights.set_retention(A, 30, requested_by=ADMIN_ID)
    here = await system.submit(resident("续", "13922223333"), A)
    there = await system.transfer(here, B)  # A's case is closed ("transferred away") today
    system.clock.advance(days=40)

    open_there = {run.district_id: run for run in await system.rights.retention_run()}

    assert open_there[A].cases == 0
    for text in (here.resident.text, here.resident.attachment):
        assert await rows_containing(database_url, text, ("intake",)), text
    assert await rows_containing(database_url, here.resident.text, ("routing",))

    await system.work_through(there, rate=False)  # closed in B, day 40
    system.clock.advance(days=20)
    recent = {run.district_id: run for run in await system.rights.retention_run()}

    assert recent[A].cases == 0
    assert await rows_containing(database_url, here.resident.text, ("intake",))
    assert await rows_containing(database_url, there.resident.result, ("intake",))

    system.clock.advance(days=15)  # 35 days after the last continuation closed
    old = {run.district_id: run for run in await system.rights.retention_run()}

    assert old[A].cases == 2
    assert old[B].cases == 0  # B keeps three years: A's period reached B's copies
    for text in _texts(there):
        assert await rows_containing(database_url, text, SCHEMAS) == [], text


async def test_what_staff_made_public_leaves_open311_when_retention_erases_it(
    system: System, database_url: str
) -> None:
    await system.rights.set_retention(A, 30, requested_by=ADMIN_ID)
    matter = await system.submit(resident("公", "13933334444"), A)
    await system.work_through(matter, public=True)
    system.clock.advance(days=40)
    before = await system.open311(A, days=60)
    for text in _published(matter):
        assert text in before, text

    runs = {run.district_id: run for run in await system.rights.retention_run()}

    assert runs[A].cases == 1
    after = await system.open311(A, days=60)
    for text in _published(matter):
        assert text not in after, text
    for text in _texts(matter):
        assert await rows_containing(database_url, text, SCHEMAS) == [], text


async def test_a_departments_action_keywords_and_link_reasons_are_erased(
    system: System, database_url: str
) -> None:
    hook = f"http://127.0.0.1:{system.sink.http_port}/webhook/city-12345"
    async with district_transaction(system.store.pool, A) as conn:
        await subscriptions.create(
            conn, A, "12345 平台", hook, [], ADMIN_ID, system.clock(),
            keys=system.notification.settings.privacy_keys(),
        )  # fmt: skip
    matter = await system.submit(resident("部", "13944445555"), A)
    other = await system.submit(resident("开", "13944446666"), A)
    link_reason = "部：与菜市场占道经营同一商户，并行督办"
    await system.act(
        matter, "link", ADMIN, related_case_id=other.case_id, relation="related",
        reason=link_reason,
    )  # fmt: skip
    await system.act(matter, "accept", ADMIN)
    await system.act(
        matter, "escalate", ADMIN, to_level="department", department_code="chengguan",
        reason="需城管执法",
    )  # fmt: skip
    await system.act(
        matter, "department_respond", ADMIN, action=matter.resident.action,
        evidence_urls=[matter.resident.evidence],
    )  # fmt: skip
    await system.notification.sender.send_due()
    async with district_transaction(system.store.pool, A) as conn:
        keywords = await conn.fetchval(
            "SELECT matched_keywords FROM routing.cases WHERE case_id = $1", matter.case_id
        )
    assert keywords, "the classifier matched words of the resident's text"
    for text in (matter.resident.action, matter.resident.evidence):
        assert await rows_containing(database_url, text, ("notification",)), text
    assert await rows_containing(database_url, link_reason, ("routing",))

    await system.rights.forget_phone(
        A, matter.resident.phone, requested_by=ADMIN_ID, reason="居民申请删除"
    )

    for text in (matter.resident.action, matter.resident.evidence, link_reason):
        assert await rows_containing(database_url, text, SCHEMAS) == [], text
    async with district_transaction(system.store.pool, A) as conn:
        erased = await conn.fetchval(
            "SELECT matched_keywords FROM routing.cases WHERE case_id = $1", matter.case_id
        )
    assert erased == []
    assert await rows_containing(database_url, other.resident.text, ("routing",))
