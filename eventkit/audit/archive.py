"""Audit archives: a district's record for a period, checkable on a machine with no
database.

An archive is one zip file:

- ``events.jsonl``: every event of the seal ranges that overlap the period, in the
  store's order, one JSON object a line: ``global_position``, ``transaction_id``,
  ``prev_hash`` and ``hash`` (hex), and ``canonical``, the exact text whose UTF-8 bytes
  were hashed (``hash = sha256(prev_hash || canonical)``): a checker needs no JSON
  canonicalisation of its own, and the event is read by parsing that text;
- ``seals.jsonl``: the seals of those ranges in the same form, preceded by the seal
  before them (the *anchor*, whose digest the first seal continues);
- ``manifest.json``: the district, the period, the seals, and each file's SHA-256, size
  and line count;
- ``README.txt``: how to check all of it by hand.

Whole seal ranges are exported, so the edges of an archive hold a few events recorded
just before or after the period: without them the seals' digests could not be
recomputed. Residents' names and phones are in it only as the ciphertexts the events
carry; the archive holds residents' free text as they wrote it and must be handled as
confidential.

:func:`verify_archive` reads the files as streams: memory holds one seal's list of
streams and, per stream, its last version and hash (not the events).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from contracts import AuditSealed
from contracts.audit import seal_stream
from eventkit.audit.digest import ZERO_HASH, SealDigest, link_hash
from eventkit.audit.findings import (
    Finding,
    LinkEvidence,
    Problem,
    SealedPart,
    VerificationReport,
    classify_link,
    compare_sealed_stream,
)
from eventkit.audit.scoping import audit_scope
from eventkit.db import Conn

FORMAT: Final = "minqing-audit-archive"
FORMAT_VERSION: Final = 1
EVENTS_FILE: Final = "events.jsonl"
SEALS_FILE: Final = "seals.jsonl"
MANIFEST_FILE: Final = "manifest.json"
README_FILE: Final = "README.txt"

# PostgreSQL writes each line (json_build_object escapes the canonical text as a JSON
# string): the export spends its time in the database, not in Python's JSON encoder.
_LINE_COLUMNS = r"""
e.global_position, e.transaction_id::text::bigint AS transaction_id,
json_build_object(
    'global_position', e.global_position,
    'transaction_id', e.transaction_id::text::bigint,
    'prev_hash', encode(e.prev_hash, 'hex'),
    'hash', encode(e.hash, 'hex'),
    'canonical', convert_from(eventstore.canonical_bytes(e), 'UTF8')
)::text AS line
"""

_EVENT_PAGE = f"""
SELECT {_LINE_COLUMNS}
  FROM eventstore.events e
 WHERE e.district_id = $1 AND e.stream_id <> $2
   AND e.transaction_id >= $3::text::xid8
   AND (e.transaction_id, e.global_position) > ($3::text::xid8, $4::bigint)
   AND (e.transaction_id, e.global_position) <= ($5::text::xid8, $6::bigint)
 ORDER BY e.transaction_id, e.global_position
 LIMIT $7
"""

_SEAL_LINES = f"""
SELECT {_LINE_COLUMNS}, e.stream_version
  FROM eventstore.events e
 WHERE e.stream_id = $1 AND e.stream_version BETWEEN $2 AND $3
 ORDER BY e.stream_version
 LIMIT 50
"""

_SEAL_DATA = """
SELECT data - 'streams' FROM eventstore.events WHERE stream_id = $1 AND stream_version = $2
"""

_SEAL_AT = """
SELECT min(stream_version) FROM eventstore.events WHERE stream_id = $1 AND recorded_at >= $2
"""

_LAST_SEAL_VERSION = "SELECT max(stream_version) FROM eventstore.events WHERE stream_id = $1"

README: Final = """\
民情审计归档 / Minqing audit archive

