"""The Moscow working-day calendar behind the legal deadlines of data subject requests.

Public holidays, the days off they are transferred to and the Saturdays made working days by
government decree come from the maintained `holidays` library (`country_holidays("RU")`: its
entries are days off, its `weekend_workdays` the weekend days that are worked). A decree
published after the installed library release goes into an override file (YAML, see
`calendar_overrides.yaml` beside this module) listing extra days off and extra working days; the
file is chosen by argument, else by the environment variable LOYALGRAPH_CALENDAR_OVERRIDES, else
the packaged default. An override wins over the library for the dates it names.

Counting rule (152-FZ has no counting rule of its own, so the Civil Code's applies: art. 191, a
period starts on the day after the event that begins it). A request received on day D (its
date in Moscow, whatever the UTC time) is answered within N working days when the answer goes out
by the end of the N-th working day after D; D itself does not count, even when it is a working
day. Calendar-day periods count the same way: N days after D. Deadlines are returned as aware
UTC datetimes at the end of that Moscow day (23:59:59.999999 Europe/Moscow): a deadline is an
instant, comparable with `utcnow()`, never a bare date.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import yaml

from core.clock import as_utc

MOSCOW = ZoneInfo("Europe/Moscow")
OVERRIDES_ENV = "LOYALGRAPH_CALENDAR_OVERRIDES"
DEFAULT_OVERRIDES = Path(__file__).with_name("calendar_overrides.yaml")
END_OF_DAY = time(23, 59, 59, 999999)
# No legal period here is longer than a few months; a count past this is a caller's mistake.
MAX_DAYS = 3660


class CalendarError(ValueError):
    """The override file is missing, unreadable or malformed (the message names the problem)."""


@dataclass(frozen=True, slots=True)
class Overrides:
    """Corrections to the library's calendar: dates that are days off, dates that are worked."""

    days_off: frozenset[date] = field(default_factory=frozenset)
    working_days: frozenset[date] = field(default_factory=frozenset)
    source: str = "none"


def _dates(raw: Any, key: str, path: Path) -> frozenset[date]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise CalendarError(f"{path}: `{key}` must be a list of dates")
    found: set[date] = set()
    for item in raw:
        value = item.get("date") if isinstance(item, dict) else item
        if isinstance(value, datetime) or not isinstance(value, date):
            raise CalendarError(
                f"{path}: `{key}` holds {value!r}; write dates as YYYY-MM-DD"
                " (or as {{date: YYYY-MM-DD, note: ...}})"
            )
        found.add(value)
    return frozenset(found)


