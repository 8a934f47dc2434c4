"""The consumer runtime every service uses to react to events.

For each record: decode the CloudEvent, and if a handler wants its type, run the
handler and move the stream's version gate in ONE PostgreSQL transaction; only after
that commit is the Kafka offset committed. So:

- a crash after the commit and before the offset commit redelivers the record, and the
  gate (``consumers.stream_positions``) recognises it: the effect is not applied twice;
- a record whose predecessors in its stream were not applied (published out of order
  after a broker failure, dead-lettered, or expired from the topic) makes the runtime
  apply the missing ones from the event store first: handlers see each stream in order;
- the staff's texts sealed inside case events (``eventkit.sealed_texts``) are opened
  before the handlers see them, with one look-up of the keys per batch: handlers (and
  the envelopes they get, which webhooks forward) read the texts as they were written,
  or the erased mark once a case's key was deleted;
- a failing handler is retried with exponential backoff; after ``max_attempts`` the
  record goes to ``<topic>.dlq`` with the error, the handler's name and the original
  headers, and the partition keeps flowing.

faststream pitfalls avoided here: acknowledgement is MANUAL (``AckPolicy.ACK`` would
commit after an exception), and no exception ever leaves the subscriber, so a later
commit can never silently cover a record that was not handled.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Gauge

from contracts import REGISTRY
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.registry import EventRegistry
from contracts.topics import TOPIC_BY_CATEGORY, dlq_topic
from eventkit import cloudevents
from eventkit.db import ALL_DISTRICTS, Conn, scope
from eventkit.gates import locked_gate, locked_gates, move_gates
from eventkit.kafka import ensure_topics, make_producer
from eventkit.logging import bind, get_logger
from eventkit.sealed_texts import CASE_TEXTS, TextKeys, case_key_ids, opened_case_data
from eventkit.settings import Settings
from eventkit.store import EventStore

log = get_logger(__name__)

LAG = Gauge(
    "minqing_consumer_lag_records",
    "Records on a topic that a consumer has not handled yet (the partitions' high-water "
    "marks less the next offset it will read), as of its last record",
    ["consumer", "topic"],
)

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class HandlerContext:
    """What a handler gets besides the event: its transaction and where the event came from."""

    conn: Conn
    """The open transaction: write the effect here, it commits with the version gate."""
    envelope: Envelope
    topic: str | None
    """None when the event was read from the store to fill a gap."""
    offset: int | None


Handler = Callable[[Any, HandlerContext], Awaitable[None]]
BatchHandler = Callable[[Sequence[tuple[Any, HandlerContext]]], Awaitable[None]]
"""A handler of several events of one type at once, in their order, in one transaction."""


@dataclass
class _Route:
    model: type[Event]
    handler: Handler | None = None
    many: BatchHandler | None = None
    after: tuple[Handler, ...] = ()
    """Steps run after the handler, in its transaction (:meth:`Consumer.also`)."""

    @property
    def handled(self) -> bool:
        """Whether the service has a handler of its own for the type."""
        return self.handler is not None or self.many is not None


@dataclass
class ConsumerStats:
    """Counts since start, for logs, metrics and tests."""

    applied: int = 0
    duplicates: int = 0
    gap_filled: int = 0
    retries: int = 0
    dead_lettered: int = 0
    ignored: int = 0
    last_applied_at: float = field(default=0.0)


class PermanentError(Exception):
    """A handler's way to say that retrying cannot help: straight to the DLQ."""


