"""The station's registers, "six books and one form" (六簿一表): what each holds, and its
rows built from the facts the register queries read.

Pure. Each register is a table with bilingual column headings (Chinese first); every cell
is a string or a number, the same for the page, the CSV and the JSON. No free text from
or about a resident: residents are counted, never named, and a case is shown by its
facts (docs/liaison.md, docs/metrics.md).

- 代表信息登记簿: the station's representatives;
- 主题活动登记簿, 学习培训登记簿, 接待选民登记簿: activities of those kinds;
- 代表建议办理登记簿: suggestions made from the station's cases;
- 代表履职登记簿: per representative, what they did (every kind of activity, cases);
- 选民意见反馈表: the cases received, with their handling and the rating they count with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

from services.reporting.labels import CHANNELS, LEVELS, STATUSES, Pair, label

Cell = str | int | None


@dataclass(frozen=True)
class HeldActivity:
    """An activity held at a station (an entry of the registers)."""

    activity_id: str
    station_code: str
    kind: str
    title: str
    held_on: date
    starts_at: time | None
    ends_at: time | None
    representatives: tuple[str, ...]
    spokespersons: tuple[str, ...]
    residents_met: int
    opinions_taken: int
    summary: str | None


@dataclass(frozen=True)
class Member:
    """A representative of a station, for the representative register (代表信息)."""

    representative_id: str
    name_zh: str
    level: str
    electoral_district: str | None
    leading_cadre: bool
    joined_at: datetime
    left_at: datetime | None
    active: bool


@dataclass(frozen=True)
class Suggestion:
    """A representative suggestion made from a case of the station (建议办理)."""

    case_id: str
    representative_id: str | None
    converted_at: datetime
    title: str | None
    reply_due: datetime | None
    answered_at: datetime | None
    answered_by: str | None
    status: str


@dataclass(frozen=True)
class Received:
    """A case received at the station, for the voters' feedback form (选民意见反馈表)."""

    case_id: str
    opened_at: datetime
    channel: str | None
    category_code: str | None
    community: str | None
    representative_id: str | None
    status: str
    first_response_at: datetime | None
    resolved_at: datetime | None
    satisfaction: int | None
    rating_source: str | None
    """``resident`` (their own feedback) or ``callback`` (taken down by staff)."""


@dataclass(frozen=True)
class Scans:
    """A station's QR page views and the opinions submitted from it over a period."""

    station_code: str
    scans: int
    opinions: int


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str


@dataclass(frozen=True)
class Register:
    """One register: its name in URLs and files, its titles, its columns."""

    name: str
    zh: str
    en: str
    columns: tuple[Column, ...]


