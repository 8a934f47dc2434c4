"""``minqing audit …`` and ``minqing replay`` as an operator runs them, against the real
database and broker (each command a process of its own, as the audit role)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from contracts import SubmitterRef
from eventkit.db import district_transaction
from eventkit.privacy import PersonalDataVault
from eventkit.settings import Settings
from eventkit.store import EventStore
from services.intake.opinion_record import OpinionRecord
from services.intake.opinions import insert_opinion
from services.intake.tracking_codes import format_tracking_code
from tests.audit.support import append_all, generate_history, matter_events, tamper
from tests.helpers import read_topic


def minqing(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        env={**os.environ, "MINQING_LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_seal_then_verify_names_a_deleted_tail_and_checks_a_kept_digest(
    store: EventStore, database_url: str
) -> None:
    matters = await generate_history(store, matters=3)
    env = {"MINQING_DATABASE_URL": database_url}
    sealed = minqing("audit", "seal", env=env)
    assert sealed.returncode == 0, sealed.stderr
    assert "sealed: district demo seal 1: 21 events" in sealed.stdout
    digest = sealed.stdout.split("latest digest: district demo seal 1 (21 events) ")[1].strip()
    assert "nothing new to seal" in minqing("audit", "seal", "--district", "demo", env=env).stdout

    intact = minqing("audit", "verify", "--district", "demo", "--expect-digest", digest, env=env)
    assert intact.returncode == 0, intact.stderr
    assert "22 events verified in 10 streams, 1 seals of 1 district(s)" in intact.stdout

    stream = f"case-{matters[1].case_id}"
    await tamper(
        database_url,
        ("DELETE FROM eventstore.events WHERE stream_id = $1 AND stream_version = 5", stream),
    )
    broken = minqing("audit", "verify", env=env)
    assert broken.returncode == 1
    assert f"stream {stream} version 5 (seal 1): 流末尾的事件被删除 / deleted tail" in broken.stderr
    report = json.loads(minqing("audit", "verify", "--json", env=env).stdout)
    assert [(f["problem"], f["stream_id"]) for f in report["findings"]] == [
        ("deleted_tail", stream)
    ]
    unknown = minqing("audit", "verify", "--expect-digest", "ab" * 32, env=env)
    assert "kept seal not found" in unknown.stderr


async def test_an_export_is_verified_with_no_database_and_a_tampered_one_is_not(
    store: EventStore, database_url: str, tmp_path: Path
) -> None:
    await generate_history(store, matters=2)
    out = tmp_path / "demo-2025-03.zip"
    exported = minqing(
        "audit", "export", "--district", "demo", "--since", "2025-03-01", "--until", "2099-01-01",
        "--out", str(out), env={"MINQING_DATABASE_URL": database_url},
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "exported" in exported.stdout
    assert "14 events, 1 seals" in exported.stdout

    offline = {"MINQING_DATABASE_URL": "", "MINQING_DATA_DIR": str(tmp_path / "none")}
    checked = minqing("audit", "verify", "--archive", str(out), env=offline)
    assert checked.returncode == 0, checked.stderr
    assert "14 events verified" in checked.stdout

    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(out) as original, zipfile.ZipFile(forged, "w") as copy:
        for name in original.namelist():
            data = original.read(name)
            if name == "events.jsonl":
                data = data.replace("已联系物业".encode(), "未联系物业".encode(), 1)
            copy.writestr(name, data)
    refused = minqing("audit", "verify", "--archive", str(forged), env=offline)
    assert refused.returncode == 1


async def test_a_case_is_audited_by_its_tracking_code_and_opening_personal_data_is_recorded(
    store: EventStore, database_url: str, pool: asyncpg.Pool
) -> None:
    code = "7K3M9Q2XWD5R"
    async with district_transaction(pool, "demo") as conn:
        sealed = await PersonalDataVault(pool).seal(
            "demo", {"name": "李建国", "phone": "13700002222"}, identifier="13700002222", conn=conn
        )
        submitter = SubmitterRef(
            subject_id=sealed.subject_id,
            name_ciphertext=sealed.values["name"],
            phone_ciphertext=sealed.values["phone"],
        )
        when = datetime(2025, 3, 3, tzinfo=UTC)
        matter, events = matter_events("demo", 1, when, submitter=submitter)
        await append_all(store, events)
        # As intake keeps it: the tracking code is a credential only intake holds.
        await insert_opinion(
            conn,
            OpinionRecord(
                opinion_id=matter.opinion_id, district_id="demo", tracking_code=code,
                channel="qr", station_code="s01", community=None, address=None, lat=None,
                long=None, category_hint=None, text="电梯坏了", attachments=(),
                external_ref=None, subject_id=sealed.subject_id, submitted_at=when,
            ),
        )  # fmt: skip
    env = {"MINQING_DATABASE_URL": database_url}

    shown = minqing("audit", "case", format_tracking_code(code), env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"case audit: {matter.case_id}" in shown.stdout
    assert "2025-03-03 08:00:00+0800  OpinionSubmitted  resident:" in shown.stdout
    assert "李建国" not in shown.stdout
    assert "13700002222" not in shown.stdout
    assert "hashes: all 7 intact" in shown.stdout
    document = json.loads(minqing("audit", "case", matter.case_id, "--json", env=env).stdout)
    assert [e["event_type"] for e in document["events"]][:2] == ["OpinionSubmitted", "CaseOpened"]
    assert all(e["hash_ok"] and e["link_ok"] for e in document["events"])

    refused = minqing("audit", "case", matter.case_id, "--reveal-personal-data", env=env)
    assert refused.returncode == 2
    assert "--operator" in refused.stderr
    opened = minqing(
        "audit", "case", matter.case_id, "--reveal-personal-data",
        "--operator", "auditor-zhao", "--reason", "人大常委会复查", env=env,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert "李建国" in opened.stdout
    [record] = await store.read_stream("audit-demo.openings")
    assert record.data["actor"] == {"id": "auditor-zhao", "role": "auditor"}
    assert record.data["subject_ids"] == [sealed.subject_id]
    assert "no case" in minqing("audit", "case", "nothing-here", env=env).stderr


async def test_replay_sends_the_history_marked_as_a_replay_and_a_dry_run_only_counts(
    store: EventStore, settings: Settings, database_url: str
) -> None:
    await generate_history(store, matters=2)
    topic = settings.topic(f"partner.{uuid.uuid4().hex[:6]}")
    env = {
        "MINQING_DATABASE_URL": database_url,
        "MINQING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }
    dry = minqing("replay", "--district", "demo", "--to-topic", topic, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would replay 14 events of district demo" in dry.stdout
    assert "  CaseOpened: 2" in dry.stdout

    sent = minqing(
        "replay", "--district", "demo", "--type", "CaseClosed", "--to-topic", topic, env=env
    )
    assert sent.returncode == 0, sent.stderr
    records = await read_topic(settings.kafka_bootstrap, topic, until=lambda r: len(r) >= 2)
    assert len(records) == 2
    assert all(dict(r.headers)["ce_type"].endswith(b".CaseClosed.v1") for r in records)
    assert all("ce_replay" in dict(r.headers) for r in records)
    public = minqing(
        "replay", "--district", "demo", "--to-topic", "minqing.public.demo.cases.v1", env=env
    )
    assert public.returncode == 1
    assert "public" in public.stderr
