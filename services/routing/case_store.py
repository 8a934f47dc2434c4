"""Cases in the event store: load one by folding its stream, save new events with its
read model, in the caller's transaction.

The one place routing reads and writes a case's stream, so that appending and
projecting can never drift apart: :meth:`CaseStore.save` appends with the version the
case was loaded at (a lost race is a ``ConcurrencyError`` the caller retries) and
updates the case's row in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from asyncpg.exceptions import DeadlockDetectedError

from contracts import REGISTRY
from contracts.cases import CaseEvent
from contracts.envelope import Envelope, Metadata
from eventkit.db import Conn
from eventkit.sealed_texts import TextKeys, open_case_data, seal_case_events
from eventkit.store import (
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventIdError,
    EventStore,
    OrderingConflict,
)
from services.routing.case_projection import (
    OpinionFacts,
    add_links,
    insert_case,
    insert_cases,
    update_case,
)
from services.routing.case_state import CaseState, evolve, fold
from services.routing.ids import command_event_id

LOST_RACES = (ConcurrencyError, OrderingConflict, DuplicateEventIdError, DeadlockDetectedError)
"""What a transaction that lost a race to another writer raises: read again, decide again
(a deadlock too: the server failed this transaction to let the other one through)."""


def stream_of(case_id: str) -> str:
    """The stream holding a case's events."""
    return f"case-{case_id}"


@dataclass(frozen=True)
class NewCase:
    """A case to open: its first events with their ids, and the opinion's facts."""

    events: Sequence[CaseEvent]
    ids: Sequence[uuid.UUID]
    metadata: Metadata
    facts: OpinionFacts
    fingerprint: int | None = None


class CaseStore:
    """Load, fold and save cases through the event store (see the module's note)."""

    def __init__(self, store: EventStore, texts: TextKeys | None = None) -> None:
        """``texts``: the case text keys that seal and open the staff's texts inside the
        events (``eventkit.sealed_texts``); by default with the process's vault key."""
        self._store = store
        self._texts = texts or TextKeys()

    @property
    def texts(self) -> TextKeys:
        """The case text keys this store seals and opens with."""
        return self._texts

    @property
    def events(self) -> EventStore:
        """The event store underneath."""
        return self._store

    async def load(self, conn: Conn, case_id: str) -> CaseState | None:
        """The case as its stream describes it (None when there is no such case)."""
        records = await self._store.read_stream(stream_of(case_id), conn=conn)
        opened = await open_case_data(conn, self._texts, [(r.event_type, r.data) for r in records])
        state: CaseState | None = None
        for record, data in zip(records, opened, strict=True):
            event = REGISTRY.parse(record.event_type, record.schema_version, data)
            assert isinstance(event, CaseEvent)
            state = evolve(state, event)
        return state

    async def exists(self, conn: Conn, case_id: str) -> bool:
        """Whether the case has a stream."""
        return await self._store.stream_exists(stream_of(case_id), conn=conn)

    async def already_done(self, conn: Conn, source: str) -> bool:
        """Whether the request ``source`` (its idempotency key and case) was carried out."""
        return await self._store.event_exists(command_event_id(source, 0), conn=conn)

    async def save(
        self,
        conn: Conn,
        before: CaseState | None,
        events: Sequence[CaseEvent],
        ids: Sequence[uuid.UUID],
        metadata: Metadata,
        facts: OpinionFacts | None = None,
        fingerprint: int | None = None,
    ) -> CaseState:
        """Append ``events`` to the case's stream and update its row, in ``conn``.

        ``facts`` (and the text's ``fingerprint``) are required for a new case. Returns
        the case after the events (``before`` when they were stored already).
        """
        if not events:
            assert before is not None
            return before
        case_id = events[0].case_id
        # The staff's texts go into the store sealed with the case's key; the case's
        # state and row are folded from the texts in clear.
        stored = await seal_case_events(conn, self._texts, events)
        envelopes = [
            Envelope.wrap(e, metadata, event_id=i) for e, i in zip(stored, ids, strict=True)
        ]
        result = await self._store.append(
            stream_of(case_id),
            envelopes,
            expected_version=before.version if before else NO_STREAM,
            conn=conn,
        )
        if result.duplicate and before is not None:
            # The very same events were stored by someone else (two scanners): nothing
            # was appended here, and the writer that did updated the row.
            return before
        after = fold(events, before)
        assert after is not None
        if before is None:
            assert facts is not None
            await insert_case(conn, after, facts, fingerprint)
        else:
            await update_case(conn, after)
        await add_links(conn, events)
        return after

    async def open_many(self, conn: Conn, cases: Sequence[NewCase]) -> list[CaseState]:
        """Open new cases in ``conn``: every stream appended in one round trip (each must
        not exist yet: a ``ConcurrencyError`` fails them all), every row in another, every
        link in one statement."""
        if not cases:
            return []
        # Every case's key in one statement with the others (the matched words).
        stored = await seal_case_events(conn, self._texts, [e for c in cases for e in c.events])
        sealed = iter(stored)
        await self._store.append_batch(
            [
                (
                    stream_of(case.events[0].case_id),
                    [Envelope.wrap(next(sealed), case.metadata, event_id=i) for i in case.ids],
                    NO_STREAM,
                )
                for case in cases
            ],
            conn=conn,
        )
        states: list[CaseState] = []
        for case in cases:
            state = fold(case.events, None)
            assert state is not None
            states.append(state)
        await insert_cases(
            conn,
            [(state, c.facts, c.fingerprint) for state, c in zip(states, cases, strict=True)],
        )
        await add_links(conn, [e for case in cases for e in case.events])
        return states