本归档可离线核验：`minqing audit verify --archive <文件>`，或按下述方法自行计算。
Check it offline with `minqing audit verify --archive <file>`, or by hand:

1. manifest.json lists each file with its SHA-256, size and line count.
2. Each line of events.jsonl and seals.jsonl is one stored event. Its hash is
       sha256(bytes.fromhex(prev_hash) + canonical.encode("utf-8"))
   and must equal `hash`. `canonical` is the event itself (JSON): event_id, stream_id,
   stream_version, district_id, event_type, schema_version, occurred_at, recorded_at,
   data, metadata. Within a stream, each event's prev_hash is the hash of the version
   before; a stream's first event has 64 zeros.
3. Each seal (seals.jsonl, the data of an AuditSealed event) covers the district's events
   after (after_transaction_id, after_position) up to (through_transaction_id,
   through_position), in the order of events.jsonl (transaction_id, then
   global_position), the seals' own stream excepted. Its digest is
       sha256(bytes.fromhex(previous_digest) + hash_1 + ... + hash_n)
   over those events' hashes (32 raw bytes each). previous_digest is the digest of the
   seal before (the first line of seals.jsonl is that seal: the anchor).
4. Compare the last seal's digest with the one you received from the audit topic
   (minqing.audit.v1) or the printed daily digest: if it matches and steps 1-3 hold,
   nothing in this archive differs from what was sealed.
"""


@dataclass(slots=True)
class ArchiveSummary:
    """What an export wrote."""

    path: Path
    district_id: str
    events: int = 0
    seals: int = 0
    first_seal: int | None = None
    last_seal: int | None = None
    last_digest: str | None = None
    manifest_sha256: str = ""


class _HashingWriter:
    """Counts and hashes what goes into one member of the zip file."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.lines = 0
        self.bytes = 0

    def line(self, text: str) -> None:
        data = text.encode() + b"\n"
        self._out.write(data)
        self.sha256.update(data)
        self.lines += 1
        self.bytes += len(data)

    def entry(self) -> dict[str, Any]:
        return {"sha256": self.sha256.hexdigest(), "bytes": self.bytes, "lines": self.lines}


async def export_archive(
    conn: Conn,
    *,
    district_id: str,
    since: datetime,
    until: datetime,
    out: Path,
    exported_at: datetime,
    batch_size: int = 2000,
) -> ArchiveSummary:
    """Write the archive of ``district_id`` for ``[since, until)`` to ``out``.

    The period is covered by the seals recorded from ``since`` up to the first one
    recorded at or after ``until``: seal the district first (``minqing audit export``
    does) so that the period's last events are sealed too. Reads in the district's scope,
    declared here.
    """
    async with audit_scope(conn, district_id):
        return await _export(conn, district_id, since, until, out, exported_at, batch_size)


