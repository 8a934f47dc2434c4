"""The sealer: per district, a seal over every settled event not sealed yet.

A seal covers the district's events in the store's order, ``(transaction_id,
global_position)``, up to a point below the visibility horizon: every transaction that
could still add an event before that point has ended, so the set a seal covers can never
grow afterwards (the same argument as the relay's, ``docs/architecture.md``). The digest
and the list of streams are computed by PostgreSQL in one statement from the stored
hashes; the seal is appended with the previous seal's version as the expected version,
so two sealers never fork a district's chain of seals.

A seal covers at most ``max_events`` events, which bounds its size (one entry per stream
it touches) far below Kafka's 1 MB record limit: the relay publishes it like any event.
A backlog is sealed in several seals in one round.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from contracts import Actor, ActorRole, AuditSealed, SealedStream
from contracts.audit import seal_stream
from contracts.envelope import Envelope
from eventkit.audit.digest import ZERO_HASH
from eventkit.audit.scoping import audit_scope
from eventkit.clock import Clock, utc_now
from eventkit.db import Conn
from eventkit.logging import get_logger
from eventkit.store import ConcurrencyError, EventStore

log = get_logger(__name__)

MAX_EVENTS: Final = 1000
"""Events per seal by default: at most as many stream entries, some 150 kB of JSON."""
SEALER: Final = Actor(id="sealer", role=ActorRole.SYSTEM)

_LAST_SEAL = """
SELECT data FROM eventstore.events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1
"""

_NEXT_RANGE = """
WITH r AS (
    SELECT e.stream_id, e.stream_version, e.hash, e.transaction_id, e.global_position
      FROM eventstore.events e
     WHERE e.district_id = $1 AND e.stream_id <> $2
       AND e.transaction_id >= $3::text::xid8
       AND (e.transaction_id, e.global_position) > ($3::text::xid8, $4::bigint)
       AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY e.transaction_id, e.global_position
     LIMIT $5
), heads AS (
    SELECT stream_id, min(stream_version) AS first_version, max(stream_version) AS last_version,
           encode((array_agg(hash ORDER BY stream_version DESC))[1], 'hex') AS head_hash
      FROM r GROUP BY stream_id
), last AS (
    SELECT transaction_id::text::bigint AS xid, global_position
      FROM r ORDER BY transaction_id DESC, global_position DESC LIMIT 1
)
SELECT (SELECT count(*) FROM r) AS events,
       (SELECT sha256($6::bytea || string_agg(hash, ''::bytea
                                             ORDER BY transaction_id, global_position))
          FROM r) AS digest,
       (SELECT xid FROM last) AS through_xid,
       (SELECT global_position FROM last) AS through_position,
       (SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.stream_id), '[]'::jsonb)
          FROM heads h) AS streams
"""

DISTRICTS = """
WITH RECURSIVE d AS (
    (SELECT district_id FROM eventstore.events ORDER BY district_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.district_id FROM eventstore.events e
             WHERE e.district_id > d.district_id ORDER BY e.district_id LIMIT 1)
      FROM d WHERE d.district_id IS NOT NULL
)
SELECT district_id FROM d WHERE district_id IS NOT NULL
"""
"""Every district with events (a loose scan of the district index: one probe each)."""


async def districts(conn: Conn) -> list[str]:
    """Every district that has events in the store (read in the scope of every district)."""
    async with audit_scope(conn, None):
        return [r["district_id"] for r in await conn.fetch(DISTRICTS)]


async def last_seal(conn: Conn, district_id: str) -> AuditSealed | None:
    """The district's latest seal, or None before its first (read in its scope)."""
    async with audit_scope(conn, district_id):
        data = await conn.fetchval(_LAST_SEAL, seal_stream(district_id))
    return None if data is None else AuditSealed.model_validate(data)


@dataclass(frozen=True, slots=True)
class SealedRange:
    """What a seal will cover, as PostgreSQL computed it."""

    events: int
    digest: bytes
    through_transaction_id: int
    through_position: int
    streams: list[SealedStream]


class Sealer:
    """Appends the seals of each district (see the module's docstring)."""

    def __init__(
        self, store: EventStore, *, clock: Clock = utc_now, max_events: int = MAX_EVENTS
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_events = max_events

    async def seal(self, district_id: str) -> list[AuditSealed]:
        """Seal every settled event of the district that no seal covers yet; the new
        seals (none when there was nothing new)."""
        made: list[AuditSealed] = []
        while True:
            async with self._store.pool.acquire() as conn, audit_scope(conn, district_id):
                previous = await last_seal(conn, district_id)
                covered = await self._next_range(conn, district_id, previous)
            if covered is None:
                return made
            seal = AuditSealed(
                district_id=district_id,
                occurred_at=self._clock(),
                actor=SEALER,
                seal_seq=(previous.seal_seq + 1) if previous else 1,
                after_transaction_id=previous.through_transaction_id if previous else 0,
                after_position=previous.through_position if previous else 0,
                through_transaction_id=covered.through_transaction_id,
                through_position=covered.through_position,
                events=covered.events,
                total_events=(previous.total_events if previous else 0) + covered.events,
                previous_digest=previous.digest if previous else ZERO_HASH.hex(),
                digest=covered.digest.hex(),
                streams=covered.streams,
            )
            try:
                await self._store.append(
                    seal.stream_id,
                    [Envelope.wrap(seal)],
                    expected_version=previous.seal_seq if previous else 0,
                )
            except ConcurrencyError:
                # Another sealer (an on-demand `minqing audit seal`) sealed first: start
                # again from its seal.
                continue
            log.info(
                "district sealed",
                district=district_id,
                seal=seal.seal_seq,
                events=seal.events,
                digest=seal.digest,
            )
            made.append(seal)
            if covered.events < self._max_events:
                return made

    async def seal_all(self) -> list[AuditSealed]:
        """Seal every district; the new seals."""
        made: list[AuditSealed] = []
        async with self._store.pool.acquire() as conn:
            names = await districts(conn)
        for district_id in names:
            made.extend(await self.seal(district_id))
        return made

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Seal every district every ``interval`` seconds until ``stop`` is set. A failed
        round is logged and tried again at the next one: sealing never stops the relay."""
        while not stop.is_set():
            try:
                await self.seal_all()
            except Exception as exc:  # noqa: BLE001 - a failed round waits for the next
                log.warning("sealing failed; trying again later", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def _next_range(
        self, conn: Conn, district_id: str, previous: AuditSealed | None
    ) -> SealedRange | None:
        row = await conn.fetchrow(
            _NEXT_RANGE,
            district_id,
            seal_stream(district_id),
            str(previous.through_transaction_id if previous else 0),
            previous.through_position if previous else 0,
            self._max_events,
            bytes.fromhex(previous.digest) if previous else ZERO_HASH,
        )
        assert row is not None
        if not row["events"]:
            return None
        return SealedRange(
            events=int(row["events"]),
            digest=bytes(row["digest"]),
            through_transaction_id=int(row["through_xid"]),
            through_position=int(row["through_position"]),
            streams=[SealedStream.model_validate(s) for s in row["streams"]],
        )
