"""The per-district public topic ``minqing.public.<district>.cases.v1``.

The consumer writes each case event's public record (:mod:`contracts.public`: an
allow-list of fields, no free text, nothing of the resident) to
``notification.public_feed`` in its transaction; this loop sends the records in order and
deletes them once the broker acknowledged them. One process at a time sends (a
transaction-level advisory lock), so a case's records keep their order; a crash between
the acknowledgement and the delete sends a batch again, with the same ``ce_id``s.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from contracts.topics import public_cases_topic
from eventkit import cloudevents
from eventkit.db import ALL_DISTRICTS, scope
from eventkit.kafka import ensure_topics, make_producer
from eventkit.logging import get_logger
from eventkit.settings import Settings

log = get_logger(__name__)

_LOCK = 0x7075626C  # "publ"


class PublicFeed:
    """Sends the public records (see the module's note)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, *, batch: int = 500) -> None:
        self._pool = pool
        self._settings = settings
        self._batch = batch
        self._producer: AIOKafkaProducer | None = None
        self._topics: set[str] = set()

    async def run(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        """Publish until ``stop`` is set."""
        try:
            while not stop.is_set():
                try:
                    sent = await self.publish_once()
                except Exception as exc:  # noqa: BLE001 - the records wait for the next try
                    log.error("public feed failed; retrying", error=repr(exc))
                    await self._reset()
                    sent = 0
                if sent < self._batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval)
        finally:
            await self._reset()

    async def publish_once(self) -> int:
        """Send one batch of waiting records; returns how many were sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK):
                return 0  # another process is sending
            # The feed is drained in the order its records were written, whatever their
            # district (each goes to its own district's topic): one reader for all.
            await scope(conn, ALL_DISTRICTS)
            rows = await conn.fetch(
                "SELECT seq, district_id, envelope FROM notification.public_feed "
                "ORDER BY seq LIMIT $1",
                self._batch,
            )
            if not rows:
                return 0
            producer = await self._ready([r["district_id"] for r in rows])
            pending = []
            for row in rows:
                key, value, headers = cloudevents.encode(Envelope.model_validate(row["envelope"]))
                topic = self._settings.topic(public_cases_topic(row["district_id"]))
                pending.append(await producer.send(topic, value=value, key=key, headers=headers))
            await asyncio.gather(*pending)
            await conn.execute(
                "DELETE FROM notification.public_feed WHERE seq = ANY($1::bigint[])",
                [r["seq"] for r in rows],
            )
        return len(rows)

    async def _ready(self, districts: list[str]) -> AIOKafkaProducer:
        topics = {self._settings.topic(public_cases_topic(d)) for d in districts}
        new = topics - self._topics
        if new:
            await ensure_topics(self._settings, sorted(new))
            self._topics |= new
        if self._producer is None:
            producer = make_producer(self._settings)
            await producer.start()
            self._producer = producer
        return self._producer

    async def _reset(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None
