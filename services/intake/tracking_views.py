"""What residents and Open311 clients see of an accepted opinion: where it stands, its
timeline in plain words, the ratings given. Pure: ``tracking.py`` reads the rows and
builds these; the edges write them as JSON, HTML or Open311 documents.

Two readers, two cuts of the same steps: the resident on their tracking page (a
capability URL) reads what was written for them; anyone reading Open311 reads only what
staff marked public (:func:`shown_note`). Staff's own notes reach neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.intake.opinion_record import OpinionRecord
from services.intake.progress import CLOSED_STAGES, CaseProgress, Names, Stage, Step

CHANNEL_WORDS: Final[dict[str, tuple[str, str]]] = {
    "qr": ("扫描民情码", "QR code"),
    "walk_in": ("到站当面反映", "in person at a station"),
    "spokesperson": ("群众代言员代为反映", "through a citizen spokesperson"),
    "visit": ("代表走访收集", "on a representative's visit"),
    "hotline_12345": ("12345热线派发", "dispatched by the 12345 hotline"),
    "online": ("网上提交", "online"),
    "open311": ("Open311 接口", "Open311"),
}


# --- plain words ----------------------------------------------------------------------

_LEVELS: dict[str, tuple[str, str]] = {
    "department": ("职能部门", "a department"),
    "station_head": ("站长", "the station head"),
    "street": ("街道", "the street"),
    "district": ("区级", "the district"),
}
_DEADLINES: dict[str, tuple[str, str]] = {
    "response": ("响应", "response"),
    "resolution": ("办结", "resolution"),
    "escalation": ("协办", "escalation"),
}


def _day(value: datetime | None, names: Names, lang: str) -> str:
    if value is None:
        return ""
    local = value.astimezone(names.timezone)
    return f"{local:%Y年%m月%d日}" if lang == "zh" else f"{local:%Y-%m-%d}"


RESIDENT_NOTES: Final = frozenset(
    {
        "CaseReplied",
        "CaseResolved",
        "CaseConvertedToSuggestion",
        "SuggestionAnswered",
        "CallbackRecorded",
    }
)
"""The steps whose text was written for the resident: a reply, a result, the title of
the suggestion their matter became and its answer, the rating a callback took down.
Every other text is staff's own (why a case was escalated, transferred, reopened or
closed; what a department reported) and is shown to nobody outside the workbench."""

PUBLIC_FACTS: Final = frozenset({"CallbackRecorded"})
"""Steps whose "text" is a fact the public feed carries anyway (a rating, ``4/5``)."""

NAMED_LEVELS: Final = frozenset({"department", "street", "district"})
"""Whistles whose addressee is a body (a department, a street committee, the district),
named on the timeline; a station head is a person, told by the role alone."""


def shown_note(step: Step, *, public: bool) -> str | None:
    """The step's text as its reader may see it: for the resident (``public`` false),
    only texts written for them; for anyone (Open311), only texts staff marked public."""
    if public:
        return step.note if step.public or step.kind in PUBLIC_FACTS else None
    return step.note if step.kind in RESIDENT_NOTES else None


def describe(step: Step, names: Names, *, public: bool = False) -> tuple[str, str]:
    """A step in plain words: (Simplified Chinese, English); for the resident's own
    tracking page, or with ``public`` for anyone (Open311)."""
    station = names.stations.get(step.station_code or "", step.station_code or "")
    rep = names.representatives.get(step.representative_id or "", "")
    note = shown_note(step, public=public)
    kind = step.kind
    if kind == "CaseOpened":
        zh, en = "已受理", "Taken up"
        category = names.categories.get(step.category_code or "")
        if category:
            zh += f"，归入「{category[0]}」类"
            en += f", filed under {category[1]!r}"
        if step.due:
            zh += f"，应于{_day(step.due, names, 'zh')}前办结"
            en += f"; due by {_day(step.due, names, 'en')}"
        return zh, en
    if kind == "CaseAssigned":
        if step.queue == "triage" or not station:
            return "正在分拣，将尽快分派到联络站", "Being sorted; it will soon go to a station"
        if rep:
            return (
                f"已分派至{station}，由{rep}代表办理",
                f"Assigned to {station}, handled by representative {rep}",
            )
        return (
            f"已分派至{station}，由联络员跟进",
            f"Assigned to {station}, followed up by its liaison officer",
        )
    if kind == "CaseAccepted":
        who = f"{rep}代表" if rep else (station or "承办人")
        who_en = f"Representative {rep}" if rep else (station or "The handler")
        return f"{who}已接手办理", f"{who_en} took the matter on"
    if kind == "CaseReplied":
        if note is None:
            return "已答复居民", "The resident was answered"
        return f"答复：{note}", f"Reply: {note}"
    if kind == "CaseEscalated":
        level_zh, level_en = _LEVELS.get(step.to_level or "", ("", ""))
        if step.to_level in NAMED_LEVELS and step.to_name:
            zh = f"已吹哨，请{level_zh}「{step.to_name}」协同办理"
            en = f"Whistle blown: {level_en} ({step.to_name}) summoned to help"
        else:
            zh = f"已吹哨，请{level_zh or '相关方面'}协同办理"
            en = f"Whistle blown: {level_en or 'others'} summoned to help"
        if step.due:
            zh += f"，{_day(step.due, names, 'zh')}前报到"
            en += f", due {_day(step.due, names, 'en')}"
        return zh, en
    if kind == "CaseTransferred":
        if step.to_district_id:
            district = names.districts.get(step.to_district_id, step.to_district_id)
            return f"已转交{district}办理", f"Transferred to {district}"
        target = station or "其他联络站"
        return f"已转交{target}办理", f"Transferred to {station or 'another station'}"
    if kind == "CaseResolved":
        if note is None:
            return "已办结", "Resolved"
        return f"已办结：{note}", f"Resolved: {note}"
    if kind == "CaseClosed":
        if step.withdrawn:
            return "已按您的要求撤回，不再办理", "Withdrawn at your request"
        return "已核实结项", "Verified and closed"
    if kind == "CaseClassified":
        category = names.categories.get(step.category_code or "")
        zh, en = "已调整分类", "Reclassified"
        if category:
            zh += f"为「{category[0]}」"
            en += f" as {category[1]!r}"
        if step.due:
            zh += f"，应于{_day(step.due, names, 'zh')}前办结"
            en += f"; due by {_day(step.due, names, 'en')}"
        return zh, en
    if kind == "CaseMerged":
        return "与已有的相同诉求合并办理", "Merged with an earlier report of the same matter"
    if kind == "CaseReopened":
        return "已重新办理", "Reopened"
    if kind == "CaseOverdue":
        zh_d, en_d = _DEADLINES.get(step.deadline or "", ("办理", "handling"))
        return f"{zh_d}时限已到，已督办", f"The {en_d} deadline passed; supervision was started"
    if kind == "CaseLinked":
        if step.relation in {"duplicate", "merged"}:
            return "与已有的相同诉求合并办理", "Merged with an earlier report of the same matter"
        return "与相关诉求一并办理", "Handled together with a related matter"
    if kind == "CaseConvertedToSuggestion":
        zh = f"已转为代表建议「{note}」" if note else "已转为代表建议"
        en = (
            f"Turned into a representative's suggestion: {note}"
            if note
            else ("Turned into a representative's suggestion")
        )
        if step.due:
            zh += f"，{_day(step.due, names, 'zh')}前答复"
            en += f", answer due {_day(step.due, names, 'en')}"
        return zh, en
    return _followed_up(step, note) or ("办理进展已更新", "Progress was updated")


def _followed_up(step: Step, note: str | None) -> tuple[str, str] | None:
    """The liaison work's steps in plain words (None: not one of them)."""
    if step.kind == "SuggestionAnswered":
        if note is None:
            return (
                f"代表建议已由{step.to_name}答复",
                f"The suggestion was answered by {step.to_name}",
            )
        return (
            f"代表建议已由{step.to_name}答复：{note}",
            f"The suggestion was answered by {step.to_name}: {note}",
        )
    if step.kind == "DepartmentReportedIn":
        return "职能部门已报到，正在处理", "The department reported in and is on it"
    if step.kind == "DepartmentResponded":
        # What the department did is its report to the station, which verifies it and
        # answers the resident itself: the words stay internal.
        return "职能部门已反馈处理情况", "The department reported what it did"
    if step.kind == "CallbackRecorded":
        return (
            f"工作人员已回访，记录满意度 {note}",
            f"Staff called you back and recorded a rating of {note}",
        )
    return None


def agency_responsible(progress: CaseProgress, names: Names) -> str | None:
    """The station and representative handling the case, for Open311."""
    station = names.stations.get(progress.station_code or "")
    rep = names.representatives.get(progress.representative_id or "")
    if station and rep:
        return f"{station}（{rep}代表）"
    return station or (f"{rep}代表" if rep else None)


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
