"""The sender: works the outbox after the consumer's commit.

It claims due deliveries (never more than ``sender_concurrency`` in flight, nor more than
``sender_per_recipient`` to one recipient, so a slow subscriber cannot hold up the
others), finds the address and renders the message at send time (a resident's phone is
opened with their key only now, so a forgotten resident cannot be contacted), sends, and
records each outcome with its ``NotificationSent`` or ``NotificationFailed`` in one
transaction. A passing failure waits with exponential backoff and jitter; after
``delivery_max_attempts`` it is recorded as failed. Deliveries a dead sender left claimed
become ``unknown`` (see :mod:`services.notification.outbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from contracts.base import Actor, ActorRole
from contracts.envelope import Envelope, Metadata
from contracts.notifications import NotificationFailed, NotificationSent
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, district_transaction, scope
from eventkit.logging import get_logger
from eventkit.privacy import PersonalDataVault
from eventkit.store import NO_STREAM, EventStore
from services.notification import outbox
from services.notification.channels import (
    Channel,
    Delivered,
    Outcome,
    Outgoing,
    Refused,
    Retry,
)
from services.notification.ids import notification_stream, outcome_event_id
from services.notification.messages import Message
from services.notification.metrics import DELIVERIES, OUTCOMES, export_depth
from services.notification.naming import Names, message_context, resident_district
from services.notification.outbox import Delivery, Finished
from services.notification.settings import NotificationSettings
from services.notification.setup import Setups
from services.notification.subscriptions import FAR_FUTURE
from services.notification.timing import backoff

log = get_logger(__name__)

SYSTEM = Actor(id="notification", role=ActorRole.SYSTEM)


class RecordingFailed(Exception):
    """Some outcomes could not be recorded (their district's transaction failed)."""

    def __init__(self, unrecorded: Sequence[Finished]) -> None:
        super().__init__(f"{len(unrecorded)} outcomes not recorded")
        self.unrecorded = unrecorded


class Sender:
    """Sends what the outbox holds (see the module's note)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        vault: PersonalDataVault,
        channels: dict[str, Channel],
        settings: NotificationSettings,
        clock: Clock,
        setups: Setups,
        *,
        name: str | None = None,
    ) -> None:
        self._setups = setups
        self._pool = pool
        self._store = store
        self._vault = vault
        self._channels = channels
        self._settings = settings
        self._clock = clock
        self.name = name or f"sender-{uuid.uuid4().hex[:12]}"
        self._inflight: dict[uuid.UUID, asyncio.Task[Finished]] = {}
        self._per_recipient: Counter[str] = Counter()
        self._unrecorded: list[Finished] = []
        self._ended = asyncio.Event()
        self._closing = asyncio.Event()
        self._recording = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set, then let what is in flight finish.

        Outcomes are recorded by a task of their own (:meth:`_record_ended`), beside the
        claiming and sending: a record is a transaction (the outcomes and their events),
        and while one commits the next sends are claimed and started instead of waiting
        for it; what ends meanwhile is recorded together by the next one."""
        housekeeping = asyncio.create_task(self._housekeep(stop))
        recorder = asyncio.create_task(self._record_ended())
        try:
            while not stop.is_set():
                if recorder.done():
                    recorder.result()  # it died: its error stops the sender
                started = await self._claim_and_start()
                done = await self._collect(wait=not started and bool(self._inflight), record=False)
                if not started and not done:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._settings.sender_poll_interval)
        finally:
            try:
                if self._inflight:
                    await asyncio.wait(
                        self._inflight.values(), timeout=self._settings.delivery_timeout
                    )
                # The recorder ends after the record it is making, shielded from a
                # cancellation of this stop: what is left is recorded here.
                self._closing.set()
                self._ended.set()
                if not recorder.done():
                    await asyncio.shield(recorder)
                await self._collect(wait=False)
            finally:
                housekeeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await housekeeping

    async def send_due(self) -> int:
        """Send everything due now, wait for it, record it; returns how many ended (for the
        CLI and tests, which drive the sender step by step)."""
        ended = 0
        while True:
            started = await self._claim_and_start()
            if not started and not self._inflight:
                return ended
            if self._inflight:
                await asyncio.wait(self._inflight.values())
            ended += await self._collect(wait=False)

    async def _claim_and_start(self) -> int:
        # Outcomes not recorded yet hold their slots: when recording lags (a slow
        # database), claiming slows down with it, so that no sent delivery waits for its
        # record long enough to be taken for one left by a dead sender (mark_unknown).
        room = (
            self._settings.sender_concurrency
            - len(self._inflight)
            - len(self._unrecorded)
            - self._recording
        )
        if room <= 0 or (self._inflight and room < self._least):
            # A claim costs a statement whatever its size: under load, wait until a few
            # sends have ended and claim for all of them at once.
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            # One sender serves every district, oldest first (outbox.claim).
            await scope(conn, ALL_DISTRICTS)
            claimed = await outbox.claim(
                conn,
                self._clock(),
                room,
                self.name,
                self._settings.sender_per_recipient,
                self._per_recipient,
            )
            if not claimed:
                return 0
            # Looked up once for the batch, each district in its own scope: a contact
            # changed or removed meanwhile is read afresh for the next one (the setup's
            # stamp moved).
            names = await Names.load(conn, self._setups, self._settings.public_base_url, claimed)
        for delivery in claimed:
            self._per_recipient[delivery.recipient] += 1
            self._inflight[delivery.delivery_id] = asyncio.create_task(self._send(delivery, names))
        return len(claimed)

    async def _collect(self, *, wait: bool, record: bool = True) -> int:
        """Take the sends that ended; record their outcomes now (``record``), or leave them
        to the recording task (:meth:`run`). How many ended (and were recorded, when
        recorded here)."""
        if wait and self._inflight:
            done, pending = await asyncio.wait(
                self._inflight.values(),
                timeout=self._settings.sender_poll_interval,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if done and pending and self._settings.sender_linger > 0:
                # Under load more sends end within a few milliseconds: record them (and
                # claim their successors) together rather than one transaction each, but
                # no longer than it takes a claim's worth to end (a recipient at its share
                # waits for the claim to get its next sends going).
                await self._linger(len(done), pending)
        done_ids = [d for d, t in self._inflight.items() if t.done()]
        for delivery_id in done_ids:
            result = self._inflight.pop(delivery_id).result()
            self._per_recipient[result.delivery.recipient] -= 1
            if self._per_recipient[result.delivery.recipient] <= 0:
                del self._per_recipient[result.delivery.recipient]
            self._unrecorded.append(result)
        if not record:
            if done_ids:
                self._ended.set()
            return len(done_ids)
        return await self._record_unrecorded()

    async def _record_unrecorded(self) -> int:
        """Record the outcomes not recorded yet; how many were."""
        if not self._unrecorded:
            return 0
        finished, self._unrecorded = self._unrecorded, []
        self._recording = len(finished)
        try:
            await self.record(finished)
        except RecordingFailed as exc:
            # The messages went; only their record did not. Keep the outcomes and try again
            # (if this process dies first, the deliveries become unknown: not resent).
            log.error("recording outcomes failed; will retry", error=repr(exc.__cause__))
            self._unrecorded = list(exc.unrecorded) + self._unrecorded
            return len(finished) - len(exc.unrecorded)
        except BaseException:
            # Cancelled (or failed unexpectedly) in the middle: keep every outcome. A
            # district's part already committed is not recorded twice (outbox.finish
            # touches only deliveries still being sent; the events' ids are derived).
            self._unrecorded = finished + self._unrecorded
            raise
        finally:
            self._recording = 0
        return len(finished)

    async def _record_ended(self) -> None:
        """Record outcomes as sends end, one transaction at a time, each taking every
        outcome that ended while the one before committed."""
        failures = 0
        while True:
            await self._ended.wait()
            self._ended.clear()
            if self._closing.is_set():
                return
            recorded = await self._record_unrecorded()
            if self._unrecorded and not recorded:
                # Not recorded (the database refused or is away): again after a pause
                # that doubles up to five seconds.
                failures += 1
                pause = self._settings.sender_poll_interval * 2 ** min(failures, 10)
                with contextlib.suppress(TimeoutError):
                    # A stop cuts the pause short: what is left is recorded by run().
                    await asyncio.wait_for(self._closing.wait(), min(pause, 5.0))
                self._ended.set()
                continue
            failures = 0
            if self._unrecorded:
                self._ended.set()

    async def _linger(self, ended: int, pending: set[asyncio.Task[Finished]]) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + self._settings.sender_linger
        while pending and ended < self._least and (left := until - loop.time()) > 0:
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            ended += len(done)

    @property
    def _least(self) -> int:
        """Free slots worth a claim while sends are in flight."""
        concurrency = self._settings.sender_concurrency
        return min(self._settings.sender_claim_at_least, max(1, concurrency // 4))

    async def _send(self, delivery: Delivery, names: Names) -> Finished:
        now = self._clock()
        try:
            prepared = await self._outgoing(delivery, names, now)
            if isinstance(prepared, Outgoing):
                channel = self._channels[delivery.channel]
                outcome: Outcome = await asyncio.wait_for(
                    channel.send(prepared), self._settings.delivery_timeout
                )
            else:
                outcome = prepared
        except TimeoutError:
            outcome = Retry(f"no answer within {self._settings.delivery_timeout:g} s")
        except Exception as exc:
            log.exception("send failed unexpectedly", delivery_id=str(delivery.delivery_id))
            outcome = Retry(f"{type(exc).__name__}: {exc}"[:300])
        return self._finished(delivery, outcome, self._clock())

    async def _outgoing(
        self, delivery: Delivery, names: Names, now: datetime
    ) -> Outgoing | Outcome:
        """The message and its address; an :data:`Outcome` when it cannot go (now)."""
        if delivery.recipient_kind == "subscriber":
            subscription = names.subscription(delivery.district_id, delivery.recipient)
            if subscription is None or subscription.status == "deleted":
                return Refused("the subscription was deleted")
            if subscription.status == "paused":
                return Retry("paused")
            return Outgoing(
                delivery.delivery_id,
                _EMPTY,
                now,
                subscription.url,
                secrets=tuple(subscription.secrets_at(now, self._settings.privacy_keys())),
                document=delivery.context["cloudevent"],
            )
        context = message_context(delivery, names)
        if delivery.recipient_kind == "resident":
            return await self._to_resident(delivery, names, context, now)
        contact = names.contact(delivery.district_id, delivery.recipient)
        if contact is None or not contact.active:
            return Refused(f"no contact on file for staff {delivery.recipient}")
        address = {
            "email": contact.email,
            "sms": contact.mobile,
            "wecom": str(contact.wecom_robot) if contact.wecom_robot else None,
            "dingtalk": str(contact.dingtalk_robot) if contact.dingtalk_robot else None,
            "webhook": str(contact.webhook_url) if contact.webhook_url else None,
        }[delivery.channel]
        if not address:
            return Refused(f"no {delivery.channel} address on file for staff {delivery.recipient}")
        context["recipient_name"] = contact.name or names.person(
            delivery.district_id, delivery.recipient
        )
        message = await names.render(delivery, context)
        return Outgoing(
            delivery.delivery_id,
            message,
            now,
            address,
            mention=contact.wecom_user if delivery.channel == "wecom" else contact.dingtalk_user,
            secrets=(contact.dingtalk_secret,) if contact.dingtalk_secret else (),
            extra={"case_id": delivery.case_id or "", "rule": delivery.rule},
        )

    async def _to_resident(
        self, delivery: Delivery, names: Names, context: dict[str, Any], now: datetime
    ) -> Outgoing | Outcome:
        sealed = names.resident(delivery.opinion_id)
        if sealed is None or sealed.subject_id != delivery.recipient:
            return Retry("the opinion has not reached this service yet")
        async with district_transaction(self._pool, resident_district(delivery)) as conn:
            opened = await self._vault.open(
                sealed.subject_id,
                {
                    "phone": sealed.phone_ciphertext,
                    "tracking_code": sealed.tracking_code_ciphertext,
                },
                conn=conn,
            )
        if opened is None:
            return Refused(
                "居民的个人信息已按其要求删除，无法联系 / the resident's personal data was "
                "erased at their request: they cannot be contacted"
            )
        phone, code = opened.get("phone"), opened.get("tracking_code")
        if not phone or not code:
            return Refused("the resident left no phone number")
        base = self._settings.public_base_url.rstrip("/")
        context.update(
            tracking_code=f"{code[:4]}-{code[4:8]}-{code[8:]}" if len(code) == 12 else code,
            tracking_url=f"{base}/t/{code}",
            rating_url=f"{base}/t/{code}#feedback",
        )
        message = await names.render(delivery, context)
        return Outgoing(delivery.delivery_id, message, now, phone)

    def _finished(self, delivery: Delivery, outcome: Outcome, now: datetime) -> Finished:
        OUTCOMES.labels(delivery.channel, type(outcome).__name__.lower()).inc()
        if isinstance(outcome, Delivered):
            return Finished(delivery, "sent", finished_at=now)
        if isinstance(outcome, Retry) and outcome.reason == "paused":
            return Finished(delivery, "pending", "paused", retry_at=FAR_FUTURE)
        if isinstance(outcome, Retry) and delivery.attempts < self._settings.delivery_max_attempts:
            wait = backoff(delivery.attempts, self._settings.delivery_backoff)
            return Finished(delivery, "pending", outcome.reason, retry_at=now + wait)
        return Finished(delivery, "failed", outcome.reason, finished_at=now)

    async def record(self, finished: Sequence[Finished]) -> None:
        """Record outcomes with the event of each ended delivery: one transaction per
        district, in that district's scope (the outcome, then its ``NotificationSent`` or
        ``NotificationFailed``, commit together). :class:`RecordingFailed` names the
        outcomes not recorded when a district's transaction failed (the others are)."""
        by_district: dict[str, list[Finished]] = {}
        for f in finished:
            by_district.setdefault(f.delivery.district_id, []).append(f)
        unrecorded: list[Finished] = []
        error: Exception | None = None
        for district, group in by_district.items():
            try:
                async with district_transaction(self._pool, district) as conn:
                    kept = await outbox.finish(conn, group, self.name)
                    appends = [
                        (
                            notification_stream(f.delivery.delivery_id),
                            [_outcome_event(f)],
                            NO_STREAM,
                        )
                        for f in kept
                        if f.status in ("sent", "failed")
                    ]
                    await self._store.append_batch(appends, conn=conn)
            except Exception as exc:  # noqa: BLE001 - the other districts' go on; these are retried
                unrecorded += group
                error = exc
                continue
            self._recorded(kept)
        if error is not None:
            raise RecordingFailed(unrecorded) from error

    def _recorded(self, kept: Sequence[Finished]) -> None:
        for f in kept:
            if f.status in ("sent", "failed"):
                DELIVERIES.labels(f.delivery.channel, f.status).inc()
            if f.status == "failed":
                log.warning(
                    "delivery failed",
                    delivery_id=str(f.delivery.delivery_id),
                    channel=f.delivery.channel,
                    rule=f.delivery.rule,
                    error=f.error,
                )

    async def reconcile(self, district_id: str, delivery_id: uuid.UUID, outcome: str) -> bool:
        """Settle an ``unknown`` delivery as an operator established (see
        :func:`services.notification.outbox.reconcile`); records ``NotificationSent`` or
        ``NotificationFailed`` for a settled one. False when there is no such delivery."""
        now = self._clock()
        async with district_transaction(self._pool, district_id) as conn:
            delivery = await outbox.reconcile(conn, district_id, delivery_id, outcome, now)
            if delivery is None:
                return False
            if outcome in ("sent", "failed"):
                error = "reconciled by an operator: failed" if outcome == "failed" else None
                settled = Finished(delivery, outcome, error, finished_at=now)
                await self._store.append_batch(
                    [(notification_stream(delivery_id), [_outcome_event(settled)], NO_STREAM)],
                    conn=conn,
                )
        log.info("delivery reconciled", delivery_id=str(delivery_id), outcome=outcome)
        return True

    async def _housekeep(self, stop: asyncio.Event) -> None:
        lease = timedelta(seconds=2 * self._settings.delivery_timeout)
        while not stop.is_set():
            try:
                lost = await outbox.mark_unknown(self._pool, lease)
                if lost:
                    log.warning("deliveries left mid-send by a stopped sender", count=lost)
                await export_depth(self._pool, self._clock())
            except Exception as exc:  # noqa: BLE001 - housekeeping tries again next time
                log.error("outbox housekeeping failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def _outcome_event(f: Finished) -> Envelope:
    d = f.delivery
    common: dict[str, Any] = {
        "district_id": d.district_id,
        "occurred_at": f.finished_at,
        "actor": SYSTEM,
        "notification_id": d.delivery_id.hex,
        "source_event_id": d.source_event_id,
        "recipient": d.recipient,
        "channel": d.channel,
        "template": d.template,
        "case_id": d.case_id,
        "opinion_id": d.opinion_id,
        "attempts": d.attempts,
    }
    event: NotificationSent | NotificationFailed
    if f.status == "sent":
        event = NotificationSent(**common)
    else:
        event = NotificationFailed(**common, error=(f.error or "failed")[:1000])
    metadata = Metadata(causation_id=str(d.source_event_id))
    return Envelope.wrap(event, metadata, event_id=outcome_event_id(d.delivery_id, d.attempts))


_EMPTY = Message("", "")
"""A subscriber's delivery carries the CloudEvent, not a message."""
