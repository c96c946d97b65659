"""`vertex-cron backfill`: the runs a schedule's past fire times have, or would have had.

Each fire time in the range is delivered to the schedule's own function exactly as Cloud
Scheduler delivers a firing: the job's body, `X-CloudScheduler-ScheduleTime`, and an ID token
of the job's OIDC service account (minted through IAM Credentials, impersonating it). So a
backfilled run is the run that firing creates — same PipelineJob id, parameters, placeholders,
pipeline root and identity — every check of the function applies, and a time that already ran
answers `duplicate`: a backfill can be repeated, or resumed after an interruption, and never
runs anything twice.

This module is pure: which fire times a request covers, and what each delivery's answer
means. api.backfill does the calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from vertex_cron_trigger.pipeline_job import job_id
from vertex_cron_trigger.timefmt import parse_rfc3339

from . import cronexpr
from .config import MAX_BACKFILL_RUNS
from .errors import ValidationError

OUTCOMES = ("created", "existing", "skipped", "failed")


@dataclass(frozen=True)
class Firing:
    logical_time: datetime
    job_id: str


@dataclass(frozen=True)
class Delivered:
    firing: Firing
    outcome: str  # one of OUTCOMES
    message: str


@dataclass(frozen=True)
class BackfillReport:
    schedule: str
    time_zone: str
    firings: tuple[Firing, ...]
    delivered: tuple[Delivered, ...] = ()  # empty for a dry run

    def counts(self) -> dict[str, int]:
        seen = Counter(result.outcome for result in self.delivered)
        return {outcome: seen[outcome] for outcome in OUTCOMES}


def firings(
    schedule: str, body: Mapping[str, Any], *, start: datetime, end: datetime, max_runs: int, now: datetime
) -> tuple[Firing, ...]:
    """The schedule's fire times in [start, end), inside its own start_time/end_time window,
    each with the PipelineJob id its firing has. Raises ValidationError for a range that is
    reversed, in the future, has no fire time, or has more than `max_runs`."""
    if not 1 <= max_runs <= MAX_BACKFILL_RUNS:
        raise ValidationError(f"--max-runs must be from 1 to {MAX_BACKFILL_RUNS}, not {max_runs}")
    if start >= end:
        raise ValidationError(f"the range is empty or reversed: --from {_text(start)} is not before --to {_text(end)}")
    if end > now:
        raise ValidationError(
            f"--to {_text(end)} is in the future",
            details="a backfill requests runs of fire times that have passed; future firings are Cloud Scheduler's",
        )
    cron, time_zone = str(body["cron"]), str(body["time_zone"])
    window_start = max(start, _optional_time(body, "start_time") or start)
    window_end = min(end, _optional_time(body, "end_time") or end)
    times = cronexpr.next_fire_times(
        cron, time_zone, window_start - timedelta(microseconds=1), max_runs + 1, end=window_end
    )
    if not times:
        raise ValidationError(
            f"schedule {schedule} has no fire time from {_text(start)} to {_text(end)}",
            details=f"its cron is {cron!r} in {time_zone}"
            + (", inside its start_time/end_time" if "start_time" in body or "end_time" in body else ""),
        )
    if len(times) > max_runs:
        raise ValidationError(
            f"the range holds more than {max_runs} fire times of schedule {schedule}",
            details=f"narrow --from/--to, or raise --max-runs (at most {MAX_BACKFILL_RUNS})",
        )
    return tuple(Firing(moment, job_id(schedule, moment)) for moment in times)


def outcome(status: int, answer: Mapping[str, Any]) -> tuple[str, str]:
    """A delivery's (outcome, message) from the function's HTTP status and JSON answer."""
    message = str(answer.get("message") or f"HTTP {status}")
    if status == 200:
        said = answer.get("outcome")
        if said == "created":
            return "created", message
        if said == "duplicate":
            return "existing", message
        return "skipped", message
    return "failed", f"HTTP {status}: {message}"


def _optional_time(body: Mapping[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    return parse_rfc3339(value) if isinstance(value, str) else None


def _text(moment: datetime) -> str:
    return moment.isoformat()
