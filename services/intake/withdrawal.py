"""A resident taking their matter back while it is not handled yet: ``OpinionWithdrawn``
and the opinion's row marked, in one transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

import asyncpg

from contracts.envelope import Envelope, Metadata
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, district_transaction
from eventkit.logging import get_logger
from eventkit.sealed_texts import TextKeys
from eventkit.store import ANY_VERSION, EventStore, OrderingConflict, retrying
from services.intake.cases import matter_of
from services.intake.opinions import opinion_by_code, opinion_by_id
from services.intake.progress import CLOSED_STAGES
from services.intake.tracking_views import stage_of
from services.intake.withdrawal_rules import WithdrawalState, decide_withdrawal

log = get_logger(__name__)

_NAMESPACE: Final = uuid.UUID("8d2c4b6a-1e3f-4a5b-8c7d-9e0f1a2b3c4d")
"""Of the event ids, derived from the opinion: it is withdrawn once."""


class Withdrawals:
    """Records residents withdrawing their matters."""

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

    async def withdraw(
        self, raw_code: str, reason: str | None, *, metadata: Metadata | None = None
    ) -> datetime:
        """Take back the matter with this tracking code while it is not handled yet;
        when it was withdrawn (:class:`TrackingNotFound`, :class:`Refused`...)."""
        # The code is unique across districts and says nothing of its district: it is
        # looked up in every district; the withdrawal is done in the opinion's.
        async with district_transaction(self._pool, ALL_DISTRICTS) as conn:
            found = await opinion_by_code(conn, raw_code)
        return await retrying(
            lambda: self._withdraw_once(found.opinion_id, found.district_id, reason, metadata),
            on=(OrderingConflict,),
        )

    async def _withdraw_once(
        self, opinion_id: str, district_id: str, reason: str | None, metadata: Metadata | None
    ) -> datetime:
        now = self._clock()
        async with district_transaction(self._pool, district_id) as conn:
            # Locking the opinion's row serialises withdrawal and feedback on it.
            opinion = await opinion_by_id(conn, opinion_id, for_update=True)
            assert opinion is not None  # found by its code, and opinions are never deleted
            progress, _ = await matter_of(conn, opinion_id, district_id)
            state = WithdrawalState(
                opinion_id=opinion_id,
                district_id=opinion.district_id,
                withdrawn=opinion.withdrawn_at is not None,
                finished=stage_of(opinion, progress) in CLOSED_STAGES,
                subject_id=opinion.subject_id,
            )
            event = decide_withdrawal(state, reason, now=now)
            # The opinion's row is locked first, so the transaction may be older than the
            # stream's head: the store then raises OrderingConflict and withdraw() retries.
            # The reason travels sealed with the opinion's key; intake's row keeps it for
            # the tracking page, erased with the key.
            sealed = await self._texts.seal_resident_text(conn, event)
            await self._store.append(
                event.stream_id,
                [Envelope.wrap(sealed, metadata, event_id=uuid.uuid5(_NAMESPACE, opinion_id))],
                expected_version=ANY_VERSION,
                conn=conn,
            )
            await conn.execute(
                "UPDATE intake.opinions SET withdrawn_at = $2, withdraw_reason = $3 "
                "WHERE opinion_id = $1",
                opinion_id,
                event.occurred_at,
                event.reason,
            )
        log.info("opinion withdrawn", opinion_id=opinion_id, district=opinion.district_id)
        return event.occurred_at
