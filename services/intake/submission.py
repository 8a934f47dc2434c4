"""Accepting an opinion, whatever the channel: the handler behind the JSON API, the QR
form, Open311 and the 12345 import.

On one connection: the stored answer of a known idempotency key, if any; then one
transaction with the resident's key (one statement, get or create), the opinion's row with
its tracking code and its idempotency key (one statement), and the ``OpinionSubmitted``
event. Only once it has committed does the caller answer 201: nothing accepted is lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from contracts import Actor
from contracts.envelope import Envelope, Metadata
from contracts.intake import SubmitterRef
from eventkit.clock import Clock
from eventkit.db import Conn, begun_scoped
from eventkit.logging import get_logger
from eventkit.privacy import PersonalDataVault
from eventkit.refusals import Refusal
from eventkit.sealed_texts import TextKeys
from eventkit.store import (
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventIdError,
    EventStore,
    OrderingConflict,
    retrying,
)
from services.intake import idempotency
from services.intake.directory import Directory
from services.intake.errors import UnknownDistrict
from services.intake.idempotency import Claim, IdempotencyKey
from services.intake.opinion_record import OpinionRecord
from services.intake.opinions import insert_opinion
from services.intake.submission_rules import (
    Caller,
    CleanSubmission,
    Place,
    SubmitOpinion,
    authorize,
    check_submission,
    contact_consent,
    locate,
    on_behalf_of,
    opinion_submitted,
)
from services.intake.tracking_codes import format_tracking_code, new_opinion_id, new_tracking_code

log = get_logger(__name__)

_ATTEMPTS = 5

Admission = Callable[[Conn, Place], Awaitable[None]]
"""A last check in the submission's transaction, just before it commits (a proof-of-work
spent: ``station_guard.py``); raising rolls it all back."""


@dataclass(frozen=True)
class Receipt:
    """What the resident or clerk gets back: the opinion's id and its tracking code."""

    opinion_id: str
    tracking_code: str
    district_id: str
    station_code: str | None
    submitted_at: datetime
    replayed: bool = False

    def to_json(self, public_base_url: str) -> dict[str, Any]:
        """The 201 body (also what an idempotent retry gets again)."""
        return {
            "opinion_id": self.opinion_id,
            "tracking_code": format_tracking_code(self.tracking_code),
            "tracking_url": f"{public_base_url.rstrip('/')}/t/{self.tracking_code}",
            "district": self.district_id,
            "station_code": self.station_code,
            "submitted_at": self.submitted_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        """A receipt stored by :meth:`to_json`, marked as replayed."""
        return cls(
            opinion_id=data["opinion_id"],
            tracking_code=data["tracking_code"].replace("-", ""),
            district_id=data["district"],
            station_code=data["station_code"],
            submitted_at=datetime.fromisoformat(data["submitted_at"]),
            replayed=True,
        )


class Submissions:
    """Accepts opinions into the event store."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        store: EventStore,
        vault: PersonalDataVault,
        directory: Directory,
        public_base_url: str,
        clock: Clock,
        new_code: Callable[[], str] = new_tracking_code,
        new_id: Callable[[datetime], str] = new_opinion_id,
        texts: TextKeys | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._vault = vault
        self._texts = texts or TextKeys()
        self._directory = directory
        self._base_url = public_base_url
        self._clock = clock
        self._new_code = new_code
        self._new_id = new_id

    async def place(self, command: SubmitOpinion) -> Place:
        """The district and station of a submission (:class:`UnknownStation`...)."""
        stations = (
            await self._directory.stations_with_code(command.station_code)
            if command.station_code is not None
            else []
        )
        known = (
            command.district_id is not None
            and await self._directory.district(command.district_id) is not None
        )
        if command.district_id is not None and not known:
            raise UnknownDistrict(command.district_id)
        return locate(command, stations=stations, district_known=known)

    async def submit(
        self,
        command: SubmitOpinion,
        principal: Caller,
        *,
        key: IdempotencyKey | None = None,
        metadata: Metadata | None = None,
        admit: Admission | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Accept ``command`` or raise the refusal that says why not. ``settings``:
        transaction-local settings the submission's commit acts on (a station's token:
        ``station_guard.py``), declared with its scope in the round trip that begins it."""
        clean = check_submission(command)
        # A colliding opinion id or tracking code (rare) draws new ones on the next
        # attempt; the same key at the same moment finds the stored answer.
        receipt = await retrying(
            lambda: self._submit_once(clean, principal, key, metadata, admit, settings),
            on=(
                ConcurrencyError,
                OrderingConflict,
                DuplicateEventIdError,
                asyncpg.UniqueViolationError,
                _AnsweredElsewhere,
            ),
            attempts=_ATTEMPTS,
            backoff=0,
        )
        log.info(
            "opinion replayed" if receipt.replayed else "opinion accepted",
            opinion_id=receipt.opinion_id,
            district=receipt.district_id,
            channel=command.channel.value,
            station=receipt.station_code,
        )
        return receipt

    async def _submit_once(
        self,
        clean: CleanSubmission,
        principal: Caller,
        key: IdempotencyKey | None,
        metadata: Metadata | None,
        admit: Admission | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Receipt:
        command = clean.command
        # Looked up before a connection is taken: the lookups use the pool themselves,
        # and a request holding one connection while waiting for another could starve it.
        place: Place | Refusal
        try:
            place = await self.place(command)
        except Refusal as refusal:
            place = refusal
        now = self._clock()
        opinion_id = self._new_id(now)
        async with self._pool.acquire() as conn:
            if key is not None:
                stored = await idempotency.stored_answer(conn, key)
                if stored is not None:
                    return Receipt.from_json(stored)  # the first answer, whatever changed
            if isinstance(place, Refusal):
                raise place
            actor = authorize(command, principal, place)
            # BEGIN and the district's scope in one round trip: a submission is a short
            # transaction of a few statements, and each round trip costs both sides.
            async with begun_scoped(conn, place.district_id, settings):
                receipt = await self._accept(
                    conn, clean, principal, place, actor, opinion_id, now, key, metadata
                )
                if admit is not None:
                    await admit(conn, place)
                return receipt

    async def _accept(
        self,
        conn: Conn,
        clean: CleanSubmission,
        principal: Caller,
        place: Place,
        actor: Actor,
        opinion_id: str,
        now: datetime,
        key: IdempotencyKey | None,
        metadata: Metadata | None,
    ) -> Receipt:
        command = clean.command
        tracking_code = self._new_code()
        submitter = None
        if clean.name is not None or clean.phone is not None:
            # The tracking code is sealed with the contact: a message may carry the
            # resident's tracking link, and forgetting the resident shreds it too.
            sealed = await self._vault.seal(
                place.district_id,
                {"name": clean.name, "phone": clean.phone, "tracking_code": tracking_code},
                identifier=clean.phone if clean.phone_identified else None,
                conn=conn,
            )
            submitter = SubmitterRef(
                subject_id=sealed.subject_id,
                name_ciphertext=sealed.values["name"],
                phone_ciphertext=sealed.values["phone"],
                tracking_code_ciphertext=sealed.values["tracking_code"],
                contact_consent=contact_consent(command),
            )
        event = opinion_submitted(
            clean,
            opinion_id=opinion_id,
            place=place,
            actor=actor,
            submitter=submitter,
            behalf=on_behalf_of(command, principal),
            now=now,
            tracking_ref=await self._vault.tracking_ref(tracking_code, conn=conn),
        )
        receipt = Receipt(
            opinion_id=opinion_id,
            tracking_code=tracking_code,
            district_id=place.district_id,
            station_code=event.location.station_code,
            submitted_at=event.occurred_at,
        )
        record = OpinionRecord(
            opinion_id=opinion_id,
            district_id=place.district_id,
            tracking_code=receipt.tracking_code,
            channel=command.channel.value,
            station_code=event.location.station_code,
            community=event.location.community,
            address=event.location.address,
            lat=event.location.lat,
            long=event.location.long,
            category_hint=event.category_hint,
            text=event.text,
            attachments=tuple(str(url) for url in event.attachments),
            external_ref=event.external_ref,
            subject_id=submitter.subject_id if submitter else None,
            submitted_at=event.occurred_at,
        )
        claim = (
            Claim(key, 201, receipt.to_json(self._base_url), place.district_id)
            if key is not None
            else None
        )
        if not await insert_opinion(conn, record, claim=claim):
            # The same key came twice at once: the other request won; answer as it did.
            raise _AnsweredElsewhere()
        # Intake's own row (above) keeps the texts in clear for staff and the tracking
        # page, erased with the key; the event carries them sealed with the opinion's key.
        envelope = Envelope.wrap(
            await self._texts.seal_opinion(conn, event),
            (metadata or Metadata()).model_copy(update={"channel": command.channel.value}),
            event_id=key.event_id if key is not None else None,
        )
        await self._store.append(event.stream_id, [envelope], expected_version=NO_STREAM, conn=conn)
        return receipt


class _AnsweredElsewhere(Exception):
    """A concurrent request with the same idempotency key committed first."""
