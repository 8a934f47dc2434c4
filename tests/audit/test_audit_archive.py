"""Audit archives: exported from the real store, checked with no database, and caught
when anyone changes them afterwards."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from contracts import SubmitterRef
from eventkit.audit.archive import EVENTS_FILE, MANIFEST_FILE, export_archive, verify_archive
from eventkit.audit.findings import Problem
from eventkit.audit.sealing import Sealer
from eventkit.db import Conn, district_transaction
from eventkit.privacy import PersonalDataVault
from eventkit.store import EventStore
from tests.audit.support import append_all, generate_history, matter_events

EARLY = datetime(2020, 1, 1, tzinfo=UTC)
LATE = datetime(2100, 1, 1, tzinfo=UTC)


async def export(conn: Conn, path: Path, since: datetime = EARLY, until: datetime = LATE) -> Path:
    await export_archive(
        conn,
        district_id="demo",
        since=since,
        until=until,
        out=path,
        exported_at=datetime.now(UTC),
    )
    return path


def rewrite(path: Path, change: Callable[[list[bytes]], list[bytes]], *, fix: bool) -> None:
    """Change the events' lines of an archive; with ``fix``, the manifest too (a careful
    forger), so that only the hashes and seals can tell."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    lines = change(members[EVENTS_FILE].splitlines(keepends=True))
    members[EVENTS_FILE] = b"".join(lines)
    if fix:
        manifest = json.loads(members[MANIFEST_FILE])
        manifest["files"][EVENTS_FILE] = {
            "sha256": hashlib.sha256(members[EVENTS_FILE]).hexdigest(),
            "bytes": len(members[EVENTS_FILE]),
            "lines": len(lines),
        }
        members[MANIFEST_FILE] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


async def test_an_exported_archive_verifies_offline_and_holds_no_personal_data_in_clear(
    store: EventStore, sealer: Sealer, conn: Conn, tmp_path: Path
) -> None:
    await generate_history(store, matters=3)
    await generate_history(store, "haidian", matters=2)
    async with district_transaction(store.pool, "demo") as own:
        sealed = await PersonalDataVault(store.pool).seal(
            "demo", {"name": "王秀英", "phone": "13900001111"}, identifier="13900001111", conn=own
        )
    submitter = SubmitterRef(
        subject_id=sealed.subject_id,
        name_ciphertext=sealed.values["name"],
        phone_ciphertext=sealed.values["phone"],
    )
    _, events = matter_events("demo", 9, datetime.now(UTC), submitter=submitter)
    await append_all(store, events)
    [seal] = await sealer.seal("demo")
    path = await export(conn, tmp_path / "demo.zip")

    report = verify_archive(path, expected_digests=[seal.digest])
    assert report.intact, [f.describe() for f in report.findings]
    assert (report.events, report.seals, report.districts) == (28, 1, {"demo"})
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read(MANIFEST_FILE))
        everything = b"".join(zf.read(n) for n in zf.namelist())
    assert manifest["last_digest"] == seal.digest
    assert manifest["district_id"] == "demo"
    assert "王秀英".encode() not in everything
    assert b"13900001111" not in everything
    assert b"haidian" not in everything


async def test_an_archive_of_a_period_holds_the_seals_that_cover_it(
    store: EventStore, sealer: Sealer, conn: Conn, tmp_path: Path
) -> None:
    await generate_history(store, matters=1)
    await sealer.seal("demo")
    since = await conn.fetchval("SELECT clock_timestamp()")
    await generate_history(store, matters=2)
    await sealer.seal("demo")
    until = await conn.fetchval("SELECT clock_timestamp()")
    await generate_history(store, matters=1)
    await sealer.seal("demo")

    path = await export(conn, tmp_path / "period.zip", since, until)
    report = verify_archive(path)
    assert report.intact, [f.describe() for f in report.findings]
    # Seal 2 covers the period. Seal 3, the first recorded after its end, covers what was
    # recorded between seal 2 and the end (nothing, here), so it comes too, with all its
    # events; seal 1 is the anchor the first one continues.
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read(MANIFEST_FILE))
    assert (manifest["anchor_seal"], manifest["first_seal"], manifest["last_seal"]) == (1, 2, 3)
    assert report.seals == 2
    assert report.events == 21


async def test_a_changed_event_in_an_archive_is_named_even_with_its_manifest_fixed(
    store: EventStore, sealer: Sealer, conn: Conn, tmp_path: Path
) -> None:
    matters = await generate_history(store, matters=2)
    await sealer.seal("demo")
    path = await export(conn, tmp_path / "a.zip")

    def reassign(lines: list[bytes]) -> list[bytes]:
        changed = []
        for raw in lines:
            line = json.loads(raw)
            if "同一社区" in line["canonical"] and matters[0].case_id in line["canonical"]:
                line["canonical"] = line["canonical"].replace("同一社区", "随机分配")
                raw = json.dumps(line, ensure_ascii=False).encode() + b"\n"
            changed.append(raw)
        return changed

    rewrite(path, reassign, fix=True)
    report = verify_archive(path)
    assert [(f.problem, f.stream_id, f.stream_version) for f in report.findings] == [
        (Problem.CHANGED_CONTENT, f"case-{matters[0].case_id}", 2)
    ]


async def test_an_event_taken_out_of_an_archive_is_named(
    store: EventStore, sealer: Sealer, conn: Conn, tmp_path: Path
) -> None:
    matters = await generate_history(store, matters=2)
    await sealer.seal("demo")
    path = await export(conn, tmp_path / "b.zip")
    closed = f"case-{matters[1].case_id}"

    def drop_last_of_case(lines: list[bytes]) -> list[bytes]:
        keep = [
            line
            for line in lines
            if not (
                json.loads(json.loads(line)["canonical"])["stream_id"] == closed
                and json.loads(json.loads(line)["canonical"])["stream_version"] == 5
            )
        ]
        assert len(keep) == len(lines) - 1
        return keep

    rewrite(path, drop_last_of_case, fix=True)
    report = verify_archive(path)
    assert [(f.problem, f.stream_id, f.stream_version) for f in report.findings] == [
        (Problem.DELETED_TAIL, closed, 5)
    ]


async def test_an_archive_changed_without_its_manifest_says_so_and_a_kept_digest_must_match(
    store: EventStore, sealer: Sealer, conn: Conn, tmp_path: Path
) -> None:
    await generate_history(store, matters=1)
    await sealer.seal("demo")
    path = await export(conn, tmp_path / "c.zip")
    assert not verify_archive(path, expected_digests=["00" * 32]).intact

    rewrite(path, lambda lines: [*lines[:-1], lines[-1].replace(b"}", b"} ")], fix=False)
    problems = {f.problem for f in verify_archive(path).findings}
    assert Problem.ARCHIVE_CHANGED in problems


def test_what_is_not_an_archive_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "nothing.zip"
    path.write_bytes(b"PK not really")
    [finding] = verify_archive(path).findings
    assert finding.problem is Problem.ARCHIVE_CHANGED
