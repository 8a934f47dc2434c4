"""Deadlines counted down in working time, for people.

Pure: the district's :class:`~services.routing.deadlines.WorkCalendar` says which days
are worked and the office hours; the time comes in as ``now``. A deadline due on Monday
evening, looked at on Friday afternoon, is "1 working day 2 h" away, not three days:
nights, weekends and holidays do not count, as they do not count when the deadline is
set. Passed deadlines show how much working time has gone by since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.routing.deadlines import WorkCalendar

MAX_DAYS = 400
"""How far the count looks (a suggestion's reply is due within a year)."""


def working_time(calendar: WorkCalendar, start: datetime, end: datetime) -> timedelta:
    """Office time on working days between ``start`` and ``end`` (zero if ``end`` is not
    after ``start``)."""
    begin, finish = calendar.local(start), calendar.local(end)
    total = timedelta()
    day = begin.date()
    last = min(finish.date(), day + timedelta(days=MAX_DAYS))
    while day <= last:
        if calendar.working_day(day)[0]:
            opens = datetime.combine(day, calendar.opens, tzinfo=calendar.timezone)
            closes = datetime.combine(day, calendar.closes, tzinfo=calendar.timezone)
            low, high = max(opens, begin), min(closes, finish)
            if high > low:
                total += high - low
        day += timedelta(days=1)
    return total


def office_day(calendar: WorkCalendar) -> timedelta:
    """How long the office is open on a working day."""
    opens, closes = calendar.opens, calendar.closes
    return timedelta(hours=closes.hour - opens.hour, minutes=closes.minute - opens.minute)


@dataclass(frozen=True)
class Countdown:
    """How a deadline stands at a moment, in both languages."""

    overdue: bool
    zh: str
    en: str
    due_zh: str
    due_en: str
    urgency: str
    """``overdue``, ``soon`` (within one working day) or ``later``: the badge's colour."""


def _amount(calendar: WorkCalendar, span: timedelta) -> tuple[str, str]:
    office = office_day(calendar)
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, int(office.total_seconds() // 60))
    hours, mins = divmod(rest, 60)
    if days:
        zh = f"{days}个工作日" + (f"{hours}小时" if hours else "")
        en = f"{days} working day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")
    elif hours:
        zh = f"{hours}小时" + (f"{mins}分" if mins else "")
        en = f"{hours} h" + (f" {mins} min" if mins else "")
    else:
        zh, en = f"{mins}分钟", f"{mins} min"
    return zh, en


def countdown(calendar: WorkCalendar, now: datetime, due: datetime) -> Countdown:
    """Where ``due`` stands at ``now``: working time left, or gone by since it passed."""
    local = calendar.local(due)
    due_zh = f"{local.month}月{local.day}日 {local:%H:%M}"
    due_en = f"{local:%d %b %H:%M}"
    if due <= now:
        gone = working_time(calendar, due, now)
        zh, en = _amount(calendar, gone)
        if gone < timedelta(minutes=1):
            return Countdown(True, "已到期", "due now", due_zh, due_en, "overdue")
        return Countdown(True, f"已超期{zh}", f"{en} overdue", due_zh, due_en, "overdue")
    left = working_time(calendar, now, due)
    office = office_day(calendar)
    urgency = "soon" if left <= office else "later"
    if left < timedelta(minutes=1):
        # Due before the office opens again (an urgent matter in clock hours, at night).
        hours, mins = divmod(int((due - now).total_seconds() // 60), 60)
        zh = f"剩余{hours}小时{mins}分（非工作时间）"
        en = f"{hours} h {mins} min left (after hours)"
        return Countdown(False, zh, en, due_zh, due_en, "soon")
    zh, en = _amount(calendar, left)
    return Countdown(False, f"剩余{zh}", f"{en} left", due_zh, due_en, urgency)