async def _export(
    conn: Conn,
    district_id: str,
    since: datetime,
    until: datetime,
    out: Path,
    exported_at: datetime,
    batch_size: int,
) -> ArchiveSummary:
    stream = seal_stream(district_id)
    summary = ArchiveSummary(path=out, district_id=district_id)
    latest = await conn.fetchval(_LAST_SEAL_VERSION, stream) or 0
    first = await conn.fetchval(_SEAL_AT, stream, since)
    last = await conn.fetchval(_SEAL_AT, stream, until) or latest
    anchor = (first - 1) if first is not None else latest
    if first is not None:
        summary.first_seal, summary.last_seal, summary.seals = first, last, last - first + 1
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(SEALS_FILE, "w") as raw:
            seal_file = _HashingWriter(raw)
            # Page by page: a seal holds up to some 150 kB of stream entries.
            version, end = max(anchor, 1), (last if first is not None else anchor)
            while version <= end:
                rows = await conn.fetch(_SEAL_LINES, stream, version, end)
                for row in rows:
                    seal_file.line(row["line"])
                if not rows:
                    break
                version = rows[-1]["stream_version"] + 1
        with zf.open(EVENTS_FILE, "w") as raw:
            event_file = _HashingWriter(raw)
            if first is not None:
                opening = await conn.fetchval(_SEAL_DATA, stream, first)
                closing = await conn.fetchval(_SEAL_DATA, stream, last)
                after = (int(opening["after_transaction_id"]), int(opening["after_position"]))
                through = (int(closing["through_transaction_id"]), int(closing["through_position"]))
                summary.last_digest = str(closing["digest"])
                while True:
                    rows = await conn.fetch(
                        _EVENT_PAGE, district_id, stream, str(after[0]), after[1],
                        str(through[0]), through[1], batch_size,
                    )  # fmt: skip
                    for row in rows:
                        event_file.line(row["line"])
                    if len(rows) < batch_size:
                        break
                    after = (rows[-1]["transaction_id"], rows[-1]["global_position"])
        summary.events = event_file.lines
        readme = README.encode()
        zf.writestr(README_FILE, readme)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "district_id": district_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "exported_at": exported_at.isoformat(),
            "anchor_seal": anchor if anchor >= 1 else None,
            "first_seal": summary.first_seal,
            "last_seal": summary.last_seal,
            "last_digest": summary.last_digest,
            "files": {
                EVENTS_FILE: event_file.entry(),
                SEALS_FILE: seal_file.entry(),
                README_FILE: {
                    "sha256": hashlib.sha256(readme).hexdigest(),
                    "bytes": len(readme),
                    "lines": readme.count(b"\n"),
                },
            },
        }
        manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
        zf.writestr(MANIFEST_FILE, manifest_bytes)
        summary.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    return summary


# ---- the offline check -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of events.jsonl or seals.jsonl, read and checked against its own hash."""

    position: tuple[int, int]
    stream_id: str
    stream_version: int
    event_id: str
    event_type: str
    data: dict[str, Any]
    prev_hash: bytes
    hash: bytes
    content_ok: bool


def _read_lines(zf: zipfile.ZipFile, name: str, report: VerificationReport) -> Iterator[_Line]:
    with zf.open(name) as raw:
        for number, text in enumerate(raw, start=1):
            try:
                line = json.loads(text)
                canonical = str(line["canonical"])
                event = json.loads(canonical)
                prev_hash = bytes.fromhex(line["prev_hash"])
                stored = bytes.fromhex(line["hash"])
                yield _Line(
                    position=(int(line["transaction_id"]), int(line["global_position"])),
                    stream_id=str(event["stream_id"]),
                    stream_version=int(event["stream_version"]),
                    event_id=str(event["event_id"]),
                    event_type=str(event["event_type"]),
                    data=event["data"],
                    prev_hash=prev_hash,
                    hash=stored,
                    content_ok=link_hash(prev_hash, canonical.encode()) == stored,
                )
            except (KeyError, TypeError, ValueError) as exc:
                report.add([_archive_changed(f"{name} line {number} is not an event: {exc}")])


def _archive_changed(detail: str) -> Finding:
    return Finding(Problem.ARCHIVE_CHANGED, f"归档文件被改动 / {detail}")


@dataclass(slots=True)
class _SealCheck:
    """The seal being checked against the events read so far."""

    seal: AuditSealed
    version: int
    digest: SealDigest
    found: dict[str, list[int | str]] = field(default_factory=dict)
    """stream id → [first version, last version, count, head hash]."""


