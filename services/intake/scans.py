"""How often each station's QR page (民情码) is opened, against the opinions submitted from
it (扫码量): counted here, told to the others as events.

Each view of ``/q/<station>`` adds one to its station's row of the local day in
``intake.qr_scans`` (one statement, no event: a busy lift poster must not fill the store
with an event per glance). Every ``intake_scan_record_interval`` seconds,
:meth:`QrScans.record` appends a ``QrScansRecorded`` with the day's totals (views, and the
QR opinions intake accepted from that station that day) for each station-day whose totals
changed, on the stream ``qrscans-<district>.<station>``, in the transaction that marks
them recorded. Reporting keeps the latest totals of each day; services talk only through
events, so this is how reporting learns what only intake sees (docs/intake.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date, timedelta

import asyncpg

from contracts.base import Actor, ActorRole
from contracts.envelope import Envelope, Metadata
from contracts.intake import QrScansRecorded
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, district_transaction
from eventkit.logging import get_logger
from eventkit.store import EventStore

log = get_logger(__name__)

NAMESPACE = uuid.UUID("7b0e4c1e-3a52-5d2b-9f0f-716e7273636e")
"""Namespace of the ids of ``QrScansRecorded`` (the same totals, the same event)."""

INTAKE = Actor(id="intake", role=ActorRole.SYSTEM)

_COUNT = """
INSERT INTO intake.qr_scans (district_id, station_code, day, scans)
VALUES ($1, $2, ($3::timestamptz AT TIME ZONE coalesce(
        (SELECT timezone FROM intake.districts WHERE district_id = $1), 'Asia/Shanghai'))::date, 1)
ON CONFLICT (district_id, station_code, day) DO UPDATE SET scans = intake.qr_scans.scans + 1
"""

_DUE = """
SELECT q.district_id, q.station_code, q.day, q.scans, q.recorded_scans, q.recorded_opinions,
       coalesce(d.timezone, 'Asia/Shanghai') AS timezone
  FROM intake.qr_scans q LEFT JOIN intake.districts d USING (district_id)
 WHERE q.scans <> q.recorded_scans OR q.day >= $1::date
 ORDER BY q.day, q.district_id, q.station_code
 LIMIT $2
   FOR UPDATE OF q SKIP LOCKED
"""
"""Station-days whose views changed, and those of the last two days (whose opinions may
have changed since): locked, so two instances never record the same rows at once."""

_OPINIONS = """
SELECT count(*) FROM intake.opinions
 WHERE district_id = $1 AND station_code = $2 AND channel = 'qr'
   AND submitted_at >= ($3::date::timestamp AT TIME ZONE $4)
   AND submitted_at < (($3::date + 1)::timestamp AT TIME ZONE $4)
"""


def event_id(
    district_id: str, station_code: str, day: date, scans: int, opinions: int
) -> uuid.UUID:
    """The id of the event recording these totals: recording them again is a no-op."""
    return uuid.uuid5(NAMESPACE, f"{district_id}:{station_code}:{day}:{scans}:{opinions}")


class QrScans:
    """Counts QR page views and records their totals as events (see the module's note)."""

    def __init__(self, pool: asyncpg.Pool, store: EventStore, clock: Clock) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def count(self, district_id: str, station_code: str) -> None:
        """One more view of the station's QR page, on the district's local day."""
        async with district_transaction(self._pool, district_id) as conn:
            await conn.execute(_COUNT, district_id, station_code, self._clock())

    async def record(self, *, batch: int = 500) -> int:
        """Append the changed totals as ``QrScansRecorded``; how many were appended."""
        now = self._clock()
        recent = (now - timedelta(days=2)).date()
        recorded = 0
        # Every district's stations in one sweep: each event and row names its district,
        # and the database checks that each stream stays in its own (MQ006).
        async with district_transaction(self._pool, ALL_DISTRICTS) as conn:
            for row in await conn.fetch(_DUE, recent, batch):
                d, station, day = row["district_id"], row["station_code"], row["day"]
                opinions = await conn.fetchval(_OPINIONS, d, station, day, row["timezone"])
                if (row["scans"], opinions) == (row["recorded_scans"], row["recorded_opinions"]):
                    continue
                event = QrScansRecorded(
                    district_id=d,
                    occurred_at=now,
                    actor=INTAKE,
                    station_code=station,
                    day=day,
                    scans=row["scans"],
                    opinions=opinions,
                )
                envelope = Envelope.wrap(
                    event,
                    Metadata(),
                    event_id=event_id(d, station, day, row["scans"], opinions),
                )
                await self._store.append(event.stream_id, [envelope], conn=conn)
                await conn.execute(
                    "UPDATE intake.qr_scans SET recorded_scans = $4, recorded_opinions = $5 "
                    "WHERE district_id = $1 AND station_code = $2 AND day = $3",
                    d,
                    station,
                    day,
                    row["scans"],
                    opinions,
                )
                recorded += 1
        return recorded

    async def run(self, stop: asyncio.Event, *, interval: float) -> None:
        """Record every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                recorded = await self.record()
                if recorded:
                    log.info("qr scans recorded", count=recorded)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.error("recording qr scans failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
