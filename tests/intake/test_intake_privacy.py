"""Residents' names and phone numbers: sealed per resident, never in clear, forgettable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from eventkit.db import connect, scope
from eventkit.identity import Role
from eventkit.privacy import (
    PersonalDataVault,
    SealError,
    SubjectKey,
    new_key,
    open_value,
    seal_value,
)
from eventkit.store import verify_chains
from services.intake.settings import IntakeSettings
from tests.every_district import every_district
from tests.intake.intake_support import API_KEY, DISTRICT, NAME, PHONE, opinion_body, token


def minqing(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        env={**os.environ, "MINQING_DATABASE_URL": database_url, "MINQING_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def rows_containing(database_url: str, needle: str) -> list[str]:
    """Every row of every table of Minqing's schemas whose text contains ``needle``."""
    conn: asyncpg.Connection = await connect(database_url)
    try:
        tables = await conn.fetch(
            """
            SELECT table_schema, table_name FROM information_schema.tables
             WHERE table_schema IN ('eventstore', 'consumers', 'intake', 'privacy')
               AND table_type = 'BASE TABLE'
            """
        )
        found = []
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            count = await conn.fetchval(
                f"SELECT count(*) FROM {name} t WHERE t::text LIKE '%' || $1 || '%'", needle
            )
            if count:
                found.append(f"{name}: {count}")
        return found
    finally:
        await conn.close()


async def submit_everywhere(client: httpx.AsyncClient, settings: IntakeSettings) -> list[str]:
    """One submission with the resident's name and phone per kind of entry point."""
    opinion_ids = []
    qr = await client.post(
        "/api/v1/opinions",
        json=opinion_body(contact={"name": NAME, "phone": "139 1234 5678"}, consent=True),
    )
    opinion_ids.append(qr.json()["opinion_id"])
    walk_in = await client.post(
        "/api/v1/opinions",
        json=opinion_body(channel="walk_in", contact={"name": NAME, "phone": PHONE}),
        headers={"Authorization": token(settings, Role.LIAISON)},
    )
    opinion_ids.append(walk_in.json()["opinion_id"])
    open311 = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "jurisdiction_id": DISTRICT,
            "service_code": "municipal.road",
            "address_string": "东门",
            "description": "路口有个大坑，下雨积水",
            "first_name": "秀英",
            "last_name": "王",
            "phone": f"+86{PHONE}",
        },
    )
    opinion_ids.append(open311.json()[0]["service_request_id"])
    form = await client.post(
        "/q/zgc_home",
        data={
            "text": "电梯经常停运，老人上下楼困难",
            "name": NAME,
            "phone": PHONE,
            "consent": "yes",
        },
    )
    assert form.status_code == 201
    assert all(r.is_success for r in (qr, walk_in, open311))
    return opinion_ids


async def test_names_and_phone_numbers_are_nowhere_in_the_database_in_clear(
    client: httpx.AsyncClient, intake_settings: IntakeSettings, database_url: str
) -> None:
    await submit_everywhere(client, intake_settings)

    assert await rows_containing(database_url, "OpinionSubmitted") != []  # the scan sees data
    assert await rows_containing(database_url, PHONE) == []
    assert await rows_containing(database_url, PHONE[-8:]) == []
    assert await rows_containing(database_url, NAME) == []
    assert await rows_containing(database_url, "秀英") == []


async def test_one_resident_is_one_subject_in_a_district(
    client: httpx.AsyncClient, intake_settings: IntakeSettings, pool: asyncpg.Pool
) -> None:
    await submit_everywhere(client, intake_settings)
    subjects = await every_district(pool).fetch(
        "SELECT subject_id FROM intake.opinions WHERE subject_id IS NOT NULL"
    )
    assert len(subjects) == 4
    assert len({r["subject_id"] for r in subjects}) == 1
    assert await every_district(pool).fetchval("SELECT count(*) FROM privacy.subject_keys") == 1
    # Someone without a phone number is a subject of their own each time.
    for _ in range(2):
        await client.post(
            "/api/v1/opinions", json=opinion_body(contact={"name": "张先生"}, consent=True)
        )
    assert await every_district(pool).fetchval("SELECT count(*) FROM privacy.subject_keys") == 3


