"""Routing's reactions to what residents do at intake: rate a resolution, withdraw.

Both arrive through the consumer runtime, inside its transaction (``conn``): the case's
events, its row and the consumer's version gate commit together, and the events' ids
derive from the intake event's id, so a redelivery changes nothing.
"""

from __future__ import annotations

from contracts.base import Actor, ActorRole
from contracts.envelope import Envelope, Metadata
from contracts.intake import FeedbackSubmitted, OpinionWithdrawn
from eventkit.clock import Clock
from eventkit.db import Conn, scope
from eventkit.logging import get_logger
from services.routing.case_commands import Reopen, Withdraw
from services.routing.case_projection import record_feedback
from services.routing.case_state import CaseState
from services.routing.case_store import CaseStore
from services.routing.casework import CaseWork
from services.routing.district_context import DistrictContexts
from services.routing.domain import IllegalTransition, StaleFeedback
from services.routing.errors import CaseNotFound
from services.routing.ids import case_id_for

log = get_logger(__name__)


def caused_by(envelope: Envelope) -> Metadata:
    """The metadata of events caused by ``envelope``: same correlation, it as the cause."""
    return Metadata(
        correlation_id=envelope.metadata.correlation_id or str(envelope.event_id),
        causation_id=str(envelope.event_id),
    )


class Reactions:
    """What routing does when a resident rates or withdraws (see the module's note)."""

    def __init__(
        self, cases: CaseStore, districts: DistrictContexts, work: CaseWork, clock: Clock
    ) -> None:
        self._cases = cases
        self._districts = districts
        self._work = work
        self._clock = clock

    async def on_feedback(
        self, feedback: FeedbackSubmitted, envelope: Envelope, conn: Conn
    ) -> None:
        """Record a rating; an unhappy or unsolved one reopens the case (same representative).

        The rated case may be the continuation of the opinion's case in another district
        (the resident's tracking link follows a transfer): it is reached by following the
        transfers from the opinion's case, and rated and reopened there, in its
        district's scope.
        """
        state = await self._cases.load(conn, feedback.case_id)
        if state is None:
            start = case_id_for(feedback.district_id, feedback.opinion_id)
            state = await self._follow_transfers(conn, start, until=feedback.case_id)
            if state is None or state.case_id != feedback.case_id:
                await scope(conn, envelope.district_id)
                raise CaseNotFound(feedback.case_id)
        elif state.district_id != feedback.district_id:
            raise CaseNotFound(feedback.case_id)
        try:
            await self._rate(state, feedback, envelope, conn)
        finally:
            if state.district_id != envelope.district_id:
                # Back to the event's district: the consumer goes on in the scope it set.
                await scope(conn, envelope.district_id)

    async def _follow_transfers(
        self, conn: Conn, case_id: str, *, until: str | None = None
    ) -> CaseState | None:
        """The last case of a chain of transfers from ``case_id`` (or the one named
        ``until`` on the way), left in its district's row-level security scope; None when
        ``case_id`` is unknown."""
        state = await self._cases.load(conn, case_id)
        if state is None:
            return None
        seen = {case_id}
        while state.case_id != until and state.transferred_to is not None:
            to_district_id, to_case_id = state.transferred_to
            if not to_case_id or to_case_id in seen:
                break
            # The case continues in another district: followed in that district's
            # row-level security scope (the consumer set the opinion's).
            await scope(conn, to_district_id or state.district_id)
            following = await self._cases.load(conn, to_case_id)
            if following is None:
                await scope(conn, state.district_id)
                break
            seen.add(to_case_id)
            state = following
        return state

    async def _rate(
        self, state: CaseState, feedback: FeedbackSubmitted, envelope: Envelope, conn: Conn
    ) -> None:
        await record_feedback(conn, feedback, district_id=state.district_id)
        if feedback.satisfaction > 2 and feedback.resolved:
            return
        ctx = await self._districts.require(conn, state.district_id)
        now = self._clock()
        reason = (
            f"居民评价不满意（满意度 {feedback.satisfaction}/5）"
            if feedback.satisfaction <= 2
            else "居民反映问题未解决"
        )
        if not feedback.resolved and feedback.satisfaction <= 2:
            reason += "，且问题未解决"
        reason += " / the resident is not satisfied or the matter is not solved"
        _, resolution = ctx.deadlines(state.category_code, state.priority, now)
        command = Reopen(
            actor=Actor(id=feedback.actor.id, role=ActorRole.RESIDENT),
            now=now,
            reason=reason,
            resolution_due=resolution,
            for_resolution=feedback.resolution_seq,
        )
        try:
            await self._work.decide_and_save(
                conn, ctx, state, command, str(envelope.event_id), caused_by(envelope)
            )
        except (StaleFeedback, IllegalTransition) as exc:
            log.info("feedback does not reopen the case", case_id=state.case_id, why=str(exc))

    async def on_withdrawn(
        self, withdrawn: OpinionWithdrawn, envelope: Envelope, conn: Conn
    ) -> None:
        """The resident withdrew the opinion: the case carrying it is closed, if still open.

        A case transferred to another district is followed there: the new case carries
        the work. A case merged into another is not followed: the case it was merged
        into carries other residents' opinions, so one withdrawal does not close it.
        """
        case_id = case_id_for(withdrawn.district_id, withdrawn.opinion_id)
        state = await self._follow_transfers(conn, case_id)
        if state is None:
            log.info("withdrawn opinion had no case", opinion_id=withdrawn.opinion_id)
            return
        await self._withdraw(state, withdrawn, envelope, conn)
        if state.district_id != envelope.district_id:
            # Back to the event's district: the consumer goes on in the scope it set.
            await scope(conn, envelope.district_id)

    async def _withdraw(
        self, state: CaseState, withdrawn: OpinionWithdrawn, envelope: Envelope, conn: Conn
    ) -> None:
        case_id = state.case_id
        if state.merged_into is not None:
            log.info("withdrawn opinion's case was merged", case_id=case_id)
            return
        ctx = await self._districts.require(conn, state.district_id)
        command = Withdraw(
            actor=Actor(id=withdrawn.actor.id, role=ActorRole.RESIDENT), now=self._clock()
        )
        try:
            await self._work.decide_and_save(
                conn, ctx, state, command, str(envelope.event_id), caused_by(envelope)
            )
        except IllegalTransition:
            log.info("withdrawn opinion's case is already done", case_id=case_id)
