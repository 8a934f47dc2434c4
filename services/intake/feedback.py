"""A resident rating the resolution of their matter (``intake.feedback`` and
``FeedbackSubmitted``, written in one transaction), and the ratings given so far."""

from __future__ import annotations

import uuid
from typing import Final

import asyncpg

from contracts.envelope import Envelope, Metadata
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, Conn, scope
from eventkit.logging import get_logger
from eventkit.sealed_texts import TextKeys
from eventkit.store import ANY_VERSION, EventStore, OrderingConflict, retrying
from services.intake.cases import matter_of, progress_of
from services.intake.feedback_rules import FeedbackState, GiveFeedback, decide_feedback
from services.intake.opinions import opinion_by_code
from services.intake.tracking_views import FeedbackGiven

log = get_logger(__name__)

_NAMESPACE: Final = uuid.UUID("3f0e9d1c-8b7a-4c6d-9e5f-1a2b3c4d5e6f")
"""Of the event ids, derived from the case and resolution: a rating is stored once."""


async def feedback_given(conn: asyncpg.Pool | Conn, opinion_id: str) -> list[FeedbackGiven]:
    """The ratings given for an opinion's cases, oldest first."""
    rows = await conn.fetch(
        "SELECT * FROM intake.feedback WHERE opinion_id = $1 ORDER BY submitted_at", opinion_id
    )
    return [
        FeedbackGiven(
            r["case_id"],
            r["resolution_seq"],
            r["satisfaction"],
            r["resolved"],
            r["comment"],
            r["submitted_at"],
        )
        for r in rows
    ]


class Feedback:
    """Records residents' ratings: once per resolution of their matter's case."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        store: EventStore,
        clock: Clock,
        texts: TextKeys | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock
        self._texts = texts or TextKeys()

    async def give(
        self, raw_code: str, command: GiveFeedback, *, metadata: Metadata | None = None
    ) -> FeedbackGiven:
        """Record the resident's rating of the current resolution of the matter with
        this tracking code (:class:`TrackingNotFound`, :class:`Refused`...)."""
        return await retrying(
            lambda: self._give_once(raw_code, command, metadata), on=(OrderingConflict,)
        )

    async def _give_once(
        self, raw_code: str, command: GiveFeedback, metadata: Metadata | None
    ) -> FeedbackGiven:
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            # The code is unique across districts and says nothing of its district: it is
            # looked up in every district; the rest is done in the opinion's district.
            await scope(conn, ALL_DISTRICTS)
            opinion = await opinion_by_code(conn, raw_code)
            progress, _ = await matter_of(conn, opinion.opinion_id, opinion.district_id)
            if progress is not None:
                # Locking the case row serialises feedback on one case (in the case's
                # district: a transferred matter is rated for the case that resolved it).
                await scope(conn, progress.district_id)
                progress = await progress_of(conn, progress.case_id)
                await scope(conn, opinion.district_id)
            rated = await conn.fetch(
                "SELECT resolution_seq FROM intake.feedback WHERE case_id = $1",
                progress.case_id if progress else "",
            )
            state = FeedbackState(
                opinion_id=opinion.opinion_id,
                district_id=opinion.district_id,
                case_id=progress.case_id if progress else None,
                resolved=progress.resolved if progress else False,
                resolution_seq=progress.resolution_seq if progress else 0,
                rated=frozenset(r["resolution_seq"] for r in rated),
                subject_id=opinion.subject_id,
            )
            event = decide_feedback(state, command, now=now)
            event_id = uuid.uuid5(_NAMESPACE, f"{event.case_id}\n{event.resolution_seq}")
            # The case row is locked first, so the transaction may be older than the
            # stream's head: the store then raises OrderingConflict and give() retries.
            # The comment travels sealed with the opinion's key; intake's row keeps it
            # for the tracking page and staff, erased with the key.
            sealed = await self._texts.seal_resident_text(conn, event)
            await self._store.append(
                event.stream_id,
                [Envelope.wrap(sealed, metadata, event_id=event_id)],
                expected_version=ANY_VERSION,
                conn=conn,
            )
            await conn.execute(
                """
                INSERT INTO intake.feedback (case_id, resolution_seq, opinion_id, event_id,
                    satisfaction, resolved, comment, submitted_at, district_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """,
                event.case_id,
                event.resolution_seq,
                event.opinion_id,
                event_id,
                event.satisfaction,
                event.resolved,
                event.comment,
                event.occurred_at,
                opinion.district_id,
            )
        log.info(
            "feedback accepted",
            opinion_id=opinion.opinion_id,
            case_id=event.case_id,
            resolution_seq=event.resolution_seq,
            district=opinion.district_id,
        )
        return FeedbackGiven(
            event.case_id,
            event.resolution_seq,
            event.satisfaction,
            event.resolved,
            event.comment,
            event.occurred_at,
        )