@dataclass(slots=True)
class _ArchiveCheck:
    district_id: str
    report: VerificationReport
    heads: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    """Per stream, the last version read and its hash."""
    pending: list[tuple[int, str, SealedPart | None, SealedPart | None]] = field(
        default_factory=list
    )
    """Seal parts that differ, named once the whole archive is read."""
    digests: set[str] = field(default_factory=set)
    """The digest of every seal read, the anchor's included."""

    def event(self, line: _Line) -> None:
        previous = self.heads.get(line.stream_id)
        if previous is not None and previous[0] >= line.stream_version:
            self.report.add(
                [
                    Finding(
                        Problem.REORDERED_VERSIONS,
                        f"第 {line.stream_version} 版出现在第 {previous[0]} 版之后 / version "
                        f"{line.stream_version} comes after version {previous[0]}",
                        stream_id=line.stream_id,
                        stream_version=line.stream_version,
                        global_position=line.position[1],
                        event_id=line.event_id,
                    )
                ]
            )
        elif previous is not None or line.stream_version == 1 or not line.content_ok:
            # A stream's first line with a version above 1 links to an earlier archive:
            # only its own hash can be checked here.
            finding = classify_link(
                LinkEvidence(
                    stream_id=line.stream_id,
                    stream_version=line.stream_version,
                    global_position=line.position[1],
                    event_id=line.event_id,
                    content_ok=line.content_ok,
                    prev_hash=line.prev_hash,
                    predecessor_hash=(
                        previous[1]
                        if previous is not None and previous[0] == line.stream_version - 1
                        else (line.prev_hash if previous is None else None)
                    ),
                    prior_version=previous[0] if previous is not None else None,
                )
            )
            if finding is not None:
                self.report.add([finding])
        self.heads[line.stream_id] = (line.stream_version, line.hash)

    def close_seal(self, check: _SealCheck) -> None:
        sealed = {s.stream_id: s for s in check.seal.streams}
        names = sorted(set(sealed) | set(check.found))
        for name in names:
            s = sealed.get(name)
            f = check.found.get(name)
            sealed_part = (
                SealedPart(
                    s.first_version,
                    s.last_version,
                    s.last_version - s.first_version + 1,
                    s.head_hash,
                )
                if s
                else None
            )
            found_part = SealedPart(int(f[0]), int(f[1]), int(f[2]), str(f[3])) if f else None
            if sealed_part != found_part:
                self.pending.append((check.version, name, sealed_part, found_part))
        if check.digest.digest().hex() != check.seal.digest and not any(
            p[0] == check.version for p in self.pending
        ):
            self.report.add(
                [
                    Finding(
                        Problem.BROKEN_SEAL,
                        "封存的摘要与归档中的事件不符 / the seal's digest does not match the "
                        "archived events",
                        seal_seq=check.version,
                        district_id=self.district_id,
                    )
                ]
            )

    def finish(self) -> None:
        for version, name, sealed_part, found_part in self.pending:
            latest = self.heads.get(name)
            finding = compare_sealed_stream(
                self.district_id,
                version,
                name,
                sealed_part,
                found_part,
                latest[0] if latest else None,
            )
            if finding is not None:
                self.report.add([finding])
        self.report.streams = len(self.heads)


def verify_archive(path: Path, *, expected_digests: Sequence[str] = ()) -> VerificationReport:
    """Check an archive written by :func:`export_archive`, with no database: the files
    against the manifest, every event's hash, the links between the events of each
    stream, and each seal's digest and streams against the archived events."""
    report = VerificationReport()
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.add([_archive_changed(f"not a readable archive: {exc}")])
        return report
    with zf:
        try:
            manifest = json.loads(zf.read(MANIFEST_FILE))
        except (KeyError, ValueError) as exc:
            report.add([_archive_changed(f"no readable manifest: {exc}")])
            return report
        if manifest.get("format") != FORMAT:
            report.add([_archive_changed(f"not a {FORMAT}")])
            return report
        district_id = str(manifest.get("district_id"))
        report.districts.add(district_id)
        _check_files(zf, manifest, report)
        check = _ArchiveCheck(district_id, report)
        seals = _checked_seals(zf, manifest, report, check)
        current: _SealCheck | None = next(seals, None)
        for line in _read_lines(zf, EVENTS_FILE, report):
            report.events += 1
            check.event(line)
            while current is not None and line.position > (
                current.seal.through_transaction_id,
                current.seal.through_position,
            ):
                check.close_seal(current)
                current = next(seals, None)
            if current is None or line.position <= (
                current.seal.after_transaction_id,
                current.seal.after_position,
            ):
                report.add([_uncovered(line, district_id)])
                continue
            current.digest.add(line.hash)
            part = current.found.setdefault(line.stream_id, [line.stream_version, 0, 0, ""])
            part[1], part[2], part[3] = line.stream_version, int(part[2]) + 1, line.hash.hex()
        while current is not None:
            check.close_seal(current)
            current = next(seals, None)
        check.finish()
        for digest in expected_digests:
            if digest.lower() not in check.digests:
                report.add(
                    [
                        Finding(
                            Problem.UNKNOWN_SEAL,
                            f"归档中没有摘要为 {digest} 的封存 / no seal in the archive has the "
                            f"digest {digest}",
                            district_id=district_id,
                        )
                    ]
                )
    return report


