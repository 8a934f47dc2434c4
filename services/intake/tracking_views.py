"""What residents and Open311 clients see of an accepted opinion: where it stands, its
timeline in plain words, the ratings given. Pure: ``tracking.py`` reads the rows and
builds these; the edges write them as JSON, HTML or Open311 documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.intake.opinion_record import OpinionRecord
from services.intake.progress import CLOSED_STAGES, CaseProgress, Names, Stage, Step, describe

CHANNEL_WORDS: Final[dict[str, tuple[str, str]]] = {
    "qr": ("扫描民情码", "QR code"),
    "walk_in": ("到站当面反映", "in person at a station"),
    "spokesperson": ("群众代言员代为反映", "through a citizen spokesperson"),
    "visit": ("代表走访收集", "on a representative's visit"),
    "hotline_12345": ("12345热线派发", "dispatched by the 12345 hotline"),
    "online": ("网上提交", "online"),
    "open311": ("Open311 接口", "Open311"),
}


@dataclass(frozen=True)
class FeedbackGiven:
    """A rating the resident gave."""

    case_id: str
    resolution_seq: int
    satisfaction: int
    resolved: bool
    comment: str | None
    submitted_at: datetime


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline, in plain words."""

    at: datetime
    kind: str
    status: str
    text_zh: str
    text_en: str


def stage_of(opinion: OpinionRecord, progress: CaseProgress | None) -> Stage:
    """Where an opinion stands: its case's stage, or withdrawn before a case closed it."""
    stage = progress.stage if progress is not None else Stage.SUBMITTED
    if opinion.withdrawn_at is not None and stage not in CLOSED_STAGES:
        return Stage.WITHDRAWN
    return stage


def timeline(
    opinion: OpinionRecord,
    steps: Sequence[Step],
    feedback: Sequence[FeedbackGiven],
    names: Names,
) -> tuple[TimelineEntry, ...]:
    """Everything that happened to an opinion, oldest first: its submission, its case's
    steps, the resident's withdrawal and ratings."""
    channel_zh, channel_en = CHANNEL_WORDS.get(opinion.channel, (opinion.channel, opinion.channel))
    entries = [
        TimelineEntry(
            opinion.submitted_at,
            "Submitted",
            "open",
            f"已提交（{channel_zh}）",
            f"Submitted ({channel_en})",
        )
    ]
    for step in steps:
        zh, en = describe(step, names)
        entries.append(TimelineEntry(step.at, step.kind, step.status.value, zh, en))
    if opinion.withdrawn_at is not None:
        reason = f"：{opinion.withdraw_reason}" if opinion.withdraw_reason else ""
        reason_en = f": {opinion.withdraw_reason}" if opinion.withdraw_reason else ""
        entries.append(
            TimelineEntry(
                opinion.withdrawn_at,
                "OpinionWithdrawn",
                "closed",
                f"您已撤回此事项{reason}",
                f"You withdrew this matter{reason_en}",
            )
        )
    for given in feedback:
        verdict_zh = "问题已解决" if given.resolved else "问题未解决"
        verdict_en = "solved" if given.resolved else "not solved"
        entries.append(
            TimelineEntry(
                given.submitted_at,
                "FeedbackSubmitted",
                "closed" if given.resolved else "open",
                f"您已评价：满意度 {given.satisfaction}/5，{verdict_zh}",
                f"You rated it {given.satisfaction}/5, {verdict_en}",
            )
        )
    entries.sort(key=lambda e: e.at)
    return tuple(entries)


@dataclass(frozen=True)
class TrackingView:
    """Everything the tracking page shows."""

    opinion: OpinionRecord
    progress: CaseProgress | None
    entries: tuple[TimelineEntry, ...]
    feedback: tuple[FeedbackGiven, ...]
    station_name: str | None
    category: tuple[str, str] | None
    """The category's (name_zh, name_en): routing's, else the resident's choice."""
    names: Names

    @property
    def stage(self) -> Stage:
        """Where the matter stands."""
        return stage_of(self.opinion, self.progress)

    @property
    def withdrawal_open(self) -> bool:
        """Whether the resident may still withdraw the matter."""
        return self.opinion.withdrawn_at is None and self.stage not in CLOSED_STAGES

    @property
    def feedback_open(self) -> bool:
        """Whether a rating may be given now."""
        progress = self.progress
        return (
            progress is not None
            and progress.resolved
            and all(f.resolution_seq != progress.resolution_seq for f in self.feedback)
        )


@dataclass(frozen=True)
class RequestView:
    """An opinion and its latest case, as an Open311 service request."""

    opinion: OpinionRecord
    progress: CaseProgress | None

    @property
    def stage(self) -> Stage:
        """Where the request stands."""
        return stage_of(self.opinion, self.progress)

    @property
    def service_code(self) -> str | None:
        """The category routing gave it, else the one the resident chose."""
        return (self.progress.category_code if self.progress else None) or (
            self.opinion.category_hint
        )

    @property
    def updated_at(self) -> datetime:
        """When it last changed."""
        return self.progress.updated_at if self.progress else self.opinion.submitted_at
