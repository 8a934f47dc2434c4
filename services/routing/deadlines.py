"""Deadlines on the official working calendar, in the district's time zone.

Working days follow the State Council's holiday schedule as ``chinese-calendar`` knows
it, make-up working days (调休上班) included. That package knows only the years already
published; for a later year a deadline is still computed, from weekends plus the
district's own holiday file (``WorkCalendarPublished``), and flagged *provisional*
until the district marks that year ``complete``.

Rules (docs/routing.md explains why):

- ``Nwd`` working days: the day of receipt does not count; the deadline is the close of
  office on the N-th working day after it.
- ``Nwh`` working hours: counted inside office hours of working days only.
- ``Nh`` clock hours and ``Nd`` calendar days: plain time (urgent matters do not wait for
  Monday).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from contracts.directory import CalendarYear

Unit = Literal["h", "d", "wh", "wd"]
_ALLOWANCE = re.compile(r"^([1-9][0-9]{0,3})(h|d|wh|wd)$")
UNIT_ZH: dict[str, str] = {"h": "小时", "d": "天", "wh": "个工作小时", "wd": "个工作日"}


@dataclass(frozen=True, slots=True)
class Allowance:
    """A time allowance such as ``5wd`` (five working days)."""

    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Allowance:
        """``"5wd"`` → ``Allowance(5, "wd")``; ``ValueError`` for anything else."""
        match = _ALLOWANCE.match(text.strip())
        if match is None:
            raise ValueError(
                f"{text!r} is not an allowance such as 4h, 3d, 8wh or 5wd "
                "(clock hours, calendar days, working hours, working days)"
            )
        unit: Unit = match.group(2)  # type: ignore[assignment]
        return cls(int(match.group(1)), unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def zh(self) -> str:
        """``5个工作日``."""
        return f"{self.amount}{UNIT_ZH[self.unit]}"


@dataclass(frozen=True, slots=True)
class Due:
    """A computed deadline, and whether it rests on a guessed holiday schedule."""

    at: datetime
    provisional: bool = False


OfficialCalendar = Callable[[date], bool | None]
"""Whether a day is an official working day; None when its year is not published."""


@lru_cache(maxsize=8192)
def official_working_day(day: date) -> bool | None:
    """The State Council's answer for ``day`` (``chinese-calendar``), None if unknown."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class WorkCalendar:
    """Working days and office hours of one district.

    ``days_off`` and ``working_days`` come from the district's holiday file and take
    precedence over the official calendar (so a district can enter next year's schedule
    as soon as it is announced, before ``chinese-calendar`` ships it).
    """

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    complete_years: frozenset[int] = frozenset()
    official: OfficialCalendar = official_working_day

    @classmethod
    def from_years(
        cls,
        years: Iterable[CalendarYear],
        *,
        timezone: str = "Asia/Shanghai",
        opens: time = time(9, 0),
        closes: time = time(18, 0),
        official: OfficialCalendar = official_working_day,
    ) -> WorkCalendar:
        """A calendar from the entries of a district's holiday file."""
        years = list(years)
        if closes <= opens:
            raise ValueError("office hours must close after they open")
        return cls(
            timezone=ZoneInfo(timezone),
            opens=opens,
            closes=closes,
            days_off=frozenset(d for y in years for d in y.days_off),
            working_days=frozenset(d for y in years for d in y.working_days),
            complete_years=frozenset(y.year for y in years if y.complete),
            official=official,
        )

    def working_day(self, day: date) -> tuple[bool, bool]:
        """(is a working day, the answer is provisional)."""
        provisional = False
        if day in self.working_days:
            answer = True
        elif day in self.days_off:
            answer = False
        else:
            official = self.official(day)
            answer = day.weekday() < 5 if official is None else official
        if self.official(day) is None and day.year not in self.complete_years:
            provisional = True
        return answer, provisional

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the district's time zone."""
        if moment.tzinfo is None:
            raise ValueError("deadlines are computed from aware datetimes only")
        return moment.astimezone(self.timezone)

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.timezone)

    def add(self, start: datetime, allowance: Allowance | str) -> Due:
        """The deadline ``allowance`` after ``start``."""
        if isinstance(allowance, str):
            allowance = Allowance.parse(allowance)
        begin = self.local(start)
        if allowance.unit == "h":
            return Due(begin + timedelta(hours=allowance.amount))
        if allowance.unit == "d":
            return Due(self._at(begin.date() + timedelta(days=allowance.amount), begin.timetz()))
        if allowance.unit == "wd":
            return self._add_working_days(begin, allowance.amount)
        return self._add_working_hours(begin, allowance.amount)

    def _add_working_days(self, begin: datetime, count: int) -> Due:
        day = begin.date()
        provisional = False
        found = 0
        while found < count:
            day += timedelta(days=1)
            working, guessed = self.working_day(day)
            provisional |= guessed
            if working:
                found += 1
        return Due(self._at(day, self.closes), provisional)

    def _add_working_hours(self, begin: datetime, hours: int) -> Due:
        remaining = timedelta(hours=hours)
        cursor = begin.replace(tzinfo=None)
        provisional = False
        while True:
            day = cursor.date()
            working, guessed = self.working_day(day)
            provisional |= guessed
            if working:
                opens = datetime.combine(day, self.opens)
                closes = datetime.combine(day, self.closes)
                cursor = max(cursor, opens)
                if cursor < closes:
                    available = closes - cursor
                    if remaining <= available:
                        end = cursor + remaining
                        return Due(end.replace(tzinfo=self.timezone), provisional)
                    remaining -= available
            cursor = datetime.combine(day + timedelta(days=1), self.opens)

    def next_working_day(self, after: date) -> date:
        """The first working day after ``after``."""
        day = after + timedelta(days=1)
        while not self.working_day(day)[0]:
            day += timedelta(days=1)
        return day
