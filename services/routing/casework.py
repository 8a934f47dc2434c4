"""Staff work on cases: load, record missed deadlines, decide, save, in one transaction.

Every staff command (:mod:`services.routing.staff_commands`) runs through
:meth:`CaseWork.run`: the case is loaded in the caller's district (another district's
case is "not found"), refused early if its status does not allow the command, brought up
to date with the deadlines it missed by now, then the command's builder turns the request
into a domain command, :func:`~services.routing.domain.decide` gives the events, and the
case store appends and projects them. A lost race (another writer moved the stream) is
retried from a fresh read; with an ``Idempotency-Key``, a repeated request changes
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from contracts.base import Actor, ActorRole
from contracts.cases import CaseEvent
from contracts.envelope import Metadata
from eventkit.clock import Clock
from eventkit.db import Conn, scope
from eventkit.requests import RequestInfo
from eventkit.store import retrying
from services.routing.case_commands import Command
from services.routing.case_state import ALLOWED, CaseState, fold
from services.routing.case_store import LOST_RACES, CaseStore
from services.routing.district_context import DistrictContext, DistrictContexts
from services.routing.domain import IllegalTransition, decide, overdue_events
from services.routing.errors import CaseBusy, CaseNotFound
from services.routing.ids import event_ids

if TYPE_CHECKING:
    from services.routing.staff_commands import StaffCommand


@dataclass(frozen=True)
class Step:
    """The moment a command is built: its transaction, district, case, time and actor, and
    where a builder may look further (other cases, other districts)."""

    conn: Conn
    ctx: DistrictContext
    state: CaseState
    now: datetime
    actor: Actor
    cases: CaseStore
    districts: DistrictContexts


AfterSave = Callable[[Step, CaseState, list[CaseEvent]], Awaitable[None]]
"""Work on other streams in the same transaction, once the case's events are saved (the
case a merge goes into, the new case of a cross-district transfer)."""


@dataclass(frozen=True)
class Planned:
    """What a staff request asks of the case, and what else must happen with it."""

    command: Command
    after: AfterSave | None = None


Build = Callable[[Step], Awaitable[Planned]]


def visible_to(state: CaseState, actor: Actor, ctx: DistrictContext) -> bool:
    """Department staff see only the cases whistled to their department; everyone else
    as their role allows (checked by the routes)."""
    if actor.role is not ActorRole.DEPARTMENT:
        return True
    return bool(state.whistled_to(ctx.directory.departments_of(actor.id)))


class CaseWork:
    """Runs staff commands on cases (see the module's note)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cases: CaseStore,
        districts: DistrictContexts,
        clock: Clock,
        *,
        max_attempts: int = 6,
    ) -> None:
        self._pool = pool
        self._cases = cases
        self._districts = districts
        self._clock = clock
        self._max_attempts = max_attempts

    async def run(
        self,
        command: StaffCommand[Any],
        district_id: str,
        case_id: str,
        actor: Actor,
        body: Any,
        info: RequestInfo | None = None,
    ) -> CaseState:
        """Carry out ``command`` with its request ``body`` on a case of ``district_id``."""

        async def build(step: Step) -> Planned:
            return await command.build(step, body)

        return await self.execute(
            district_id, case_id, actor, build, name=command.name, info=info or RequestInfo()
        )

    async def execute(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        build: Build,
        *,
        name: str,
        info: RequestInfo,
    ) -> CaseState:
        """Run ``build`` on the case in one transaction; lost races are retried.

        ``name`` is the command's, so that a command the case's status does not allow is
        refused before anything else is checked.
        """
        source = f"{info.idempotency_key}:{case_id}" if info.idempotency_key else None
        metadata = Metadata(
            correlation_id=info.correlation_id, causation_id=source, traceparent=info.traceparent
        )

        async def attempt() -> CaseState:
            async with self._pool.acquire() as conn, conn.transaction():
                await scope(conn, district_id)
                state = await self._cases.load(conn, case_id)
                if state is None or state.district_id != district_id:
                    raise CaseNotFound(case_id)
                if source is not None and await self._cases.already_done(conn, source):
                    return state
                ctx = await self._districts.require(conn, district_id)
                if not visible_to(state, actor, ctx):
                    raise CaseNotFound(case_id)
                if state.status not in ALLOWED[name]:
                    raise IllegalTransition(name, state.status)
                now = self._clock()
                overdue = overdue_events(state, now, ctx.rules(state))
                current = fold(overdue, state)
                assert current is not None
                step = Step(conn, ctx, current, now, actor, self._cases, self._districts)
                planned = await build(step)
                events = [*overdue, *decide(current, planned.command)]
                saved = await self._cases.save(
                    conn,
                    state,
                    events,
                    event_ids(events, source or uuid.uuid4().hex, state.overdue_count),
                    metadata,
                )
                if planned.after is not None:
                    await planned.after(
                        Step(conn, ctx, saved, now, actor, self._cases, self._districts),
                        saved,
                        events,
                    )
                return saved

        try:
            return await retrying(attempt, on=LOST_RACES, attempts=self._max_attempts)
        except LOST_RACES as exc:
            raise CaseBusy() from exc

    async def decide_and_save(
        self,
        conn: Conn,
        ctx: DistrictContext,
        state: CaseState,
        command: Command,
        source: str,
        metadata: Metadata,
    ) -> CaseState:
        """Record the deadlines missed by the command's moment, then the command's events,
        in ``conn`` (for reactions to events, already inside a consumer's transaction)."""
        overdue = overdue_events(state, command.now, ctx.rules(state))
        current = fold(overdue, state)
        assert current is not None
        events = [*overdue, *decide(current, command)]
        return await self._cases.save(
            conn, state, events, event_ids(events, source, state.overdue_count), metadata
        )
