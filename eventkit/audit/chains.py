"""Recompute every stream's hash chain in the store, batch by batch.

Each batch is one query over the next ``batch_size`` events in ``(stream_id,
stream_version)`` order (keyset pagination on the unique index): PostgreSQL recomputes
each hash from the canonical bytes and compares each ``prev_hash`` with the hash of the
version before, and only the broken links (and the batch's last key) come back. Memory
stays that of one batch whatever the size of the store; the hashing is set-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from eventkit.audit.findings import Finding, LinkEvidence, classify_link, first_per_stream
from eventkit.audit.scoping import audit_scope
from eventkit.db import Conn

BATCH_SIZE = 5000

_BATCH = r"""
WITH batch AS (
    SELECT e.global_position, e.stream_id, e.stream_version, e.event_id, e.prev_hash, e.hash,
           sha256(e.prev_hash || eventstore.canonical_bytes(e)) = e.hash AS content_ok
      FROM eventstore.events e
     WHERE (e.stream_id, e.stream_version) > ($1::text, $2::bigint)
       AND ($3::text IS NULL OR e.district_id = $3)
       AND ($4::timestamptz IS NULL OR e.recorded_at >= $4)
     ORDER BY e.stream_id, e.stream_version
     LIMIT $5
), linked AS (
    SELECT b.*,
           row_number() OVER w AS n,
           count(*) OVER () AS total,
           lag(b.stream_id) OVER w IS DISTINCT FROM b.stream_id AS starts_stream,
           CASE WHEN b.stream_version = 1 THEN NULL
                WHEN lag(b.stream_id) OVER w = b.stream_id
                 AND lag(b.stream_version) OVER w = b.stream_version - 1
                THEN lag(b.hash) OVER w
                -- The predecessor is in an earlier batch, filtered out, or missing.
                ELSE (SELECT p.hash FROM eventstore.events p
                       WHERE p.stream_id = b.stream_id AND p.stream_version = b.stream_version - 1)
           END AS predecessor_hash
      FROM batch b
    WINDOW w AS (ORDER BY b.stream_id, b.stream_version)
), checked AS (
    SELECT l.*,
           l.content_ok AND CASE WHEN l.stream_version = 1 THEN l.prev_hash = '\x{zero}'::bytea
                                 ELSE coalesce(l.prev_hash = l.predecessor_hash, false)
                            END AS ok,
           sum(l.starts_stream::int) OVER () AS streams
      FROM linked l
)
SELECT c.global_position, c.stream_id, c.stream_version, c.event_id::text AS event_id,
       c.content_ok, c.prev_hash, c.predecessor_hash, c.ok, c.n, c.total, c.streams,
       CASE WHEN NOT c.ok AND c.predecessor_hash IS NULL AND c.stream_version > 1 THEN
           (SELECT max(x.stream_version) FROM eventstore.events x
             WHERE x.stream_id = c.stream_id AND x.stream_version < c.stream_version)
       END AS prior_version,
       CASE WHEN NOT c.ok THEN
           (SELECT x.stream_version FROM eventstore.events x
             WHERE x.stream_id = c.stream_id AND x.hash = c.prev_hash
               AND x.stream_version <> c.stream_version - 1
             LIMIT 1)
       END AS prev_points_at
  FROM checked c
 WHERE c.n = 1 OR c.n = c.total OR NOT c.ok
 ORDER BY c.n
""".replace("{zero}", "00" * 32)


@dataclass(slots=True)
class ChainReport:
    """How many events and streams were checked, and each stream's first broken link."""

    events: int = 0
    streams: int = 0
    findings: list[Finding] = field(default_factory=list)


async def verify_chains(
    conn: Conn,
    *,
    district_id: str | None = None,
    since: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> ChainReport:
    """Recompute the chains of every stream (of ``district_id``), naming the first broken
    link of each.

    With ``since``, only events recorded at or after it are checked, each against its
    predecessor whatever that one's age. Reads in the scope of ``district_id`` (or of
    every district), declared here (:func:`eventkit.audit.scoping.audit_scope`).
    """
    async with audit_scope(conn, district_id):
        return await _verify_chains(conn, district_id, since, batch_size)


async def _verify_chains(
    conn: Conn, district_id: str | None, since: datetime | None, batch_size: int
) -> ChainReport:
    report = ChainReport()
    after: tuple[str, int] = ("", 0)
    last_stream: str | None = None
    found: list[Finding] = []
    while True:
        rows = await conn.fetch(_BATCH, *after, district_id, since, batch_size)
        if not rows:
            break
        first, last = rows[0], rows[-1]
        report.events += int(last["total"])
        report.streams += int(last["streams"]) - (1 if first["stream_id"] == last_stream else 0)
        for row in rows:
            if row["ok"]:
                continue
            finding = classify_link(
                LinkEvidence(
                    stream_id=row["stream_id"],
                    stream_version=row["stream_version"],
                    global_position=row["global_position"],
                    event_id=row["event_id"],
                    content_ok=row["content_ok"],
                    prev_hash=bytes(row["prev_hash"]),
                    predecessor_hash=(
                        None if row["predecessor_hash"] is None else bytes(row["predecessor_hash"])
                    ),
                    prior_version=row["prior_version"],
                    prev_points_at=row["prev_points_at"],
                )
            )
            if finding is not None:
                found.append(finding)
        # Only the first broken link of a stream is reported: keep the list short even
        # when a whole stream was rewritten.
        found = first_per_stream(found)
        after = (last["stream_id"], last["stream_version"])
        last_stream = last["stream_id"]
        if int(last["total"]) < batch_size:
            break
    report.findings = found
    return report
