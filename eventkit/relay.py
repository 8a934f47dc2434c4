"""The relay: the event table is the outbox; this publishes it to Kafka, in order.

One relay is active per store: it holds a session advisory lock for as long as it runs,
and a second relay waits on that lock and takes over when the first one's connection
ends (a crash, a kill, a lost network). The relay reads committed events in
(transaction id, position) order, publishes a batch, waits for the broker's
acknowledgement of every record (``acks=all``), and only then moves its checkpoint.
A crash between publishing and checkpointing re-publishes: consumers discard the
duplicates by stream version.

Nothing one event holds can stall the relay: an event of a category that has no topic,
or one too large for the producer, is logged and passed over (the store keeps it, and
consumers fill such a gap from the store). The leader also runs the sealer
(``eventkit.audit.sealing``) beside the publishing loop, as a task of its own: a seal is
appended like any event and published to ``minqing.audit.v1``; a failing round of
sealing is logged and retried, never in the way of publishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from contracts.topics import ALL_TOPICS, topic_for
from eventkit import cloudevents
from eventkit.audit.sealing import Sealer
from eventkit.db import connect
from eventkit.kafka import ensure_topics, make_producer
from eventkit.logging import get_logger
from eventkit.settings import Settings
from eventkit.store import START, Checkpoint, EventStore, TailEvent

log = get_logger(__name__)

_LEADER_LOCK = 0x72656C61  # "rela"
NOTIFY_CHANNEL = "minqing_events"


class Relay:
    """Publishes the store's events to their topics as CloudEvents."""

    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        *,
        on_published: Callable[[list[TailEvent]], Awaitable[None]] | None = None,
        sealer: Sealer | None = None,
        seal_interval: float = 0,
    ) -> None:
        self._store = store
        self._settings = settings
        self._name = f"relay:{settings.relay_name}"
        self._wake = asyncio.Event()
        self._on_published = on_published
        self._sealer = sealer
        self._seal_interval = seal_interval
        self.published = 0
        self.skipped = 0
        """Events passed over because they cannot be published (see the module doc)."""
        self.is_leader = False

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for leadership, then publish until ``stop`` is set."""
        assert self._settings.database_url
        leader = await connect(self._settings.database_url, role=self._settings.database_role)
        try:
            if not await self._become_leader(leader, stop):
                return
            await leader.add_listener(NOTIFY_CHANNEL, self._notified)
            leader.add_termination_listener(lambda _c: self._wake.set())
            created = await ensure_topics(
                self._settings, [self._settings.topic(t) for t in ALL_TOPICS]
            )
            sealing = (
                asyncio.create_task(self._sealer.run(stop, self._seal_interval))
                if self._sealer is not None and self._seal_interval > 0
                else None
            )
            try:
                await self._publish_loop(leader, stop, fresh_broker=bool(created))
            finally:
                if sealing is not None:
                    sealing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sealing
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(leader.close(), 5)

    async def _become_leader(self, leader: asyncpg.Connection, stop: asyncio.Event) -> bool:
        waiting_logged = False
        while not stop.is_set():
            if await leader.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", _LEADER_LOCK, self._name
            ):
                self.is_leader = True
                log.info("relay is the leader", relay=self._name)
                return True
            if not waiting_logged:
                log.info("another relay leads; waiting to take over", relay=self._name)
                waiting_logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        return False

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    async def _publish_loop(
        self, leader: asyncpg.Connection, stop: asyncio.Event, *, fresh_broker: bool
    ) -> None:
        checkpoint = await self._store.load_checkpoint(self._name)
        if fresh_broker and checkpoint != START:
            # The topics had to be created: the broker is new (the local one keeps
            # nothing when it stops). Feed it the whole history again from the store.
            log.warning("topics were missing: re-publishing the store from the start")
            checkpoint = START
            await self._store.save_checkpoint(self._name, START, rewind=True)
        producer: AIOKafkaProducer | None = None
        backoff = 0.2
        try:
            while not stop.is_set():
                if leader.is_closed():
                    raise ConnectionError("lost the leadership connection to PostgreSQL")
                self._wake.clear()
                # The relay publishes every district's events: it reads the whole store
                # in the scope of every district (row-level security, issue 14).
                batch = await self._store.read_tail(
                    checkpoint, limit=self._settings.relay_batch_size
                )
                if not batch:
                    # Ask writers to notify, then look once more: an event committed
                    # before they saw the request would otherwise wait for the poll.
                    await self._set_waiting(leader, True)
                    batch = await self._store.read_tail(
                        checkpoint, limit=self._settings.relay_batch_size
                    )
                    if not batch:
                        await self._sleep(stop)
                    await self._set_waiting(leader, False)
                    continue
                try:
                    if producer is None:
                        producer = make_producer(self._settings)
                        await producer.start()
                    await self._publish(producer, batch)
                except Exception as exc:  # noqa: BLE001 - any failure restarts from the checkpoint
                    # Nothing after the checkpoint counts as sent: start the batch again
                    # with a new producer (a record may be duplicated, never skipped).
                    log.warning("publishing failed; retrying", error=repr(exc), backoff=backoff)
                    if producer is not None:
                        with contextlib.suppress(Exception):
                            await producer.stop()
                        producer = None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                backoff = 0.2
                checkpoint = batch[-1].checkpoint
                await self._store.save_checkpoint(self._name, checkpoint)
                self.published += len(batch)
                if self._on_published is not None:
                    await self._on_published(batch)
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()

    async def _publish(self, producer: AIOKafkaProducer, batch: list[TailEvent]) -> None:
        started = time.monotonic()
        futures = []
        for event in batch:
            try:
                topic = self._settings.topic(topic_for(event.stream_id))
                key, value, headers = cloudevents.encode_tail(event)
                futures.append(await producer.send(topic, value=value, key=key, headers=headers))
            except (ValueError, MessageSizeTooLargeError) as exc:
                # Retrying would fail the same way for ever and hold back every later
                # event: pass over this one, loudly.
                self.skipped += 1
                log.error(
                    "event cannot be published; passed over",
                    event_id=str(event.event_id),
                    stream_id=event.stream_id,
                    event_type=event.event_type,
                    reason=str(exc),
                )
        await asyncio.gather(*futures)
        log.debug("published", count=len(batch), ms=round((time.monotonic() - started) * 1000, 1))

    @staticmethod
    async def _set_waiting(leader: asyncpg.Connection, waiting: bool) -> None:
        await leader.execute(
            "INSERT INTO eventstore.wakeup (relay_waiting) VALUES ($1) "
            "ON CONFLICT (id) DO UPDATE SET relay_waiting = excluded.relay_waiting",
            waiting,
        )

    async def _sleep(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {stopping, woken},
                timeout=self._settings.relay_poll_interval,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopping.cancel()
            woken.cancel()


async def relay_checkpoint(store: EventStore, settings: Settings) -> Checkpoint:
    """Where the named relay has got to."""
    return await store.load_checkpoint(f"relay:{settings.relay_name}")