def read_overrides(path: Path) -> Overrides:
    """Parse an override file: `days_off` and `working_days`, each a list of dates (a bare
    `YYYY-MM-DD` or `{date: YYYY-MM-DD, note: "the decree"}`). A date in both lists, an unknown
    key or a value that is not a date is an error naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CalendarError(f"calendar overrides {path} cannot be read: {error}") from None
    except yaml.YAMLError as error:
        raise CalendarError(f"calendar overrides {path} are not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CalendarError(f"{path}: expected a mapping with `days_off` and `working_days`")
    unknown = set(data) - {"days_off", "working_days"}
    if unknown:
        raise CalendarError(f"{path}: unknown keys {sorted(map(str, unknown))}")
    days_off = _dates(data.get("days_off"), "days_off", path)
    working = _dates(data.get("working_days"), "working_days", path)
    both = days_off & working
    if both:
        listed = ", ".join(day.isoformat() for day in sorted(both))
        raise CalendarError(f"{path}: {listed} is both a day off and a working day")
    return Overrides(days_off=days_off, working_days=working, source=str(path))


def overrides_path(path: Path | str | None = None) -> Path:
    """The override file in effect: the argument, else $LOYALGRAPH_CALENDAR_OVERRIDES, else the
    packaged default."""
    if path is not None:
        return Path(path)
    configured = os.environ.get(OVERRIDES_ENV)
    return Path(configured) if configured else DEFAULT_OVERRIDES


class WorkCalendar:
    """Moscow working days: Monday to Friday, minus public holidays and transferred days off,
    plus the weekend days worked by decree, with the overrides applied last."""

    def __init__(self, overrides: Overrides | None = None) -> None:
        self.overrides = overrides or Overrides()
        self._library = holidays.country_holidays("RU")

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides.days_off:
            return False
        if day in self.overrides.working_days:
            return True
        # Asking `in` first makes the library populate the year (holidays and weekend_workdays).
        holiday = day in self._library
        if day.weekday() >= 5:
            return day in self._library.weekend_workdays
        return not holiday

    def working_days(self, after: date, count: int) -> Iterable[date]:
        """The first `count` working days strictly after `after`."""
        day, found = after, 0
        while found < count:
            day += timedelta(days=1)
            if self.is_working_day(day):
                found += 1
                yield day

    def nth_working_day_after(self, day: date, n: int) -> date:
        _check_count(n)
        found = list(self.working_days(day, n))
        return found[-1] if found else day

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The deadline N working days after the Moscow date of `start` (152-FZ art. 20 parts 1
        and 3, art. 21 part 2: periods "in working days"); the day of receipt does not count
        (Civil Code art. 191). Returned as the end of that Moscow day, in UTC."""
        return end_of_moscow_day(self.nth_working_day_after(moscow_date(start), n))

    def add_calendar_days(self, start: datetime, n: int) -> datetime:
        """The deadline N calendar days after the Moscow date of `start` (152-FZ art. 21 parts 4
        and 5: "within thirty days"). A last day that falls on a day off is not moved to the next
        working day: the stricter reading, so the deadline is never later than the law's."""
        _check_count(n)
        return end_of_moscow_day(moscow_date(start) + timedelta(days=n))

    def working_days_until(self, start: datetime, deadline: datetime) -> int:
        """How many working days after the Moscow date of `start` fall on or before the
        deadline's Moscow date (0 when the deadline is that day or earlier)."""
        first, last = moscow_date(start), moscow_date(deadline)
        count, day = 0, first
        while day < last:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count


def _check_count(n: int) -> None:
    if not 0 <= n <= MAX_DAYS:
        raise ValueError(f"a period must be 0-{MAX_DAYS} days, not {n}")


def moscow_date(at: datetime) -> date:
    """The date in Moscow at an instant (a naive datetime is taken as UTC)."""
    return as_utc(at).astimezone(MOSCOW).date()


def end_of_moscow_day(day: date) -> datetime:
    """23:59:59.999999 in Moscow on `day`, as an aware UTC datetime."""
    return datetime.combine(day, END_OF_DAY, tzinfo=MOSCOW).astimezone(UTC)


@lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> WorkCalendar:
    return WorkCalendar(read_overrides(Path(path)))


def work_calendar(path: Path | str | None = None) -> WorkCalendar:
    """The calendar with the override file in effect (see `overrides_path`); rebuilt when the
    file changes (its modification time or size), so a corrected file is used without a
    restart."""
    resolved = overrides_path(path)
    try:
        stat = resolved.stat()
    except OSError as error:
        raise CalendarError(f"calendar overrides {resolved} cannot be read: {error}") from None
    return _cached(str(resolved), stat.st_mtime_ns, stat.st_size)


def add_working_days(start: datetime, n: int, *, calendar: WorkCalendar | None = None) -> datetime:
    """`WorkCalendar.add_working_days` on the calendar in effect (see `work_calendar`)."""
    return (calendar or work_calendar()).add_working_days(start, n)


def add_calendar_days(start: datetime, n: int, *, calendar: WorkCalendar | None = None) -> datetime:
    """`WorkCalendar.add_calendar_days` on the calendar in effect (see `work_calendar`)."""
    return (calendar or work_calendar()).add_calendar_days(start, n)