class Consumer:
    """A named consumer (its Kafka group and its version gate) with typed handlers."""

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        registry: EventRegistry = REGISTRY,
        after_commit: Callable[[Envelope], None] | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.name = name
        self.batch_size = batch_size or settings.consumer_batch_size
        """Records handled in one transaction with one offset commit (1: one by one)."""
        self.stats = ConsumerStats()
        self._settings = settings
        self._pool = pool
        self._store = EventStore(pool)
        self._registry = registry
        self._routes: dict[str, _Route] = {}
        self._after_commit = after_commit
        self._dlq_producer: AIOKafkaProducer | None = None
        self._lag: dict[tuple[str, int], int] = {}
        self._texts: TextKeys | None = None

    async def prepare(self) -> None:
        """Create the topics read and their dead-letter topics when they do not exist."""
        await ensure_topics(self._settings, [*self.topics, *(dlq_topic(t) for t in self.topics)])

    async def close(self) -> None:
        """Release what the consumer holds besides the broker's subscription."""
        if self._dlq_producer is not None:
            await self._dlq_producer.stop()
            self._dlq_producer = None

    async def _dlq(self) -> AIOKafkaProducer:
        if self._dlq_producer is None:
            producer = make_producer(self._settings)
            await producer.start()
            self._dlq_producer = producer
        return self._dlq_producer

    def handles(
        self, model: type[E]
    ) -> Callable[[Callable[[E, HandlerContext], Awaitable[None]]], Handler]:
        """Decorator: run the function for every event of ``model``'s type (newest shape)."""

        def register(fn: Callable[[E, HandlerContext], Awaitable[None]]) -> Handler:
            self._add_route(_Route(model, handler=cast(Handler, fn)))
            return cast(Handler, fn)

        return register

    def handles_many(
        self, model: type[E], *more: type[Event]
    ) -> Callable[[Callable[[Sequence[tuple[E, HandlerContext]]], Awaitable[None]]], BatchHandler]:
        """Decorator: run the function once for the consecutive events of ``model``'s type
        (or of any of the types given) in a batch of records, in their order, in the
        batch's transaction.

        For handlers that do the same work for many events and gain from doing it in one
        round trip (one query for all, one append for all). With a batch size of 1, or
        for a record whose stream has events not applied yet, or when a batch failed and
        its records are handled one by one, the function gets one event. Given several
        types, the function gets a run of events of any of them, mixed as they came (a
        case's events one after another).
        """

        def register(
            fn: Callable[[Sequence[tuple[E, HandlerContext]]], Awaitable[None]],
        ) -> BatchHandler:
            models: tuple[type[Event], ...] = (model, *more)
            for each in models:
                self._add_route(_Route(each, many=cast(BatchHandler, fn)))
            return cast(BatchHandler, fn)

        return register

    def also(self, *models: type[Event]) -> Callable[[Handler], Handler]:
        """Decorator: run the function for every event of these types too, after the
        service's own handler of the type (or alone when it has none), in the same
        transaction, behind the same version gate: for what a shared part keeps beside
        the service's own state (the staff roster, ``eventkit.staff_roster``)."""

        def register(fn: Handler) -> Handler:
            for model in models:
                self._add_route(_Route(model, after=(fn,)))
            return fn

        return register

    def _add_route(self, route: _Route) -> None:
        existing = self._routes.get(route.model.event_type)
        if existing is None:
            self._routes[route.model.event_type] = route
            return
        if existing.handled and route.handled:
            raise ValueError(f"{self.name} already handles {route.model.event_type}")
        self._routes[route.model.event_type] = _Route(
            route.model,
            handler=existing.handler or route.handler,
            many=existing.many or route.many,
            after=existing.after + route.after,
        )

    @property
    def topics(self) -> list[str]:
        """The (prefixed) topics carrying the handled events."""
        names = {TOPIC_BY_CATEGORY[route.model.stream_category] for route in self._routes.values()}
        return sorted(self._settings.topic(t) for t in names)

    @property
    def group_id(self) -> str:
        """The Kafka consumer group: one per consumer name and deployment."""
        return self._settings.topic(f"minqing.{self.name}")

    def attach(self, broker: KafkaBroker, **subscriber_options: Any) -> None:
        """Subscribe to the topics on ``broker`` (a faststream Kafka broker)."""
        if not self._routes:
            raise ValueError(f"consumer {self.name} handles no event type")
        options: dict[str, Any] = {
            "group_id": self.group_id,
            "ack_policy": AckPolicy.MANUAL,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": 10000,
            "heartbeat_interval_ms": 1000,
            "fetch_max_wait_ms": self._settings.kafka_fetch_max_wait_ms,
            "title": f"{self.name}",
            "description": "Handles "
            + ", ".join(sorted(self._routes))
            + " (CloudEvents binary mode; applied once per stream version).",
        }
        if self.batch_size > 1:
            options.update(batch=True, max_records=self.batch_size, batch_timeout_ms=50)
        options.update(subscriber_options)
        subscriber = broker.subscriber(*self.topics, **options)

        async def on_record(message: KafkaMessage) -> None:
            if isinstance(message.raw_message, tuple):
                await self.process_batch(message)
            else:
                await self.process(message)

        subscriber(on_record)

    async def process(self, message: Any) -> None:
        """Handle one Kafka message end to end; never raises (see the module's note)."""
        record = cast(ConsumerRecord[bytes, bytes], message.raw_message)
        self.observe_lag(getattr(message, "consumer", None), [record])
        try:
            envelope = cloudevents.decode(record.value, record.headers)
        except cloudevents.NotACloudEvent as exc:
            await self._dead_letter(record, f"undecodable record: {exc}", attempts=0)
            await message.ack()
            return
        if envelope.event_type not in self._routes:
            # Not ours: no effect, no offset commit needed (a later commit covers it).
            self.stats.ignored += 1
            return
        with bind(
            consumer=self.name,
            event_id=str(envelope.event_id),
            stream_id=envelope.stream_id,
            district=envelope.district_id,
            correlation_id=envelope.metadata.correlation_id,
        ):
            await self._handle_with_retries(record, envelope)
            await message.ack()

    def observe_lag(self, kafka: Any, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Update the lag gauge from the records about to be handled: per partition, the
        high-water mark the consumer last fetched less the offset after the last record."""
        highwater = getattr(kafka, "highwater", None)
        if highwater is None:
            return  # not a real Kafka consumer (records read from the store)
        topics: set[str] = set()
        for record in records:
            mark = highwater(TopicPartition(record.topic, record.partition))
            if mark is not None:
                self._lag[(record.topic, record.partition)] = max(0, mark - record.offset - 1)
                topics.add(record.topic)
        for topic in topics:
            total = sum(lag for (t, _), lag in self._lag.items() if t == topic)
            LAG.labels(self.name, topic).set(total)

    async def _handle_with_retries(
        self, record: ConsumerRecord[bytes, bytes], envelope: Envelope
    ) -> None:
        attempt = 0
        delay = self._settings.consumer_backoff
        while True:
            attempt += 1
            try:
                await self.apply(envelope, topic=record.topic, offset=record.offset)
                return
            except PermanentError as exc:
                await self._dead_letter(record, _describe(exc), attempts=attempt)
                return
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                if attempt >= self._settings.consumer_max_attempts:
                    log.error(
                        "handler failed for good; dead-lettering", attempts=attempt, error=repr(exc)
                    )
                    await self._dead_letter(record, _describe(exc), attempts=attempt)
                    return
                self.stats.retries += 1
                log.warning("handler failed; retrying", attempt=attempt, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def apply(
        self, envelope: Envelope, *, topic: str | None = None, offset: int | None = None
    ) -> bool:
        """Apply one event behind the version gate; return False when it was a duplicate.

        Events of the stream that were never applied before this one are read from the
        store and applied first, in the same transaction. An event no handler wants is
        left alone (False), as when it arrives from Kafka.
        """
        if envelope.event_type not in self._routes:
            self.stats.ignored += 1
            return False
        async with self._pool.acquire() as conn, conn.transaction():
            applied = await self._apply_in(conn, envelope, topic, offset)
        self._committed([envelope] if applied else [], duplicates=0 if applied else 1)
        return applied

    async def _apply_in(
        self, conn: Conn, envelope: Envelope, topic: str | None, offset: int | None
    ) -> bool:
        version = _version_of(envelope)
        await scope(conn, envelope.district_id)
        [envelope] = await self._opened(conn, [envelope])
        locked = await locked_gate(conn, self.name, envelope.stream_id)
        last = locked or 0
        if version <= last:
            return False
        await self._fill_gap(conn, envelope, last)
        await self._run(envelope, conn, topic, offset)
        read = {} if locked is None else {envelope.stream_id: locked}
        await move_gates(conn, self.name, {envelope.stream_id: version}, read)
        return True

    async def _fill_gap(self, conn: Conn, envelope: Envelope, last: int) -> None:
        """Apply the events of the stream between ``last`` and ``envelope``, if any."""
        version = _version_of(envelope)
        if version <= last + 1:
            return
        missing = [
            stored.envelope()
            for stored in await self._store.read_stream(
                envelope.stream_id, from_version=last + 1, conn=conn
            )
            if stored.stream_version < version and stored.event_type in self._routes
        ]
        for stored in await self._opened(conn, missing):
            await self._run(stored, conn, None, None)
            self.stats.gap_filled += 1

    async def _opened(self, conn: Conn, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """``envelopes`` with the staff's sealed texts of case events opened (one look-up
        of their keys, in ``conn``'s current scope), without ``sealed``: what handlers
        read, as if the texts had travelled in clear. The others as they are."""
        wanted = case_key_ids((e.event_type, e.data) for e in envelopes)
        if not wanted:
            return list(envelopes)
        if self._texts is None:
            self._texts = TextKeys(self._settings.privacy_keys())
        keys = await self._texts.found(conn, wanted)
        opened: list[Envelope] = []
        for envelope in envelopes:
            if envelope.event_type in CASE_TEXTS and envelope.data.get("sealed"):
                data = opened_case_data(envelope.event_type, envelope.data, keys)
                data.pop("sealed")
                envelope = envelope.model_copy(update={"data": data})
            opened.append(envelope)
        return opened

    async def _apply_batch_in(
        self, conn: Conn, work: Sequence[tuple[ConsumerRecord[bytes, bytes], Envelope]]
    ) -> list[Envelope]:
        """Apply a batch's records behind their gates in ``conn``; the applied ones.

        The gates of all the batch's streams are read in one query and moved in one
        statement; consecutive events of one district and of a type handled by a batch
        handler go to it in one call, in that district's row-level security scope. A
        record whose stream has events not applied yet is applied on its own, after
        them, as :meth:`apply` would.
        """
        if case_key_ids((e.event_type, e.data) for _, e in work):
            # One look-up for the keys of the whole batch's sealed texts, which may span
            # districts (each record is then handled in its own district's scope, below).
            await scope(conn, ALL_DISTRICTS)
            opened = await self._opened(conn, [e for _, e in work])
            work = [(record, e) for (record, _), e in zip(work, opened, strict=True)]
        read = await locked_gates(conn, self.name, (envelope.stream_id for _, envelope in work))
        last = dict(read)
        moved: dict[str, int] = {}
        applied: list[Envelope] = []
        pending: list[tuple[Any, HandlerContext]] = []
        pending_after: list[tuple[Handler, ...]] = []
        pending_route: _Route | None = None
        scoped: str | None = None

        async def flush() -> None:
            nonlocal pending_route
            if pending and pending_route is not None and pending_route.many is not None:
                await pending_route.many(list(pending))
                for (event, context), after in zip(pending, pending_after, strict=True):
                    for step in after:
                        await step(event, context)
            pending.clear()
            pending_after.clear()
            pending_route = None

        for record, envelope in work:
            version = _version_of(envelope)
            known = last.get(envelope.stream_id, 0)
            if version <= known:
                continue
            if envelope.district_id != scoped:
                # Row-level security: each record is handled in its own district's
                # scope, so a batch handler's call never spans two districts.
                await flush()
                await scope(conn, envelope.district_id)
                scoped = envelope.district_id
            route = self._routes[envelope.event_type]
            if route.many is None or version > known + 1:
                await flush()
                await self._fill_gap(conn, envelope, known)
                await self._run(envelope, conn, record.topic, record.offset)
            else:
                if pending_route is None or pending_route.many is not route.many:
                    await flush()
                    pending_route = route
                event = self._event(envelope)
                pending.append((event, HandlerContext(conn, envelope, record.topic, record.offset)))
                pending_after.append(route.after)
            last[envelope.stream_id] = moved[envelope.stream_id] = version
            applied.append(envelope)
        await flush()
        if moved:
            await move_gates(conn, self.name, moved, read)
        return applied

    def _committed(self, applied: list[Envelope], *, duplicates: int) -> None:
        self.stats.applied += len(applied)
        self.stats.duplicates += duplicates
        if applied:
            self.stats.last_applied_at = time.time()
        if self._after_commit is not None:
            for envelope in applied:
                self._after_commit(envelope)

    async def process_batch(self, message: Any) -> None:
        """Handle a batch of records in one transaction and one offset commit.

        If anything in the batch fails, the transaction rolls back and the batch is
        handled again record by record, with the retries and the DLQ of
        :meth:`process`, so one poison record costs its batch only time.
        """
        records = cast(tuple[ConsumerRecord[bytes, bytes], ...], message.raw_message)
        self.observe_lag(getattr(message, "consumer", None), records)
        work: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
        for record in records:
            try:
                envelope = cloudevents.decode(record.value, record.headers)
            except cloudevents.NotACloudEvent as exc:
                await self._dead_letter(record, f"undecodable record: {exc}", attempts=0)
                continue
            if envelope.event_type not in self._routes:
                self.stats.ignored += 1
                continue
            work.append((record, envelope))
        if work:
            try:
                with bind(consumer=self.name, batch=len(work)):
                    async with self._pool.acquire() as conn, conn.transaction():
                        applied = await self._apply_batch_in(conn, work)
                self._committed(applied, duplicates=len(work) - len(applied))
            except Exception as exc:  # noqa: BLE001 - the records are handled one by one instead
                log.warning("batch failed; handling its records one by one", error=repr(exc))
                for record, envelope in work:
                    with bind(
                        consumer=self.name,
                        event_id=str(envelope.event_id),
                        stream_id=envelope.stream_id,
                        district=envelope.district_id,
                    ):
                        await self._handle_with_retries(record, envelope)
        await message.ack()

    async def _run(
        self, envelope: Envelope, conn: Conn, topic: str | None, offset: int | None
    ) -> None:
        route = self._routes[envelope.event_type]
        event = self._event(envelope)
        context = HandlerContext(conn, envelope, topic, offset)
        if route.many is not None:
            await route.many([(event, context)])
        elif route.handler is not None:
            await route.handler(event, context)
        for step in route.after:
            await step(event, context)

    def _event(self, envelope: Envelope) -> Event:
        try:
            return envelope.event(self._registry)
        except Exception as exc:
            raise PermanentError(f"invalid {envelope.event_type}: {exc}") from exc

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: str, *, attempts: int
    ) -> None:
        headers = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
        headers += [
            ("dlq_error", error[:4000].encode()),
            ("dlq_handler", self.name.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        delay = 0.5
        while True:
            # Not acknowledging before the dead letter is stored keeps the record: if the
            # DLQ cannot be written, the partition waits rather than lose it.
            try:
                await (await self._dlq()).send_and_wait(
                    dlq_topic(record.topic), value=record.value, key=record.key, headers=headers
                )
                break
            except Exception as exc:  # noqa: BLE001 - never acknowledge what is not stored
                log.error("cannot write to the DLQ; will retry", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.stats.dead_lettered += 1
        log.warning(
            "record dead-lettered", topic=record.topic, offset=record.offset, error=error[:200]
        )


def _version_of(envelope: Envelope) -> int:
    version = envelope.stream_version
    if version is None:
        raise ValueError("only stored events can be consumed")
    return version


def _describe(exc: BaseException) -> str:
    frames = traceback.format_exception_only(type(exc), exc)
    return "".join(frames).strip()


async def run_consumers(
    settings: Settings,
    consumers: list[Consumer],
    stop: asyncio.Event,
    *,
    started: asyncio.Event | None = None,
) -> None:
    """Run ``consumers`` on one faststream broker until ``stop`` is set.

    ``started`` is set once the broker runs (its subscriptions may still be joining).
    """

    broker = KafkaBroker(
        settings.kafka_bootstrap,
        client_id="minqing",
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
    )
    for consumer in consumers:
        await consumer.prepare()
        consumer.attach(broker)
    await broker.start()
    if started is not None:
        started.set()
    try:
        await stop.wait()
    finally:
        await broker.stop()
        for consumer in consumers:
            await consumer.close()
