"""A resident taking their opinion back: once, and only while it is not handled. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contracts import Actor, ActorRole, OpinionWithdrawn
from eventkit.refusals import FieldError
from services.intake.errors import InvalidSubmission, Refused
from services.intake.text import cleaned

REASON_MAX: Final = 500


@dataclass(frozen=True)
class WithdrawalState:
    """What decides whether a resident may still withdraw their opinion."""

    opinion_id: str
    district_id: str
    withdrawn: bool
    finished: bool
    """Whether the case was already resolved, closed, merged or sent to another district."""
    subject_id: str | None = None


def decide_withdrawal(
    state: WithdrawalState, reason: str | None, *, now: datetime
) -> OpinionWithdrawn:
    """The resident takes the opinion back, while it is not handled yet."""
    reason = cleaned(reason)
    if reason is not None and len(reason) > REASON_MAX:
        raise InvalidSubmission(
            [
                FieldError(
                    "reason",
                    "reason-too-long",
                    f"撤回原因最多 {REASON_MAX} 个字",
                    f"The reason may have at most {REASON_MAX} characters",
                )
            ]
        )
    if state.withdrawn:
        raise Refused(
            "此事项已撤回",
            "This matter was already withdrawn",
            code="already-withdrawn",
        )
    if state.finished:
        raise Refused(
            "事项已办结，不能撤回",
            "The matter is already handled: it can no longer be withdrawn",
            "如对结果不满意，请在本页评价，说明问题未解决",
            "If you are not satisfied, rate the result on this page and say it is not solved",
            code="withdraw-too-late",
        )
    return OpinionWithdrawn(
        district_id=state.district_id,
        occurred_at=now,
        actor=Actor(id=state.subject_id or "anonymous", role=ActorRole.RESIDENT),
        opinion_id=state.opinion_id,
        reason=reason,
    )
