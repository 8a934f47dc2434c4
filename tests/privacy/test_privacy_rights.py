"""Residents' rights end to end, across intake, routing, notification and reporting: a
resident found, exported and forgotten by their phone number (``minqing privacy``), and
the texts of old closed cases erased at the end of their district's retention period."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from eventkit.db import district_transaction, scope
from eventkit.privacy import PersonalDataVault
from eventkit.privacy_rights import ERASED
from eventkit.settings import Settings
from minqing.privacy import NotDistrictAdmin, write_export
from services.intake.privacy import NotAMobileNumber
from services.routing.rebuild import rebuild
from tests.privacy.privacy_support import (
    ADMIN,
    ADMIN_ID,
    SCHEMAS,
    A,
    B,
    Matter,
    System,
    broken_chains,
    events_as_stored,
    minqing,
    resident,
    rows_containing,
)

ROOT = str(Path(__file__).resolve().parents[2])


def _traces(matter: Matter) -> list[str]:
    """Everything unique to a resident's matter."""
    who = matter.resident
    return [
        who.name,
        who.phone,
        who.text,
        who.reply,
        who.result,
        who.comment,
        who.attachment,
        who.evidence,
        matter.tracking_code,
    ]


async def test_a_resident_is_found_exported_and_forgotten_by_phone_in_every_service(
    system: System, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    jia = await system.submit(resident("甲", "13912345678"), A)
    yi = await system.submit(resident("乙", "13800001111"), A)
    bing = await system.submit(resident("丙", "13912345678"), B)  # 甲's number, district B
    for matter in (jia, yi, bing):
        await system.work_through(matter)
    texts = [json.loads(m.body)["text"] for m in system.sink.received if m.kind == "sms"]
    assert any(jia.resident.reply in t for t in texts), "the resident was told by SMS"
    assert any(jia.resident.result in t for t in texts)
    phone = jia.resident.phone

    found = minqing(
        "privacy", "find", "--phone", phone, "--district", A, "--by", ADMIN_ID,
        database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert jia.opinion_id in found.stdout
    assert jia.case_id in found.stdout
    for other in (yi, bing):
        assert other.opinion_id not in found.stdout
        assert other.case_id not in found.stdout
    assert phone not in found.stdout
    assert jia.resident.name not in found.stdout

    refused = minqing(
        "privacy", "find", "--phone", phone, "--district", A, "--by", "lo_dh_02",
        database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "not an active district admin" in refused.stderr
    with pytest.raises(NotAMobileNumber):
        await system.rights.find(A, "010-1234", requested_by=ADMIN_ID, reason=None)

    out = tmp_path / "export.json"
    exported = minqing(
        "privacy", "export", "--phone", phone, "--district", A, "--out", str(out),
        "--by", ADMIN_ID, "--reason", "居民申请 2026-017",
        database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    raw = out.read_text(encoding="utf-8")
    document = json.loads(raw)
    assert document["district"] == A
    [contact] = document["residents"]
    assert (contact["name"], contact["phone"]) == (jia.resident.name, phone)
    for trace in _traces(jia):
        assert trace in raw, trace
    [opinion] = document["intake"]["opinions"]
    assert opinion["text"] == jia.resident.text
    assert opinion["attachments"] == [jia.resident.attachment]
    [case] = document["routing"]["cases"]
    assert {"CaseOpened", "CaseReplied", "CaseResolved"} <= {s["kind"] for s in case["steps"]}
    messages = document["notification"]["messages"]
    assert {m["status"] for m in messages} == {"sent"}
    assert len(messages) >= 2
    assert [r["satisfaction"] for r in document["reporting"]["ratings"]] == [5]
    for other in (yi, bing):
        for trace in [other.resident.name, other.resident.text, other.opinion_id, other.case_id]:
            assert trace not in raw, trace
    assert out.exists()
    again = minqing(
        "privacy", "export", "--phone", phone, "--district", A, "--out", str(out),
        "--by", ADMIN_ID, "--reason", "again", database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert again.returncode == 1
    assert "exists" in again.stderr

    before = await events_as_stored(database_url)
    assert before
    forgotten = minqing(
        "privacy", "forget", "--phone", phone, "--district", A, "--by", ADMIN_ID,
        "--reason", "居民申请删除 2026-018", database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert forgotten.returncode == 0, forgotten.stderr
    assert "forgotten: key deleted" in forgotten.stdout

    # Nothing of 甲's opens anywhere: the tracking page, the staff view, the services'
    # tables; the key is gone.
    assert (await system.client.get(f"/api/v1/track/{jia.tracking_code}")).status_code == 404
    view = await system.client.get(
        f"/api/v1/opinions/{jia.opinion_id}", headers=system.staff_headers()
    )
    assert view.status_code == 200, view.text
    assert view.json()["contact"]["erased"] is True
    assert view.json()["text"] == ERASED
    for trace in _traces(jia):
        assert await rows_containing(database_url, trace, SCHEMAS) == [], trace
    vault = PersonalDataVault(system.store.pool)
    async with district_transaction(system.store.pool, A) as conn:
        assert await vault.subject_of(A, phone, conn=conn) is None
    # The events stay, unchanged and still chained; the resident's words, place and
    # attachment in them were sealed with the opinion's text key, deleted with the rest.
    assert await rows_containing(database_url, jia.resident.text, ("eventstore",)) == []
    assert await rows_containing(database_url, jia.resident.attachment, ("eventstore",)) == []
    assert await rows_containing(database_url, phone, ("eventstore",)) == []
    assert await events_as_stored(database_url) == before
    assert await broken_chains(database_url) == []

    # 乙 in district A and the same number in district B are untouched.
    for other in (yi, bing):
        assert (await system.client.get(f"/api/v1/track/{other.tracking_code}")).status_code == 200
        where = await rows_containing(database_url, other.resident.text, SCHEMAS)
        assert any(w.startswith('"intake"."opinions"') for w in where), where
        assert any(w.startswith('"routing"."cases"') for w in where), where
    in_b = await system.rights.find(B, phone, requested_by=ADMIN_ID, reason=None)
    assert [o["opinion_id"] for o in in_b.opinions] == [bing.opinion_id]

    gone = minqing(
        "privacy", "find", "--phone", phone, "--district", A, "--by", ADMIN_ID,
        database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert gone.returncode == 0
    assert "no record of this phone number" in gone.stdout
    # Every request is on record: who, why, for which subject, what was done.
    async with district_transaction(system.store.pool, A) as conn:
        rows = await conn.fetch(
            "SELECT kind, requested_by, reason, subject_ids, outcome FROM privacy.rights_requests "
            "ORDER BY requested_at, kind"
        )
    assert [r["kind"] for r in rows].count("forget") == 1
    assert {r["kind"] for r in rows} == {"find", "export", "forget"}
    assert {r["requested_by"] for r in rows} == {ADMIN_ID}
    [forget] = [r for r in rows if r["kind"] == "forget"]
    assert forget["reason"] == "居民申请删除 2026-018"
    assert forget["outcome"]["keys_deleted"] == 1
    assert forget["outcome"]["intake"]["opinions"] == 1
    assert forget["outcome"]["routing"]["cases"] == 1
    assert phone not in json.dumps([dict(r) for r in rows], default=str, ensure_ascii=False)

    # A rebuild of routing's tables cannot bring the opinion's text back from the store
    # (its key is gone: the case shows the erased mark), but brings back what its events
    # hold in clear (the words the classifier matched, the tracking code's hash); the
    # next retention run erases them again.
    async with system.routing.pool.acquire() as conn:
        await rebuild(conn, system.store)
    assert await rows_containing(database_url, jia.resident.text, ("routing",)) == []
    [run] = [r for r in await system.rights.retention_run() if r.district_id == A]
    assert run.forgotten_again["routing"]["cases"] == 1
    assert await rows_containing(database_url, jia.resident.text, SCHEMAS) == []


async def test_requests_need_an_active_district_admin_of_the_district(system: System) -> None:
    with pytest.raises(NotDistrictAdmin):
        await system.rights.find(A, "13912345678", requested_by="lo_dh_02", reason=None)
    with pytest.raises(NotDistrictAdmin):
        await system.rights.forget_phone(
            B, "13912345678", requested_by="admin_elsewhere", reason=None
        )
    with pytest.raises(NotDistrictAdmin):
        await system.rights.set_retention(A, 30, requested_by="lo_dh_02")


async def test_retention_erases_the_texts_of_cases_closed_before_the_period_only(
    system: System, database_url: str
) -> None:
    refused = minqing(
        "privacy", "retention", "set", "--district", A, "--days", "5", "--by", ADMIN_ID,
        database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "between 30 and 36500 days" in refused.stderr
    set_ = minqing(
        "privacy", "retention", "set", "--district", A, "--days", "30", "--by", ADMIN_ID,
        database_url=database_url, cwd=ROOT,
    )  # fmt: skip
    assert set_.returncode == 0, set_.stderr
    shown = minqing(
        "privacy", "retention", "show", "--district", A, database_url=database_url, cwd=ROOT
    )
    assert "district demo: 30 days" in shown.stdout
    old = await system.submit(resident("旧", "13900000001"), A)
    await system.work_through(old)
    west = await system.submit(resident("西", "13900000002"), B)  # B keeps three years
    await system.work_through(west)
    system.clock.advance(days=40)
    recent = await system.submit(resident("近", "13900000003"), A)
    await system.work_through(recent)
    still_open = await system.submit(resident("开", "13900000004"), A)
    await system.act(still_open, "reply", ADMIN, message=still_open.resident.reply)
    assert await system.status(old) == "closed"
    assert await system.status(still_open) != "closed"

    runs = {run.district_id: run for run in await system.rights.retention_run()}

    assert (runs[A].retention_days, runs[B].retention_days) == (30, 3 * 365)
    assert runs[A].cases == 1
    assert runs[B].cases == 0
    assert runs[A].erased["intake"]["opinions"] == 1
    assert runs[A].erased["routing"]["cases"] == 1
    for trace in (old.resident.text, old.resident.reply, old.resident.result, old.resident.comment):
        assert await rows_containing(database_url, trace, SCHEMAS) == [], trace
    # Retention erases texts, not the resident: their contact still opens for staff.
    view = await system.client.get(
        f"/api/v1/opinions/{old.opinion_id}", headers=system.staff_headers()
    )
    assert view.json()["text"] == ERASED
    assert view.json()["contact"]["phone"] == old.resident.phone
    for kept in (recent, still_open, west):
        where = await rows_containing(database_url, kept.resident.text, SCHEMAS)
        assert any(w.startswith('"intake"."opinions"') for w in where), where
        assert any(w.startswith('"routing"."cases"') for w in where), where
    assert await rows_containing(database_url, recent.resident.result, ("notification",))

    again = {run.district_id: run for run in await system.rights.retention_run()}
    assert again[A].cases == 1
    assert all(count == 0 for counts in again[A].erased.values() for count in counts.values())
    async with district_transaction(system.store.pool, A) as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM privacy.rights_requests WHERE kind = 'retention'"
        )
    assert recorded == 2

    # Retention deleted the old opinion's text key: the store's copy of its words no
    # longer opens, so a rebuild cannot bring them back (the recent ones come back).
    assert await rows_containing(database_url, old.resident.text, ("eventstore",)) == []
    async with system.routing.pool.acquire() as conn:
        await rebuild(conn, system.store)
    assert await rows_containing(database_url, old.resident.text, ("routing",)) == []
    rebuilt = {run.district_id: run for run in await system.rights.retention_run()}
    assert rebuilt[A].erased["routing"]["cases"] == 1
    assert await rows_containing(database_url, old.resident.text, SCHEMAS) == []
    assert await rows_containing(database_url, recent.resident.text, ("routing",))

    run_b = minqing(
        "privacy", "retention", "run", "--district", B, database_url=database_url, cwd=ROOT
    )
    assert run_b.returncode == 0, run_b.stderr
    assert f"district {B}: 1095 days" in run_b.stdout
    assert await rows_containing(database_url, west.resident.text, ("intake",))


def test_an_export_is_readable_by_its_owner_only_and_never_replaces_a_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "resident.json"
    write_export(path, {"residents": [{"name": "王秀英"}]})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text(encoding="utf-8")) == {"residents": [{"name": "王秀英"}]}
    with pytest.raises(FileExistsError):
        write_export(path, {})


async def test_an_erased_text_is_no_example_for_the_next_training(system: System) -> None:
    corrected = await system.submit(resident("乙", "13800002222"), A)
    await system.act(
        corrected, "classify", ADMIN, category_code="sanitation", priority="important",
        reason="垃圾清运，按重要处理",
    )  # fmt: skip

    async def examples() -> list[str]:
        async with system.routing.pool.acquire() as conn, conn.transaction():
            await scope(conn, A)
            found = await system.routing.training.corrections(conn, A)
        return [example.text for example in found.examples]

    assert await examples() == [corrected.resident.text]
    await system.rights.forget_phone(
        A, corrected.resident.phone, requested_by=ADMIN_ID, reason="居民申请删除"
    )
    assert await examples() == []
