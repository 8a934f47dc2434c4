"""Deadlines on the official working calendar (unit tests, no I/O)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from contracts.directory import CalendarYear
from services.routing.deadlines import Allowance, Due, WorkCalendar, official_working_day
from tests.routing.routing_support import SHANGHAI

CALENDAR = WorkCalendar.from_years((), closes=time(17, 30))


def official_until_2026(day: date) -> bool | None:
    """The official calendar as if nothing after 2026 were published (whatever the
    installed chinese-calendar knows)."""
    return official_working_day(day) if day.year <= 2026 else None


UNPUBLISHED_2027 = WorkCalendar.from_years((), closes=time(17, 30), official=official_until_2026)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def test_the_2026_national_day_week_and_its_make_up_saturday_come_from_the_official_data() -> None:
    assert [official_working_day(date(2026, 10, d)) for d in range(1, 12)] == [
        False,  # 1 Thu: National Day
        False,
        False,
        False,
        False,
        False,
        False,  # 7 Wed: last day off
        True,  # 8 Thu
        True,  # 9 Fri
        True,  # 10 Sat: make-up working day (调休上班)
        False,  # 11 Sun
    ]


@pytest.mark.parametrize(
    ("allowance", "due"),
    [
        ("1wd", at(2026, 10, 8, 17, 30)),  # the week off is skipped
        ("2wd", at(2026, 10, 9, 17, 30)),
        ("3wd", at(2026, 10, 10, 17, 30)),  # the make-up Saturday counts
        ("4wd", at(2026, 10, 12, 17, 30)),  # Sunday 11 does not
        ("5wd", at(2026, 10, 13, 17, 30)),
    ],
)
def test_working_days_from_the_eve_of_national_day_skip_the_holiday_and_count_the_make_up_day(
    allowance: str, due: datetime
) -> None:
    # Received Wednesday 30 September 2026 at 10:00; the day of receipt does not count.
    assert CALENDAR.add(at(2026, 9, 30, 10, 0), allowance) == Due(due, provisional=False)


def test_the_national_day_make_up_sunday_in_september_is_a_working_day() -> None:
    # Friday 18 September 2026 + 1 working day: Saturday 19 is off, Sunday 20 is worked
    # (调休上班 for the National Day holiday).
    assert CALENDAR.add(at(2026, 9, 18, 15, 0), "1wd").at == at(2026, 9, 20, 17, 30)


def test_working_hours_count_only_office_hours_of_working_days() -> None:
    # 16:00 on 30 Sep: 1.5 h that day, then the holiday week, then 8 Oct from 09:00.
    assert CALENDAR.add(at(2026, 9, 30, 16, 0), "4wh").at == at(2026, 10, 8, 11, 30)
    # Before opening: counting starts at 09:00.
    assert CALENDAR.add(at(2026, 10, 9, 7, 0), "2wh").at == at(2026, 10, 9, 11, 0)
    # Exactly filling a day ends at its close.
    assert CALENDAR.add(at(2026, 10, 9, 9, 0), "8wh").at == at(2026, 10, 9, 17, 0)


def test_clock_hours_and_calendar_days_ignore_holidays() -> None:
    assert CALENDAR.add(at(2026, 10, 1, 23, 0), "2h").at == at(2026, 10, 2, 1, 0)
    assert CALENDAR.add(at(2026, 10, 1, 9, 15), "3d").at == at(2026, 10, 4, 9, 15)


def test_a_deadline_in_a_year_without_official_data_is_computed_from_weekends_and_provisional() -> (
    None
):
    assert UNPUBLISHED_2027.official(date(2027, 1, 4)) is None

    due = UNPUBLISHED_2027.add(at(2026, 12, 30, 10, 0), "5wd")

    # 31 Dec, then Fri 1 Jan (a weekday: nothing says it is off), Mon 4, Tue 5, Wed 6.
    assert due == Due(at(2027, 1, 6, 17, 30), provisional=True)


def test_the_districts_holiday_file_fills_in_an_unpublished_year() -> None:
    year = CalendarYear(
        year=2027,
        days_off=[date(2027, 1, 1)],
        working_days=[date(2027, 1, 9)],  # a make-up Saturday
    )
    calendar = WorkCalendar.from_years([year], closes=time(17, 30), official=official_until_2026)

    due = calendar.add(at(2026, 12, 30, 10, 0), "5wd")

    # 31 Dec, (1 Jan off), Mon 4, Tue 5, Wed 6, Thu 7.
    assert due == Due(at(2027, 1, 7, 17, 30), provisional=True)
    assert calendar.add(at(2027, 1, 8, 10, 0), "1wd").at == at(2027, 1, 9, 17, 30)


def test_a_year_the_district_marked_complete_is_not_provisional() -> None:
    year = CalendarYear(year=2027, complete=True, days_off=[date(2027, 1, 1)])
    calendar = WorkCalendar.from_years([year], closes=time(17, 30), official=official_until_2026)

    assert calendar.add(at(2026, 12, 30, 10, 0), "5wd") == Due(at(2027, 1, 7, 17, 30), False)


def test_a_deadline_inside_a_known_year_is_not_provisional_even_near_its_end() -> None:
    assert CALENDAR.add(at(2026, 12, 28, 10, 0), "2wd").provisional is False


def test_deadlines_are_computed_in_the_districts_time_zone() -> None:
    urumqi = WorkCalendar.from_years((), timezone="Asia/Urumqi", closes=time(19, 0))

    due = urumqi.add(datetime(2026, 10, 9, 1, 0, tzinfo=SHANGHAI), "1wd")

    # 01:00 in Shanghai is 23:00 the day before in Urumqi (UTC+6): the 8th counts as the
    # day of receipt, so the deadline is the close of office on Friday the 9th, local.
    assert due.at == datetime(2026, 10, 9, 19, 0, tzinfo=urumqi.timezone)
    assert due.at.utcoffset() is not None
    assert due.at.astimezone(SHANGHAI) == at(2026, 10, 9, 21, 0)


@pytest.mark.parametrize("text", ["", "5", "0wd", "5 wd", "5w", "2.5h", "10000h", "-1d"])
def test_an_allowance_that_is_not_understood_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="allowance"):
        Allowance.parse(text)


def test_an_allowance_reads_back_in_chinese() -> None:
    assert Allowance.parse("5wd").zh == "5个工作日"
    assert str(Allowance.parse("8wh")) == "8wh"


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CALENDAR.add(datetime(2026, 10, 9, 9, 0), "1wd")  # noqa: DTZ001 - naive on purpose
