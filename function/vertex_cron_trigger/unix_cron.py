"""Unix-cron syntax as Cloud Scheduler takes it: five fields, nothing else.

croniter, which computes fire times, also accepts extensions Cloud Scheduler refuses (`L`,
`#`, `?`, `R`/`H` random fields, seconds and year fields); `R` and `H` would even make a
firing's logical time, and so its job id, random. Both the deployer and the function check
an expression here first, field by field, against
cloud.google.com/scheduler/docs/configuring/cron-job-schedules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORMAT_HINT = (
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


def syntax_problem(expr: str) -> str | None:
    """What makes `expr` (fields separated by single spaces) not unix-cron, or None."""
    parts = expr.split(" ") if expr else []
    if len(parts) != len(_FIELDS):
        return f"it has {len(parts)} fields, not 5"
    for field, part in zip(_FIELDS, parts, strict=True):
        problem = _field_problem(field, part)
        if problem:
            return f"{field.name} {part!r}: {problem}"
    return None


def never_fires(expr: str) -> bool:
    """True when no day of any named month matches (`expr` passed syntax_problem). Only
    possible when the day of week is `*`: otherwise the two day fields are OR-ed and the
    day-of-week ones always come."""
    _, _, days, _, weekdays = expr.split(" ")
    if weekdays != "*" or days == "*":
        return False
    from croniter import croniter  # lazily: the function imports it only for manual calls

    expanded = croniter(expr).expanded
    if expanded[2] == ["*"]:  # e.g. */1
        return False
    month_numbers = range(1, 13) if expanded[3] == ["*"] else expanded[3]
    return min(expanded[2]) > max(_MONTH_DAYS[month - 1] for month in month_numbers)


def _field_problem(field: _Field, part: str) -> str | None:
    for item in part.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            return f"{item!r} is not a value, a range or a step"
        first, last, step = match["first"], match["last"], match["step"]
        if step is not None and (step == "0" or (first is not None and last is None)):
            return f"{item!r}: a step needs * or a range before it and must be at least 1"
        values = [field.value(token) for token in (first, last) if token is not None]
        bounds = [value for value in values if value is not None]
        if len(bounds) < len(values):
            allowed = f"{field.low}-{field.high}" + (f" or {field.names[0]}-{field.names[-1]}" if field.names else "")
            return f"{item!r} is outside {allowed}"
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f"the range {item!r} runs backwards"
    return None
