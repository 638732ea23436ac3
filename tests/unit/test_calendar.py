"""The Moscow working-day calendar: holidays and transfers from the `holidays` library, the
override file, and deadlines counted from the day after receipt, ending at Moscow midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from privacy.calendar import (
    DEFAULT_OVERRIDES,
    MOSCOW,
    OVERRIDES_ENV,
    CalendarError,
    WorkCalendar,
    add_calendar_days,
    add_working_days,
    end_of_moscow_day,
    moscow_date,
    overrides_path,
    read_overrides,
    work_calendar,
)


def moscow(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MOSCOW).astimezone(UTC)


def deadline(year: int, month: int, day: int) -> datetime:
    """The end of a Moscow day, as the calendar returns it."""
    return datetime(year, month, day, 23, 59, 59, 999999, tzinfo=MOSCOW).astimezone(UTC)


@pytest.fixture
def calendar() -> WorkCalendar:
    return WorkCalendar()


def test_ten_working_days_from_the_friday_before_the_new_year_holidays(calendar):
    # given a request received on Friday 26 December 2025; Wednesday 31 December is a day off
    # (transferred from Sunday 5 January), 1-8 January 2026 are the New Year holidays and
    # Friday 9 January is a day off transferred from Saturday 3 January
    received = moscow(2025, 12, 26, 15, 30)

    # when ten working days are added
    due = calendar.add_working_days(received, 10)

    # then they are 29, 30 December and 12-16, 19-21 January: due at the end of 21 January
    assert due == deadline(2026, 1, 21)
    assert due.tzinfo is UTC
    assert due == datetime(2026, 1, 21, 20, 59, 59, 999999, tzinfo=UTC)
    counted = list(calendar.working_days(date(2025, 12, 26), 10))
    assert counted == [
        date(2025, 12, 29),
        date(2025, 12, 30),
        *(date(2026, 1, d) for d in (12, 13, 14, 15, 16, 19, 20, 21)),
    ]


def test_the_new_year_days_off_come_from_the_library(calendar):
    assert not calendar.is_working_day(date(2025, 12, 31))  # transferred from 5 January
    assert all(not calendar.is_working_day(date(2026, 1, d)) for d in range(1, 12))
    assert calendar.is_working_day(date(2026, 1, 12))


def test_a_saturday_worked_by_decree_counts_as_a_working_day(calendar):
    # given Saturday 1 November 2025, a working day (its day off moved to Monday 3 November),
    # and Tuesday 4 November, Unity Day
    assert calendar.is_working_day(date(2025, 11, 1))
    assert not calendar.is_working_day(date(2025, 11, 3))
    assert not calendar.is_working_day(date(2025, 11, 4))

    # when a request arrives on Friday 31 October and gets two working days
    due = calendar.add_working_days(moscow(2025, 10, 31), 2)

    # then Saturday 1 November is the first and Wednesday 5 November the second
    assert due == deadline(2025, 11, 5)
    assert calendar.add_working_days(moscow(2025, 10, 31), 1) == deadline(2025, 11, 1)


def test_an_ordinary_saturday_is_not_a_working_day(calendar):
    assert not calendar.is_working_day(date(2025, 11, 8))
    assert calendar.add_working_days(moscow(2025, 11, 7), 1) == deadline(2025, 11, 10)


def test_the_day_of_receipt_does_not_count_even_when_it_is_a_working_day(calendar):
    # Monday 2 February 2026: one working day later is Tuesday, not Monday itself
    assert calendar.add_working_days(moscow(2026, 2, 2, 9), 1) == deadline(2026, 2, 3)
    assert calendar.add_working_days(moscow(2026, 2, 2, 9), 0) == deadline(2026, 2, 2)


def test_the_day_of_receipt_is_the_moscow_date_not_the_utc_date(calendar):
    # 22:30 UTC on Friday 30 January 2026 is already Saturday 31 January in Moscow
    late_friday_utc = datetime(2026, 1, 30, 22, 30, tzinfo=UTC)
    assert moscow_date(late_friday_utc) == date(2026, 1, 31)
    # so the first working day after receipt is Monday 2 February, the second Tuesday
    assert calendar.add_working_days(late_friday_utc, 2) == deadline(2026, 2, 3)
    # while at 20:30 UTC it is still Friday in Moscow: Monday and Tuesday again, one earlier
    assert calendar.add_working_days(datetime(2026, 1, 30, 20, 30, tzinfo=UTC), 1) == deadline(
        2026, 2, 2
    )


def test_calendar_days_count_weekends_and_holidays_and_are_not_moved(calendar):
    # 30 days after 26 December 2025 is Sunday 25 January 2026: the deadline stays there
    assert calendar.add_calendar_days(moscow(2025, 12, 26), 30) == deadline(2026, 1, 25)


def test_a_deadline_is_the_last_instant_of_the_moscow_day():
    end = end_of_moscow_day(date(2026, 1, 21))
    assert end.astimezone(MOSCOW).date() == date(2026, 1, 21)
    assert (end + timedelta(microseconds=1)).astimezone(MOSCOW).date() == date(2026, 1, 22)


def test_negative_or_absurd_periods_are_refused(calendar):
    with pytest.raises(ValueError):
        calendar.add_working_days(moscow(2026, 1, 1), -1)
    with pytest.raises(ValueError):
        calendar.add_calendar_days(moscow(2026, 1, 1), 100_000)


def test_working_days_until_counts_working_days_after_today(calendar):
    start = moscow(2025, 12, 26)
    assert calendar.working_days_until(start, deadline(2026, 1, 21)) == 10
    assert calendar.working_days_until(start, deadline(2025, 12, 26)) == 0


# --- the override file --------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_override_adds_a_day_off_and_a_working_day(tmp_path):
    # given a decree the library does not know: Monday 12 January 2026 off, Saturday 17 worked
    path = _write(
        tmp_path,
        "days_off:\n  - {date: 2026-01-12, note: 'a later decree'}\n"
        "working_days:\n  - 2026-01-17\n",
    )
    calendar = WorkCalendar(read_overrides(path))

    # then the days flip, and the Friday-before-New-Year deadline moves accordingly
    assert not calendar.is_working_day(date(2026, 1, 12))
    assert calendar.is_working_day(date(2026, 1, 17))
    counted = list(calendar.working_days(date(2025, 12, 26), 10))
    assert date(2026, 1, 12) not in counted
    assert date(2026, 1, 17) in counted
    assert calendar.add_working_days(moscow(2025, 12, 26), 10) == deadline(2026, 1, 21)
    assert calendar.add_working_days(moscow(2025, 12, 26), 9) == deadline(2026, 1, 20)
    assert WorkCalendar().add_working_days(moscow(2025, 12, 26), 9) == deadline(2026, 1, 20)
    assert calendar.add_working_days(moscow(2025, 12, 26), 5) == deadline(2026, 1, 15)
    assert WorkCalendar().add_working_days(moscow(2025, 12, 26), 5) == deadline(2026, 1, 14)


def test_an_override_can_turn_a_library_holiday_into_a_working_day(tmp_path):
    calendar = WorkCalendar(read_overrides(_write(tmp_path, "working_days: [2026-01-09]\n")))
    assert calendar.is_working_day(date(2026, 1, 9))
    assert calendar.add_working_days(moscow(2025, 12, 26), 3) == deadline(2026, 1, 9)


def test_the_override_file_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    path = _write(tmp_path, "days_off: [2026-02-02]\n")
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    assert overrides_path() == DEFAULT_OVERRIDES
    assert work_calendar().is_working_day(date(2026, 2, 2))

    monkeypatch.setenv(OVERRIDES_ENV, str(path))
    assert overrides_path() == path
    assert not work_calendar().is_working_day(date(2026, 2, 2))
    assert add_working_days(moscow(2026, 1, 30), 1) == deadline(2026, 2, 3)
    assert add_calendar_days(moscow(2026, 1, 30), 3) == deadline(2026, 2, 2)

    other = tmp_path / "other.yaml"
    other.write_text("days_off: []\n")
    assert work_calendar(other).is_working_day(date(2026, 2, 2))


def test_an_edited_override_file_is_read_again(tmp_path):
    path = _write(tmp_path, "days_off: []\n")
    assert work_calendar(path).is_working_day(date(2026, 2, 3))
    path.write_text("days_off: [2026-02-03]\n# edited\n")
    assert not work_calendar(path).is_working_day(date(2026, 2, 3))


def test_the_packaged_override_file_is_valid_and_changes_nothing_known():
    overrides = read_overrides(DEFAULT_OVERRIDES)
    assert overrides.days_off == frozenset()
    assert overrides.working_days == frozenset()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("days_off: [2026-01-12]\nworking_days: [2026-01-12]\n", "both a day off and"),
        ("holidays: [2026-01-12]\n", "unknown keys"),
        ("days_off: [12.01.2026]\n", "YYYY-MM-DD"),
        ("days_off: 2026-01-12\n", "must be a list"),
        ("- 2026-01-12\n", "expected a mapping"),
        ("days_off: [2026-01-12\n", "not valid YAML"),
    ],
)
def test_a_malformed_override_file_is_an_error_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(CalendarError, match=message) as caught:
        read_overrides(path)
    assert str(path) in str(caught.value)


def test_a_missing_override_file_is_an_error(tmp_path):
    with pytest.raises(CalendarError, match="cannot be read"):
        work_calendar(tmp_path / "missing.yaml")