async def test_forgetting_a_resident_makes_their_data_unreadable_and_keeps_the_record(
    client: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    pool: asyncpg.Pool,
    database_url: str,
) -> None:
    opinion_ids = await submit_everywhere(client, intake_settings)
    staff = {"Authorization": token(intake_settings, Role.LIAISON)}
    before = (await client.get(f"/api/v1/opinions/{opinion_ids[0]}", headers=staff)).json()
    assert before["contact"]["phone"] == PHONE
    subject_id = before["contact"]["subject_id"]
    stored_before = await every_district(pool).fetch(
        "SELECT event_id, data, hash FROM eventstore.events ORDER BY global_position"
    )

    forgotten = minqing(
        "privacy",
        "forget",
        subject_id,
        "--reason",
        "居民申请删除 2025-0311",
        database_url=database_url,
    )

    assert forgotten.returncode == 0, forgotten.stderr
    assert "forgotten" in forgotten.stdout
    for opinion_id in opinion_ids:
        view = (await client.get(f"/api/v1/opinions/{opinion_id}", headers=staff)).json()
        assert view["contact"] == {
            "subject_id": subject_id,
            "erased": True,
            "name": None,
            "phone": None,
        }
    vault = PersonalDataVault(pool)
    submitter = next(r["data"]["submitter"] for r in stored_before if "submitter" in r["data"])
    assert await vault.open(subject_id, {"phone": submitter["phone_ciphertext"]}) is None
    assert await vault.forgotten(subject_id)
    # The events are untouched and their chains still verify.
    stored_after = await every_district(pool).fetch(
        "SELECT event_id, data, hash FROM eventstore.events ORDER BY global_position"
    )
    assert stored_after == stored_before
    async with pool.acquire() as conn:
        assert await verify_chains(conn) == []
    trace = await every_district(pool).fetchrow(
        "SELECT requested_by, reason FROM privacy.forgotten_subjects WHERE subject_id = $1",
        subject_id,
    )
    assert trace is not None
    assert trace["reason"] == "居民申请删除 2025-0311"

    again = minqing("privacy", "forget", subject_id, database_url=database_url)
    assert again.returncode == 0
    assert "already forgotten" in again.stdout
    unknown = minqing("privacy", "forget", "subj_nobody", database_url=database_url)
    assert unknown.returncode == 1
    # The same number later is a new resident, with a new key.
    await client.post("/api/v1/opinions", json=opinion_body(contact={"phone": PHONE}, consent=True))
    newest = await every_district(pool).fetchval(
        "SELECT subject_id FROM intake.opinions ORDER BY recorded_at DESC LIMIT 1"
    )
    assert newest != subject_id


