"""A resident's rating of how a resolved case was handled: once per resolution. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from contracts import Actor, ActorRole, FeedbackSubmitted
from eventkit.refusals import FieldError
from services.intake.errors import InvalidSubmission, Refused
from services.intake.text import cleaned

COMMENT_MAX: Final = 1000


@dataclass(frozen=True)
class GiveFeedback:
    """A resident's rating of how a resolved case was handled."""

    satisfaction: int
    resolved: bool
    comment: str | None = None


@dataclass(frozen=True)
class FeedbackState:
    """What decides whether feedback may be given: the case and the ratings so far."""

    opinion_id: str
    district_id: str
    case_id: str | None
    resolved: bool
    """Whether the case currently stands resolved (or closed after a resolution)."""
    resolution_seq: int
    rated: frozenset[int] = field(default_factory=frozenset)
    """The resolutions already rated."""
    subject_id: str | None = None
    """The resident who submitted the opinion, when they left contact details."""


def check_feedback(command: GiveFeedback) -> GiveFeedback:
    """The feedback checked; :class:`InvalidSubmission` otherwise."""
    errors = []
    if not 1 <= command.satisfaction <= 5:
        errors.append(
            FieldError(
                "satisfaction",
                "invalid-satisfaction",
                "满意度请选择 1 到 5 分",
                "Satisfaction is rated from 1 to 5",
            )
        )
    comment = cleaned(command.comment)
    if comment is not None and len(comment) > COMMENT_MAX:
        errors.append(
            FieldError(
                "comment",
                "comment-too-long",
                f"评价内容最多 {COMMENT_MAX} 个字",
                f"The comment may have at most {COMMENT_MAX} characters",
            )
        )
    if errors:
        raise InvalidSubmission(errors)
    return GiveFeedback(command.satisfaction, command.resolved, comment)


def decide_feedback(
    state: FeedbackState, command: GiveFeedback, *, now: datetime
) -> FeedbackSubmitted:
    """The feedback event, once per resolution; :class:`Refused` otherwise."""
    command = check_feedback(command)
    if state.case_id is None or not state.resolved or state.resolution_seq < 1:
        raise Refused(
            "事项尚未办结，暂不能评价",
            "The matter is not resolved yet: feedback opens once it is",
            "办结后，您可以在此页面评价办理情况",
            "Once it is resolved you can rate how it was handled on this page",
            code="feedback-not-open",
        )
    if state.resolution_seq in state.rated:
        raise Refused(
            "您已评价过本次办理结果",
            "You have already rated this resolution",
            "每次办结只能评价一次；如问题再次出现，重新办理后可再次评价",
            "Each resolution can be rated once; if the matter is reopened and resolved "
            "again you can rate it again",
            code="feedback-already-given",
        )
    return FeedbackSubmitted(
        district_id=state.district_id,
        occurred_at=now,
        actor=Actor(id=state.subject_id or "anonymous", role=ActorRole.RESIDENT),
        opinion_id=state.opinion_id,
        case_id=state.case_id,
        resolution_seq=state.resolution_seq,
        satisfaction=command.satisfaction,
        resolved=command.resolved,
        comment=command.comment,
    )