def _uncovered(line: _Line, district_id: str) -> Finding:
    return Finding(
        Problem.INSERTED_EVENT,
        "不在任何封存的范围内 / not covered by any seal of the archive",
        stream_id=line.stream_id,
        stream_version=line.stream_version,
        global_position=line.position[1],
        event_id=line.event_id,
        district_id=district_id,
    )


def _check_files(zf: zipfile.ZipFile, manifest: dict[str, Any], report: VerificationReport) -> None:
    files = manifest.get("files") or {}
    for name in (EVENTS_FILE, SEALS_FILE):
        if name not in files:
            report.add([_archive_changed(f"the manifest does not list {name}")])
    for name, expected in files.items():
        try:
            digest, size, lines = hashlib.sha256(), 0, 0
            with zf.open(name) as raw:
                for chunk in iter(lambda: raw.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    lines += chunk.count(b"\n")
        except KeyError:
            report.add([_archive_changed(f"{name} is missing")])
            continue
        if (digest.hexdigest(), size, lines) != (
            expected.get("sha256"),
            expected.get("bytes"),
            expected.get("lines"),
        ):
            report.add([_archive_changed(f"{name} differs from the manifest")])


def _checked_seals(
    zf: zipfile.ZipFile,
    manifest: dict[str, Any],
    report: VerificationReport,
    check: _ArchiveCheck,
) -> Iterator[_SealCheck]:
    """The seals to check the events against, each checked itself first: its hash, its
    link to the seal before, and its previous digest and start."""
    previous: _Line | None = None
    previous_seal: AuditSealed | None = None
    anchored = manifest.get("anchor_seal") is not None
    for line in _read_lines(zf, SEALS_FILE, report):
        try:
            seal = AuditSealed.model_validate(line.data)
        except ValueError as exc:
            report.add([_archive_changed(f"seal {line.stream_version} is not a seal: {exc}")])
            continue
        check.event(line)
        check.digests.add(seal.digest)
        if previous is None and anchored:
            previous, previous_seal = line, seal
            continue
        problems = []
        expected_digest = previous_seal.digest if previous_seal else ZERO_HASH.hex()
        expected_after = (
            (previous_seal.through_transaction_id, previous_seal.through_position)
            if previous_seal
            else (0, 0)
        )
        if seal.previous_digest != expected_digest:
            problems.append("上一封存的摘要不符 / the previous seal's digest differs")
        if (seal.after_transaction_id, seal.after_position) != expected_after:
            problems.append("未接续上一封存 / does not start where the previous seal ended")
        if problems:
            report.add(
                [
                    Finding(
                        Problem.BROKEN_SEAL,
                        "; ".join(problems),
                        seal_seq=line.stream_version,
                        district_id=check.district_id,
                    )
                ]
            )
        report.seals += 1
        previous, previous_seal = line, seal
        yield _SealCheck(seal, line.stream_version, SealDigest(bytes.fromhex(seal.previous_digest)))