def _columns(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


ACTIVITY_KINDS: Final[dict[str, Pair]] = {
    "theme": ("主题活动", "theme activity"),
    "training": ("学习培训", "study and training"),
    "inspection": ("调研视察", "inspection and survey"),
    "duty_report": ("述职评议", "duty report and review"),
    "reception": ("接待选民", "reception of residents"),
}

_ACTIVITY_COLUMNS = _columns(
    ("held_on", "日期", "date"),
    ("title", "活动名称", "title"),
    ("representatives", "参加代表", "representatives present"),
    ("count", "代表人数", "representatives"),
    ("residents", "参与群众（人）", "residents"),
    ("opinions", "收集意见（条）", "opinions taken"),
    ("summary", "活动内容", "what was done"),
)

REGISTERS: Final[dict[str, Register]] = {
    r.name: r
    for r in (
        Register(
            "representatives",
            "代表信息登记簿",
            "Register of representatives",
            _columns(
                ("name", "姓名", "name"),
                ("id", "代表编号", "id"),
                ("level", "代表层级", "level"),
                ("electoral_district", "选区", "electoral district"),
                ("leading_cadre", "领导干部代表", "leading cadre"),
                ("joined", "进站日期", "joined"),
                ("left", "离站日期", "left"),
                ("activities", "本期活动（次）", "activities"),
                ("receptions", "本期接待（次）", "receptions"),
            ),
        ),
        Register("theme", "主题活动登记簿", "Register of theme activities", _ACTIVITY_COLUMNS),
        Register("training", "学习培训登记簿", "Register of study and training", _ACTIVITY_COLUMNS),
        Register(
            "receptions",
            "接待选民登记簿",
            "Register of receptions of residents",
            _columns(
                ("held_on", "日期", "date"),
                ("hours", "时间", "hours"),
                ("title", "接待名称", "title"),
                ("representatives", "接待代表", "representatives"),
                ("residents", "接待群众（人）", "residents received"),
                ("opinions", "收集意见（条）", "opinions taken"),
                ("spokespersons", "群众代言员（人）", "spokespersons"),
                ("summary", "接待情况", "what was done"),
            ),
        ),
        Register(
            "suggestions",
            "代表建议办理登记簿",
            "Register of representatives' suggestions",
            _columns(
                ("converted", "提出日期", "made on"),
                ("case_id", "案件编号", "case"),
                ("representative", "提出代表", "representative"),
                ("title", "建议标题", "title"),
                ("reply_due", "答复期限", "reply due"),
                ("answered", "答复日期", "answered on"),
                ("answered_by", "承办单位", "answered by"),
                ("on_time", "按期答复", "on time"),
            ),
        ),
        Register(
            "duties",
            "代表履职登记簿",
            "Register of representatives' duties",
            _columns(
                ("name", "姓名", "name"),
                ("id", "代表编号", "id"),
                *((kind, f"{zh}（次）", en) for kind, (zh, en) in ACTIVITY_KINDS.items()),
                ("residents", "接触群众（人）", "residents met"),
                ("assigned", "分派案件（件）", "cases assigned"),
                ("resolved", "办结案件（件）", "cases resolved"),
                ("suggestions", "提出建议（件）", "suggestions made"),
            ),
        ),
        Register(
            "feedback",
            "选民意见反馈表",
            "Voters' feedback form",
            _columns(
                ("received", "受理日期", "received"),
                ("case_id", "案件编号", "case"),
                ("channel", "来源渠道", "channel"),
                ("category", "问题类别", "category"),
                ("community", "所在社区", "community"),
                ("representative", "承办代表", "representative"),
                ("status", "办理状态", "status"),
                ("responded", "首次答复", "first response"),
                ("resolved", "办结日期", "resolved"),
                ("satisfaction", "满意度", "satisfaction"),
                ("rated_by", "评价方式", "rated by"),
            ),
        ),
    )
}
"""The six books and the one form, in the order of the station's binder."""

KIND_OF: Final[dict[str, str]] = {
    "theme": "theme",
    "training": "training",
    "receptions": "reception",
}
"""The activity kind each activity register lists."""

RATED_BY: Final[dict[str, Pair]] = {
    "resident": ("居民评价", "the resident"),
    "callback": ("回访", "callback by staff"),
}


def _day(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return moment.astimezone(tz).date().isoformat() if moment is not None else None


def _hours(start: time | None, end: time | None) -> str | None:
    if start is None:
        return None
    return f"{start:%H:%M}–{end:%H:%M}" if end is not None else f"{start:%H:%M}"


def _names(ids: Sequence[str], names: Mapping[str, str]) -> str:
    return "、".join(names.get(i, i) for i in ids)


def representative_rows(
    members: Sequence[Member], activities: Sequence[HeldActivity], tz: ZoneInfo, lang: str
) -> list[list[Cell]]:
    """代表信息登记簿: each representative of the station in the period."""
    rows: list[list[Cell]] = []
    for m in members:
        attended = [a for a in activities if m.representative_id in a.representatives]
        level = label(LEVELS, m.level)
        rows.append(
            [
                m.name_zh,
                m.representative_id,
                level[0] if lang == "zh" else level[1],
                m.electoral_district,
                _yes(m.leading_cadre, lang),
                _day(m.joined_at, tz),
                _day(m.left_at, tz),
                len(attended),
                sum(a.kind == "reception" for a in attended),
            ]
        )
    return rows


def activity_rows(
    activities: Sequence[HeldActivity], kind: str, names: Mapping[str, str]
) -> list[list[Cell]]:
    """主题活动 / 学习培训 / 接待选民: the activities of ``kind``, in date order."""
    rows: list[list[Cell]] = []
    for a in activities:
        if a.kind != kind:
            continue
        if kind == "reception":
            rows.append(
                [
                    a.held_on.isoformat(),
                    _hours(a.starts_at, a.ends_at),
                    a.title,
                    _names(a.representatives, names),
                    a.residents_met,
                    a.opinions_taken,
                    len(a.spokespersons),
                    a.summary,
                ]
            )
        else:
            rows.append(
                [
                    a.held_on.isoformat(),
                    a.title,
                    _names(a.representatives, names),
                    len(a.representatives),
                    a.residents_met,
                    a.opinions_taken,
                    a.summary,
                ]
            )
    return rows


def suggestion_rows(
    found: Sequence[Suggestion], names: Mapping[str, str], tz: ZoneInfo, lang: str
) -> list[list[Cell]]:
    """代表建议办理登记簿: each suggestion with its answer (on time: answered by its due
    date; not yet answered and past it: late)."""
    rows: list[list[Cell]] = []
    for s in found:
        if s.answered_at is not None:
            on_time: bool | None = s.reply_due is None or s.answered_at <= s.reply_due
        else:
            on_time = None
        rows.append(
            [
                _day(s.converted_at, tz),
                s.case_id,
                names.get(s.representative_id or "", s.representative_id),
                s.title,
                _day(s.reply_due, tz),
                _day(s.answered_at, tz),
                s.answered_by,
                None if on_time is None else _yes(on_time, lang),
            ]
        )
    return rows


def duty_rows(
    members: Sequence[Member],
    activities: Sequence[HeldActivity],
    counts: Mapping[str, Mapping[str, int]],
) -> list[list[Cell]]:
    """代表履职登记簿: per representative, activities of every kind, residents met at
    them, and the cases they handled at the station."""
    rows: list[list[Cell]] = []
    for m in members:
        attended = [a for a in activities if m.representative_id in a.representatives]
        cases = counts.get(m.representative_id, {})
        rows.append(
            [
                m.name_zh,
                m.representative_id,
                *(sum(a.kind == kind for a in attended) for kind in ACTIVITY_KINDS),
                sum(a.residents_met for a in attended),
                cases.get("assigned", 0),
                cases.get("resolved", 0),
                cases.get("suggestions", 0),
            ]
        )
    return rows


def feedback_rows(
    found: Sequence[Received],
    names: Mapping[str, str],
    categories: Mapping[str, tuple[str, str | None]],
    tz: ZoneInfo,
    lang: str,
) -> list[list[Cell]]:
    """选民意见反馈表: each case received, by its facts (never the resident's words)."""
    rows: list[list[Cell]] = []
    zh = lang == "zh"
    for c in found:
        channel = label(CHANNELS, c.channel)
        status = label(STATUSES, c.status)
        category = categories.get(c.category_code or "")
        rated = RATED_BY.get(c.rating_source or "")
        rows.append(
            [
                _day(c.opened_at, tz),
                c.case_id,
                channel[0] if zh else channel[1],
                (category[0] if zh else (category[1] or category[0])) if category else None,
                c.community,
                names.get(c.representative_id or "", c.representative_id),
                status[0] if zh else status[1],
                _day(c.first_response_at, tz),
                _day(c.resolved_at, tz),
                c.satisfaction,
                (rated[0] if zh else rated[1]) if rated else None,
            ]
        )
    return rows


def _yes(value: bool, lang: str) -> str:
    if lang == "zh":
        return "是" if value else "否"
    return "yes" if value else "no"
