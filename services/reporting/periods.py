"""Periods in a district's time zone: days, months, weeks, and the period before.

Pure. A period is a run of whole local days, ``first_day`` to ``last_day`` inclusive;
it covers the instants ``[start, end)``, midnight to midnight in the district's zone
(Asia/Shanghai unless the district says otherwise). So "March" of a district in
Shanghai starts at 2026-02-28T16:00Z and a case recorded at 2026-03-31T23:30+08:00 is
March's, one recorded half an hour later April's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.reporting.errors import InvalidPeriod

DEFAULT_ZONE = "Asia/Shanghai"
MAX_DAYS = 3 * 366 + 1
"""The longest period asked for at once (three years)."""


def zone(name: str | None) -> ZoneInfo:
    """The district's time zone (Asia/Shanghai for an unknown or missing name)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


@dataclass(frozen=True)
class Period:
    """Whole local days of one district, ``first_day`` to ``last_day`` inclusive."""

    first_day: date
    last_day: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        """The first instant of the period."""
        return datetime.combine(self.first_day, time(), self.tz)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), self.tz)

    @property
    def days(self) -> int:
        """How many days the period has."""
        return (self.last_day - self.first_day).days + 1

    @property
    def is_month(self) -> bool:
        """Whether the period is exactly one calendar month."""
        return self.first_day.day == 1 and self.last_day == _month_end(self.first_day)

    def previous(self) -> Period:
        """The period just before, for comparisons: the previous month for a calendar
        month, otherwise as many days ending the day before."""
        if self.is_month:
            last = self.first_day - timedelta(days=1)
            return Period(last.replace(day=1), last, self.tz)
        last = self.first_day - timedelta(days=1)
        return Period(last - timedelta(days=self.days - 1), last, self.tz)

    def months(self) -> list[Period]:
        """The calendar months the period touches, each cut to the period."""
        out: list[Period] = []
        first = self.first_day
        while first <= self.last_day:
            last = min(_month_end(first), self.last_day)
            out.append(Period(first, last, self.tz))
            first = last + timedelta(days=1)
        return out

    def label(self, lang: str) -> str:
        """The period in words (``2026年3月`` or ``2026-03-01 – 2026-03-15``)."""
        if self.is_month:
            if lang == "zh":
                return f"{self.first_day.year}年{self.first_day.month}月"
            return f"{self.first_day:%B %Y}"
        if lang == "zh":
            return f"{_zh_day(self.first_day)}至{_zh_day(self.last_day)}"
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()}"


def _zh_day(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def month(text: str, tz: ZoneInfo) -> Period:
    """The period of a month written ``YYYY-MM``."""
    try:
        first = datetime.strptime(text, "%Y-%m").replace(tzinfo=tz).date()
    except ValueError as exc:
        raise InvalidPeriod(
            f"月份应写作 YYYY-MM，而不是 {text}", f"Write the month as YYYY-MM, not {text}"
        ) from exc
    return Period(first, _month_end(first), tz)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidPeriod(
            f"{name} 应写作 YYYY-MM-DD，而不是 {text}",
            f"Write {name} as YYYY-MM-DD, not {text}",
        ) from exc


def period(first: str | None, last: str | None, tz: ZoneInfo, now: datetime) -> Period:
    """The period of ``from``/``to`` (local dates, both included); by default this month
    up to today."""
    today = now.astimezone(tz).date()
    last_day = _day(last, "to") if last else today
    first_day = _day(first, "from") if first else last_day.replace(day=1)
    if first_day > last_day:
        raise InvalidPeriod("开始日期晚于结束日期", "from is after to")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise InvalidPeriod("统计期间不能超过三年", "A period cannot exceed three years")
    return Period(first_day, last_day, tz)
