"""Verify the live store: every stream's chain, then each district's seals.

The chains show a changed event, a missing one in the middle of a stream, versions
swapped or an event slipped in between two others. They cannot show what leaves a chain
whole: the last events of a stream taken away, a whole stream deleted, an event added at
the end or a stream rewritten with its hashes recomputed. The seals show those, for
everything they cover: each seal's digest is recomputed from the events now in its range
and its list of streams compared with what the range holds (one query per seal, set-based,
constant memory). What came after the last seal is protected by the chains only; the
report says how much that is per district.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.audit import seal_stream
from eventkit.audit.chains import BATCH_SIZE, verify_chains
from eventkit.audit.digest import ZERO_HASH
from eventkit.audit.findings import (
    Finding,
    Problem,
    SealedPart,
    VerificationReport,
    compare_sealed_stream,
)
from eventkit.audit.scoping import audit_scope
from eventkit.audit.sealing import districts, last_seal
from eventkit.db import Conn

_SEALS = """
SELECT stream_version, data - 'streams' AS seal
  FROM eventstore.events
 WHERE stream_id = $1 AND stream_version > $2
 ORDER BY stream_version
 LIMIT 100
"""

_FIRST_SEAL_SINCE = """
SELECT min(stream_version) FROM eventstore.events WHERE stream_id = $1 AND recorded_at >= $2
"""

_SEAL_RANGE = """
WITH r AS (
    SELECT e.stream_id, e.stream_version, e.hash, e.transaction_id, e.global_position
      FROM eventstore.events e
     WHERE e.district_id = $1 AND e.stream_id <> $2
       AND e.transaction_id >= $3::text::xid8
       AND (e.transaction_id, e.global_position) > ($3::text::xid8, $4::bigint)
       AND (e.transaction_id, e.global_position) <= ($5::text::xid8, $6::bigint)
), found AS (
    SELECT stream_id, min(stream_version) AS first_version, max(stream_version) AS last_version,
           count(*) AS n,
           encode((array_agg(hash ORDER BY stream_version DESC))[1], 'hex') AS head_hash
      FROM r GROUP BY stream_id
), sealed AS (
    SELECT s.*
      FROM eventstore.events seal,
           jsonb_to_recordset(seal.data -> 'streams')
               AS s(stream_id text, first_version bigint, last_version bigint, head_hash text)
     WHERE seal.stream_id = $2 AND seal.stream_version = $7
), differing AS (
    SELECT coalesce(s.stream_id, f.stream_id) AS stream_id,
           s.first_version AS s_first, s.last_version AS s_last, s.head_hash AS s_head,
           f.first_version AS f_first, f.last_version AS f_last, f.n AS f_count,
           f.head_hash AS f_head
      FROM sealed s FULL JOIN found f ON f.stream_id = s.stream_id
     WHERE s.stream_id IS NULL OR f.stream_id IS NULL
        OR s.first_version <> f.first_version OR s.last_version <> f.last_version
        OR f.n <> s.last_version - s.first_version + 1 OR s.head_hash <> f.head_hash
     ORDER BY 1
     LIMIT 1000
)
SELECT (SELECT count(*) FROM r) AS events,
       (SELECT sha256($8::bytea || coalesce(string_agg(hash, ''::bytea
                                                      ORDER BY transaction_id, global_position),
                                           ''::bytea))
          FROM r) AS digest,
       (SELECT coalesce(jsonb_agg(to_jsonb(d) || jsonb_build_object(
                   'latest', (SELECT max(x.stream_version) FROM eventstore.events x
                               WHERE x.stream_id = d.stream_id))), '[]'::jsonb)
          FROM differing d) AS differing
"""

_UNSEALED = """
SELECT count(*) FROM eventstore.events e
 WHERE e.district_id = $1 AND e.stream_id <> $2
   AND e.transaction_id >= $3::text::xid8
   AND (e.transaction_id, e.global_position) > ($3::text::xid8, $4::bigint)
"""

_SEAL_WITH_DIGEST = """
SELECT district_id, stream_version FROM eventstore.events
 WHERE stream_id = ANY($1::text[]) AND data ->> 'digest' = $2