async def test_the_services_may_delete_keys_and_nothing_else_of_the_privacy_tables(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await client.post("/api/v1/opinions", json=opinion_body(contact={"phone": PHONE}, consent=True))
    async with pool.acquire() as conn:
        for statement in (
            "UPDATE privacy.subject_keys SET key = key",
            "DELETE FROM privacy.forgotten_subjects",
            "DELETE FROM intake.opinions",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        async with conn.transaction():
            await scope(conn, DISTRICT)  # row-level security: the key's district
            assert await conn.execute("DELETE FROM privacy.subject_keys") == "DELETE 1"


_MINQING = (sys.executable, "-m", "minqing.cli")


def _import_12345(database_url: str, path: Path, hash_key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_MINQING, "intake", "import-12345", str(path), "--district", DISTRICT],
        env={
            **os.environ,
            "MINQING_DATABASE_URL": database_url,
            "MINQING_LOG_FORMAT": "json",
            "MINQING_INTAKE_HASH_KEY": hash_key,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def _canonical(payload: object) -> bytes:
    import json

    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


async def test_stored_request_hashes_are_keyed_and_cannot_confirm_a_guess(
    client: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    pool: asyncpg.Pool,
    database_url: str,
    directory: None,
    tmp_path: Path,
) -> None:
    import hashlib
    import hmac
    from datetime import UTC, datetime

    from services.intake.hotline import parse_work_order, read_rows

    body = opinion_body(contact={"name": NAME, "phone": PHONE}, consent=True)
    headers = {"Idempotency-Key": "api-1"}
    assert (await client.post("/api/v1/opinions", json=body, headers=headers)).is_success
    fields = {
        "api_key": API_KEY,
        "jurisdiction_id": DISTRICT,
        "service_code": "municipal.road",
        "address_string": "东门",
        "description": "路口有个大坑，下雨积水",
        "first_name": "秀英",
        "last_name": "王",
        "phone": PHONE,
    }
    posted = await client.post(
        "/open311/v2/requests.json", data=fields, headers={"Idempotency-Key": "o311-1"}
    )
    assert posted.status_code == 200, posted.text
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        "工单编号,来电时间,诉求类别,诉求内容,诉求地址,所属社区,联系人,联系电话,承办站点,附件\n"
        f"2025031499001,2025-03-14 09:30:12,,楼下路灯坏了一个月没人修,东门,,{NAME},{PHONE},,\n",
        encoding="utf-8",
    )
    hotline_key = "a-test-only-intake-hash-key"
    imported = _import_12345(database_url, csv_file, hotline_key)
    assert imported.returncode == 0, imported.stdout + imported.stderr

    stored = {
        r["key"]: bytes(r["request_hash"])
        for r in await every_district(pool).fetch(
            "SELECT key, request_hash FROM intake.idempotency_keys"
        )
    }
    order = parse_work_order(
        1,
        read_rows(csv_file)[0][1],
        tz=intake_settings_tz(),
        now=datetime.now(UTC),
    )
    expected = {
        "api-1": (body, intake_settings.intake_hash_secret),
        "o311-1": (
            {k: v for k, v in fields.items() if k != "api_key"},
            intake_settings.intake_hash_secret,
        ),
        "2025031499001": (order.fingerprint(), hotline_key.encode()),
    }
    for key, (payload, secret) in expected.items():
        canonical = _canonical(payload)
        assert stored[key] == hmac.new(secret, canonical, hashlib.sha256).digest(), key
        assert stored[key] != hashlib.sha256(canonical).digest(), key


def intake_settings_tz() -> ZoneInfo:
    return ZoneInfo("Asia/Shanghai")


def test_a_sealed_value_opens_only_for_its_subject_and_field() -> None:
    subject = SubjectKey("subj_a", new_key())
    token = seal_value(subject, "phone", "13912345678")
    assert token.startswith("mq1.")
    assert "13912345678" not in token
    assert open_value(subject, "phone", token) == "13912345678"
    with pytest.raises(SealError):
        open_value(subject, "name", token)  # moved to another field
    with pytest.raises(SealError):
        open_value(SubjectKey("subj_b", subject.key), "phone", token)  # to another subject
    with pytest.raises(SealError):
        open_value(SubjectKey("subj_a", new_key()), "phone", token)  # another key
    assert "key" not in repr(subject).replace("SubjectKey", "")


async def test_the_tracking_code_and_the_consent_travel_sealed_with_the_resident(
    client: httpx.AsyncClient, intake_settings: IntakeSettings, pool: asyncpg.Pool
) -> None:
    staff = {"Authorization": token(intake_settings, Role.LIAISON)}
    qr = await client.post(
        "/api/v1/opinions",
        json=opinion_body(contact={"name": NAME, "phone": PHONE}, consent=True),
    )
    walk_in = await client.post(
        "/api/v1/opinions",
        json=opinion_body(channel="walk_in", contact={"phone": PHONE}),
        headers=staff,
    )
    declined = await client.post(
        "/api/v1/opinions",
        json=opinion_body(channel="walk_in", contact={"phone": PHONE}, consent=False),
        headers=staff,
    )
    anonymous = await client.post("/api/v1/opinions", json=opinion_body())
    receipts = [r.json() for r in (qr, walk_in, declined, anonymous)]
    rows = await every_district(pool).fetch(
        "SELECT data FROM eventstore.events WHERE event_type = 'OpinionSubmitted' "
        "ORDER BY global_position"
    )
    submitters = [r["data"].get("submitter") for r in rows]
    assert submitters[3] is None  # no contact: nothing to seal, nobody to tell
    assert [s["contact_consent"] for s in submitters[:3]] == [True, True, False]
    vault = PersonalDataVault(pool)
    for receipt, submitter in zip(receipts[:3], submitters[:3], strict=True):
        opened = await vault.open(
            submitter["subject_id"], {"tracking_code": submitter["tracking_code_ciphertext"]}
        )
        assert opened is not None
        assert opened["tracking_code"] == receipt["tracking_code"].replace("-", "")
    assert await rows_containing_code(pool, receipts[0]["tracking_code"].replace("-", "")) == 0

    assert await vault.forget(submitters[0]["subject_id"], requested_by="test")
    gone = await vault.open(
        submitters[0]["subject_id"], {"tracking_code": submitters[0]["tracking_code_ciphertext"]}
    )
    assert gone is None


async def rows_containing_code(pool: asyncpg.Pool, code: str) -> int:
    """Events whose data holds the tracking code in clear (it must be none)."""
    found = await every_district(pool).fetchval(
        "SELECT count(*) FROM eventstore.events WHERE data::text LIKE '%' || $1 || '%'", code
    )
    return int(found)
