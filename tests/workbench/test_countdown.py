"""Deadlines counted down in working time (pure)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from services.routing.deadlines import WorkCalendar
from services.routing.workbench.countdown import countdown, working_time

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar(timezone=SHANGHAI, opens=time(9, 0), closes=time(17, 30))


def at(day: int, hour: int, minute: int = 0, month: int = 9) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def test_nights_weekends_and_holidays_do_not_count_and_make_up_days_do() -> None:
    # Friday 11 September 16:30 to Monday 14 September 10:00: an hour on each side.
    assert working_time(CALENDAR, at(11, 16, 30), at(14, 10)).total_seconds() == 2 * 3600
    # Friday 25 September 2026 is the Mid-Autumn Festival: only Monday's hour counts.
    assert working_time(CALENDAR, at(25, 16, 30), at(28, 10)).total_seconds() == 3600
    # Sunday 20 September is worked (National Day make-up day): a whole office day.
    assert working_time(CALENDAR, at(18, 16, 30), at(21, 10)).total_seconds() == 10.5 * 3600


def test_the_national_day_holiday_does_not_count_and_its_make_up_saturday_does() -> None:
    # 1 to 7 October 2026 are off, Saturday 10 October is worked: from Wednesday 30
    # September 17:30 to Saturday 10 October 17:30 there are the 8th, 9th and 10th.
    span = working_time(CALENDAR, at(30, 17, 30), at(10, 17, 30, month=10))
    assert span.total_seconds() == 3 * 8.5 * 3600


def test_a_deadline_shows_working_days_left_and_then_how_late_it_is() -> None:
    due = at(29, 17, 30)
    ahead = countdown(CALENDAR, at(28, 10), due)
    assert not ahead.overdue
    assert ahead.zh == "剩余1个工作日7小时"
    assert ahead.en == "1 working day 7 h left"
    assert ahead.urgency == "later"
    late = countdown(CALENDAR, at(30, 11), due)
    assert late.overdue
    assert late.zh == "已超期2小时"
    assert late.urgency == "overdue"


def test_an_urgent_deadline_at_night_counts_clock_time() -> None:
    due = at(28, 23)
    shown = countdown(CALENDAR, at(28, 20), due)
    assert shown.zh == "剩余3小时0分（非工作时间）"
    assert shown.urgency == "soon"
