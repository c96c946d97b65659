"""The run's logical time: which scheduled firing this request stands for.

Cloud Scheduler sends `X-CloudScheduler-ScheduleTime` on every attempt of a firing, retries
included, so it identifies the firing. Without it (a manual call), the firing is the latest
time <= now that the body's `cron` matches in its `time_zone`.

A time later than now plus FUTURE_SKEW is refused: Scheduler sends the time a firing was
scheduled for and delivers it after that moment, and catch-up and backfill only ever ask for
past times. Accepting future ones would let a token holder create the job ids of firings to
come, each of which would then answer `duplicate` and never run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from .errors import BadRequest
from .timefmt import parse_rfc3339

SCHEDULE_TIME_HEADER = "X-CloudScheduler-ScheduleTime"
FIRST_YEAR = 1970
# Room for the clocks of Scheduler and the function to disagree; a firing is delivered at or
# after its scheduled time, so a legitimate header is never later than "now" by more.
FUTURE_SKEW = timedelta(minutes=5)


def logical_time(header: str | None, *, cron: str | None, time_zone: str | None, now: datetime) -> datetime:
    if header:
        try:
            when = parse_rfc3339(header.strip())
        except ValueError as exc:
            raise BadRequest(f"header {SCHEDULE_TIME_HEADER}: {exc}", field=SCHEDULE_TIME_HEADER) from exc
        if when.year < FIRST_YEAR:
            # Before 1000 the year loses digits in job ids and RFC 3339 times; Scheduler never
            # fires before 1970.
            raise BadRequest(
                f"header {SCHEDULE_TIME_HEADER}: {header.strip()!r:.40} is before {FIRST_YEAR} (UTC)",
                field=SCHEDULE_TIME_HEADER,
            )
        if when > now + FUTURE_SKEW:
            raise BadRequest(
                f"header {SCHEDULE_TIME_HEADER}: {header.strip()!r:.40} is in the future (more than "
                f"{FUTURE_SKEW.total_seconds() / 60:g} minutes after the function's clock, "
                f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}); a firing is only ever delivered after its time",
                field=SCHEDULE_TIME_HEADER,
            )
        return when
    if not cron:
        raise BadRequest(
            f"no {SCHEDULE_TIME_HEADER} header and no cron in the body: cannot tell which firing this is",
            field="cron",
        )
    return latest_fire_time(cron, time_zone, now)


def latest_fire_time(cron: str, time_zone: str | None, now: datetime) -> datetime:
    """The latest time <= now that `cron` matches in `time_zone`, in UTC."""
    # get_prev is strictly before its base; one second past `now` makes it "<= now".
    base = now.astimezone(_zone(time_zone)).replace(microsecond=0) + timedelta(seconds=1)
    try:
        previous = _croniter(cron, base).get_prev(datetime)
    except (ValueError, KeyError) as exc:  # croniter's errors subclass ValueError
        raise BadRequest(f"cron {cron!r} is not a valid cron expression ({exc})", field="cron") from exc
    return previous.astimezone(UTC)


def fire_times(cron: str, time_zone: str | None, start: datetime, end: datetime) -> list[datetime]:
    """The times in [start, end) that `cron` matches in `time_zone`, oldest first, in UTC:
    the logical times Scheduler gives that schedule's firings (the catch-up sweep's)."""
    if end <= start:
        return []
    base = start.astimezone(_zone(time_zone)) - timedelta(seconds=1)  # get_next is strictly after
    try:
        times = _croniter(cron, base)
        found = []
        while (moment := times.get_next(datetime).astimezone(UTC)) < end:
            if moment >= start:
                found.append(moment)
    except (ValueError, KeyError) as exc:
        raise BadRequest(f"cron {cron!r} is not a valid cron expression ({exc})", field="cron") from exc
    return found


def in_clock_change(cron: str, time_zone: str | None, moment: datetime) -> bool:
    """Whether fire time `moment` (from fire_times) falls where a daylight-saving change makes
    the schedule's wall clock unclear: a repeated hour (the time happens twice) or a skipped
    one (croniter moved it to a time `cron` does not name). Google documents only that such
    jobs "may observe execution anomalies", not which time Scheduler fires."""
    zone = _zone(time_zone)
    local = moment.astimezone(zone)
    wall = local.replace(tzinfo=None)
    if wall.replace(tzinfo=zone, fold=0).utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset():
        return True  # repeated
    if (moment - timedelta(days=1)).astimezone(zone).utcoffset() == local.utcoffset():
        return False  # no clock change in the day before: nothing was skipped (and croniter is slow)
    # On a naive (wall-clock) base croniter does plain calendar arithmetic.
    return _croniter(cron, wall - timedelta(seconds=1)).get_next(datetime) != wall  # moved off a skipped time


def _zone(time_zone: str | None) -> tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(time_zone) if time_zone else UTC


def _croniter(cron: str, base: datetime) -> Any:
    from croniter import croniter  # lazily: only manual calls and the sweep pay for it

    from . import unix_cron  # lazily too: Scheduler's own firings carry the header

    cron = " ".join(cron.split())
    problem = unix_cron.syntax_problem(cron)
    if problem:  # croniter's own extensions (R, H) would make the job id random
        raise BadRequest(f"cron {cron!r} is not unix-cron as Cloud Scheduler takes it: {problem}", field="cron")
    return croniter(cron, base)
