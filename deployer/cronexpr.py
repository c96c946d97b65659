"""Cron expressions as Cloud Scheduler reads them (unix-cron, five fields) and their next
fire times in an IANA time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from .errors import ValidationError


def check_cron(expr: str) -> str:
    """Return the expression normalised to single spaces, or raise ValidationError."""
    normalised = " ".join(str(expr).split())
    # croniter also accepts a sixth (seconds) and seventh (year) field; Cloud Scheduler does not.
    if len(normalised.split(" ")) != 5 or not croniter.is_valid(normalised):
        raise ValidationError(
            f"invalid cron expression {expr!r}",
            details="expected five unix-cron fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'",
        )
    return normalised


def next_fire_times(expr: str, time_zone: str, after: datetime, count: int = 3) -> list[datetime]:
    """The next `count` firings strictly after `after`, in the schedule's time zone."""
    start = after.astimezone(ZoneInfo(time_zone))
    it = croniter(expr, start)
    return [it.get_next(datetime) for _ in range(count)]
