"""Cron expressions as Cloud Scheduler reads them (unix-cron, five fields, checked by the
trigger runtime's `unix_cron`, so the deployer and the function agree) and their fire times
in an IANA time zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from vertex_cron_trigger import unix_cron

from .errors import ValidationError


def check_cron(expr: str) -> str:
    """Return the expression normalised to single spaces, or raise ValidationError: it must
    be unix-cron as Cloud Scheduler accepts it, and fire at least once."""
    normalised = " ".join(str(expr).split())
    problem = unix_cron.syntax_problem(normalised)
    if problem:
        raise ValidationError(f"invalid cron expression {expr!r}: {problem}", details=unix_cron.FORMAT_HINT)
    if unix_cron.never_fires(normalised):
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
    times: list[datetime] = []
    for moment in _firings(expr, after.astimezone(ZoneInfo(time_zone))):
        if len(times) == count or (end and moment >= end):
            break
        times.append(moment)
    return times


def previous_fire_times(expr: str, time_zone: str, before: datetime, count: int) -> list[datetime]:
    """Up to `count` firings strictly before `before`, newest first, in the schedule's zone."""
    times: list[datetime] = []
    for moment in _firings(expr, before.astimezone(ZoneInfo(time_zone)), backwards=True):
        if len(times) == count:
            break
        times.append(moment)
    return times


def is_fire_time(expr: str, time_zone: str, moment: datetime) -> bool:
    """Whether `moment` is one of the expression's firings (whole minutes the cron matches)."""
    if moment.second or moment.microsecond:
        return False
    return bool(croniter.match(expr, moment.astimezone(ZoneInfo(time_zone))))


def _firings(expr: str, start: datetime, *, backwards: bool = False) -> Iterator[datetime]:
    it = croniter(expr, start)
    step = it.get_prev if backwards else it.get_next
    while True:
        try:
            yield step(datetime)
        except CroniterBadDateError:  # croniter found no date within its search horizon
            return
