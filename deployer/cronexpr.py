"""Cron expressions as Cloud Scheduler reads them (unix-cron, five fields) and their fire
times in an IANA time zone.

croniter, which computes the fire times, also accepts extensions Cloud Scheduler refuses
(`L`, `#`, `?`, `R`, seconds and year fields), so the syntax is checked here first, field
by field, against cloud.google.com/scheduler/docs/configuring/cron-job-schedules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from .errors import ValidationError

_FORMAT_HINT = (
    "expected five unix-cron fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'; "
    "each a list of values, ranges (1-5) or steps (*/15, 1-30/5); months JAN-DEC, days SUN-SAT"
)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i

    def value(self, token: str) -> int | None:
        if token.isdigit():
            number = int(token)
            return number if self.low <= number <= self.high else None
        upper = token.upper()
        return self.low + self.names.index(upper) if upper in self.names else None


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _DAYS),  # 0 and 7 are both Sunday
)
_ITEM = re.compile(r"(?:\*|(?P<first>[0-9A-Za-z]+)(?:-(?P<last>[0-9A-Za-z]+))?)(?:/(?P<step>[0-9]+))?")
# Days each month can have (29 in February: leap years).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def check_cron(expr: str) -> str:
    """Return the expression normalised to single spaces, or raise ValidationError: it must
    be unix-cron as Cloud Scheduler accepts it, and fire at least once."""
    normalised = " ".join(str(expr).split())
    parts = normalised.split(" ")
    if len(parts) != len(_FIELDS):
        raise _invalid(expr, f"it has {len(parts) if normalised else 0} fields, not 5")
    for field, part in zip(_FIELDS, parts):
        problem = _field_problem(field, part)
        if problem:
            raise _invalid(expr, f"{field.name} {part!r}: {problem}")
    if _never_fires(parts):
        raise ValidationError(
            f"cron expression {expr!r} never fires: no month it names has that day",
            details="e.g. day 30 or 31 of February, or day 31 of a 30-day month",
        )
    return normalised


def next_fire_times(
    expr: str,
    time_zone: str,
    after: datetime,
    count: int = 3,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[datetime]:
    """Up to `count` firings strictly after `after`, in the schedule's time zone, inside the
    window [start, end) that the function honours (start_time / end_time). Never raises for a
    checked expression: a schedule with no firing left gives fewer times, or none."""
    if start and start > after:
        after = start - timedelta(microseconds=1)  # a firing exactly at `start` counts
    times = []
    for moment in _firings(expr, after.astimezone(ZoneInfo(time_zone))):
        if len(times) == count or (end and moment >= end):
            break
        times.append(moment)
    return times


def _firings(expr: str, start: datetime) -> Iterator[datetime]:
    it = croniter(expr, start)
    while True:
        try:
            yield it.get_next(datetime)
        except CroniterBadDateError:  # croniter found no date within its search horizon
            return


def _field_problem(field: _Field, part: str) -> str | None:
    for item in part.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            return f"{item!r} is not a value, a range or a step"
        first, last, step = match["first"], match["last"], match["step"]
        if step is not None and (step == "0" or (first is not None and last is None)):
            return f"{item!r}: a step needs * or a range before it and must be at least 1"
        bounds = [field.value(token) for token in (first, last) if token is not None]
        if None in bounds:
            allowed = f"{field.low}-{field.high}" + (f" or {field.names[0]}-{field.names[-1]}" if field.names else "")
            return f"{item!r} is outside {allowed}"
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f"the range {item!r} runs backwards"
    return None


def _never_fires(parts: list[str]) -> bool:
    """True when no day of any named month matches. Only possible when the day of week is
    `*`: otherwise the two day fields are OR-ed and the day-of-week ones always come."""
    _, _, days, months, weekdays = parts
    if weekdays != "*" or days == "*":
        return False
    expanded = croniter(" ".join(parts)).expanded
    if expanded[2] == ["*"]:  # e.g. */1
        return False
    month_numbers = range(1, 13) if expanded[3] == ["*"] else expanded[3]
    return min(expanded[2]) > max(_MONTH_DAYS[month - 1] for month in month_numbers)


def _invalid(expr: str, problem: str) -> ValidationError:
    return ValidationError(f"invalid cron expression {expr!r}: {problem}", details=_FORMAT_HINT)
