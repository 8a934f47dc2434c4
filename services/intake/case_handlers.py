"""Following the cases routing opens for intake's opinions: one handler for every case
event on ``minqing.cases.v1``, run by the ``intake`` consumer in its transaction.

Routing's case events reference the opinion only through ``CaseOpened.opinion_id``;
the handler folds each event into the case's progress (``progress.evolve``) and keeps it
with the step it adds (``cases.py``).
"""

from __future__ import annotations

from typing import Final

from contracts import (
    CallbackRecorded,
    CaseAccepted,
    CaseAssigned,
    CaseClassified,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseLinked,
    CaseMerged,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    DepartmentReportedIn,
    DepartmentResponded,
    SuggestionAnswered,
)
from contracts.cases import CaseEvent
from eventkit.consumer import Consumer, HandlerContext, PermanentError
from services.intake.cases import progress_of, save_step
from services.intake.progress import NotOpened, evolve

CASE_EVENTS: Final[tuple[type[CaseEvent], ...]] = (
    CaseOpened,
    CaseClassified,
    CaseMerged,
    CaseAssigned,
    CaseAccepted,
    CaseTransferred,
    CaseEscalated,
    CaseReplied,
    CaseResolved,
    CaseClosed,
    CaseReopened,
    CaseOverdue,
    CaseLinked,
    CaseConvertedToSuggestion,
    SuggestionAnswered,
    DepartmentReportedIn,
    DepartmentResponded,
    CallbackRecorded,
)
"""The case events a resident's tracking page follows (a department's rating stays
internal)."""


async def _on_case_event(event: CaseEvent, ctx: HandlerContext) -> None:
    before = await progress_of(ctx.conn, event.case_id)
    try:
        progress, step = evolve(before, event, str(ctx.envelope.event_id))
    except NotOpened as exc:
        raise PermanentError(str(exc)) from exc
    await save_step(ctx.conn, progress, step, ctx.envelope)


def register_case_handlers(consumer: Consumer) -> None:
    """Teach ``consumer`` to follow every case event."""
    for model in CASE_EVENTS:
        consumer.handles(model)(_on_case_event)