"""


@dataclass(frozen=True, slots=True)
class _Seal:
    """The parts of a stored seal that verification reads (its stream list stays in SQL)."""

    seq: int
    version: int
    after: tuple[int, int]
    through: tuple[int, int]
    events: int
    previous_digest: str
    digest: str

    @classmethod
    def of(cls, version: int, data: dict[str, Any]) -> _Seal:
        return cls(
            seq=int(data.get("seal_seq", 0)),
            version=version,
            after=(int(data.get("after_transaction_id", 0)), int(data.get("after_position", 0))),
            through=(
                int(data.get("through_transaction_id", 0)),
                int(data.get("through_position", 0)),
            ),
            events=int(data.get("events", 0)),
            previous_digest=str(data.get("previous_digest", "")),
            digest=str(data.get("digest", "")),
        )


async def verify_store(
    conn: Conn,
    *,
    district_id: str | None = None,
    since: datetime | None = None,
    expected_digests: Sequence[str] = (),
    batch_size: int = BATCH_SIZE,
) -> VerificationReport:
    """Verify the chains and the seals of one district (or all); see the module docstring.

    ``expected_digests`` are seal digests an outside party kept: each must be the digest
    of a seal in the store (of ``district_id`` when given), or the seals were rewritten.
    Reads in the scope of ``district_id`` (or of every district), declared here.
    """
    async with audit_scope(conn, district_id):
        return await _verify_store(conn, district_id, since, expected_digests, batch_size)


async def _verify_store(
    conn: Conn,
    district_id: str | None,
    since: datetime | None,
    expected_digests: Sequence[str],
    batch_size: int,
) -> VerificationReport:
    report = VerificationReport()
    chains = await verify_chains(conn, district_id=district_id, since=since, batch_size=batch_size)
    report.events, report.streams = chains.events, chains.streams
    report.add(chains.findings)
    names = [district_id] if district_id else await districts(conn)
    for name in names:
        report.districts.add(name)
        await _verify_seals(conn, name, report, since=since)
    for digest in expected_digests:
        found = await conn.fetch(_SEAL_WITH_DIGEST, [seal_stream(n) for n in names], digest.lower())
        if not found:
            report.add(
                [
                    Finding(
                        Problem.UNKNOWN_SEAL,
                        f"没有摘要为 {digest} 的封存：封存被改写或删除 / no seal has the digest "
                        f"{digest}: the seals were rewritten or removed",
                        district_id=district_id,
                    )
                ]
            )
    return report


async def _verify_seals(
    conn: Conn, district_id: str, report: VerificationReport, *, since: datetime | None
) -> None:
    stream = seal_stream(district_id)
    start = 0
    if since is not None:
        first = await conn.fetchval(_FIRST_SEAL_SINCE, stream, since)
        start = (int(first) - 1) if first is not None else 1 << 62
    previous: _Seal | None = None
    if start > 0:
        rows = await conn.fetch(_SEALS, stream, start - 1)
        previous = _Seal.of(rows[0]["stream_version"], rows[0]["seal"]) if rows else None
    after = start
    while True:
        rows = await conn.fetch(_SEALS, stream, after)
        for row in rows:
            seal = _Seal.of(row["stream_version"], row["seal"])
            report.add(_chain_of_seals(district_id, previous, seal))
            report.add(await _verify_seal(conn, district_id, seal))
            report.seals += 1
            previous = seal
        if len(rows) < 100:
            break
        after = rows[-1]["stream_version"]
    last = await last_seal(conn, district_id)
    through = (last.through_transaction_id, last.through_position) if last else (0, 0)
    unsealed = await conn.fetchval(_UNSEALED, district_id, stream, str(through[0]), through[1])
    if unsealed:
        report.unsealed[district_id] = int(unsealed)


def _chain_of_seals(district_id: str, previous: _Seal | None, seal: _Seal) -> list[Finding]:
    """Whether ``seal`` follows ``previous``: its number, its start and its previous digest."""
    expected_digest = previous.digest if previous else ZERO_HASH.hex()
    expected_after = previous.through if previous else (0, 0)
    problems = []
    if seal.seq != seal.version:
        problems.append(
            f"序号 {seal.seq} 而非 {seal.version} / numbered {seal.seq}, not {seal.version}"
        )
    if seal.previous_digest != expected_digest:
        problems.append("上一封存的摘要不符 / the previous seal's digest differs")
    if seal.after != expected_after:
        problems.append("未接续上一封存 / does not start where the previous seal ended")
    if not problems:
        return []
    return [
        Finding(
            Problem.BROKEN_SEAL,
            "; ".join(problems),
            seal_seq=seal.version,
            district_id=district_id,
        )
    ]


async def _verify_seal(conn: Conn, district_id: str, seal: _Seal) -> list[Finding]:
    """Recompute one seal's digest from the events now in its range and compare each
    stream's part with what the seal recorded."""
    row = await conn.fetchrow(
        _SEAL_RANGE,
        district_id,
        seal_stream(district_id),
        str(seal.after[0]),
        seal.after[1],
        str(seal.through[0]),
        seal.through[1],
        seal.version,
        bytes.fromhex(seal.previous_digest) if _is_hex(seal.previous_digest) else ZERO_HASH,
    )
    assert row is not None
    findings = []
    for d in row["differing"]:
        finding = compare_sealed_stream(
            district_id,
            seal.version,
            d["stream_id"],
            _part(d, "s"),
            _part(d, "f"),
            d["latest"],
        )
        if finding is not None:
            findings.append(finding)
    if bytes(row["digest"]).hex() != seal.digest and not findings:
        findings.append(
            Finding(
                Problem.BROKEN_SEAL,
                "封存的事件都在，但摘要不符：顺序被改动或封存本身被改写 / the seal's events are "
                "all there but its digest differs: their order was changed, or the seal itself",
                seal_seq=seal.version,
                district_id=district_id,
            )
        )
    return findings


def _part(row: dict[str, Any], side: str) -> SealedPart | None:
    first = row.get(f"{side}_first")
    if first is None:
        return None
    last = int(row[f"{side}_last"])
    count = int(row["f_count"]) if side == "f" else last - int(first) + 1
    return SealedPart(int(first), last, count, str(row[f"{side}_head"]))


def _is_hex(value: str) -> bool:
    try:
        return len(bytes.fromhex(value)) == 32
    except ValueError:
        return False
