"""`vertex-cron status`: each schedule's recent firings at a glance. Pure: api.status reads.

A schedule's recent fire times come from its cron and time zone; each is matched to the
PipelineJob its firing creates (the deterministic id), so a fire time with no run shows up —
the firing was missed (every delivery failed) or deliberately skipped (max_concurrent_runs,
start/end time): both mean no run for that time. Times are shown only where the schedule as
it is now could have fired them: not before its job was last written (`userUpdateTime`,
unless a run exists), and not within DELIVERY_WINDOW of now, while Scheduler may still be
delivering or retrying the firing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from vertex_cron_trigger.pipeline_job import job_id
from vertex_cron_trigger.timefmt import parse_rfc3339

from . import cronexpr
from .models import ObservedJob, PipelineRun

# Scheduler's attempts of one firing (6 x 240 s deadline, 5 x 75 s backoff: desired.RETRY)
# end within about 31 minutes; until then a fire time without its run is not yet missed.
DELIVERY_WINDOW = timedelta(minutes=31)
NO_RUN = "NO_RUN"
SYMBOLS = {"SUCCEEDED": "✓", "FAILED": "✗", "CANCELLED": "✗", NO_RUN: "·"}
RUNNING_SYMBOL = "▸"  # queued, pending, running, cancelling, paused
_FAILURES = frozenset({"FAILED", "CANCELLED", NO_RUN})


@dataclass(frozen=True)
class Firing:
    logical_time: datetime
    job_id: str
    state: str  # the run's state (SUCCEEDED, FAILED, RUNNING, ...) or NO_RUN

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.state, RUNNING_SYMBOL)


@dataclass(frozen=True)
class Health:
    schedule: str
    state: str  # the Scheduler job's: ENABLED, PAUSED
    time_zone: str
    next_run: datetime | None
    firings: tuple[Firing, ...]  # oldest first
    consecutive_failures: int  # failed, cancelled or missing firings since the last success
    # The newest failed run among those read (api.status: those since the oldest fire time shown).
    last_error: PipelineRun | None

    @property
    def strip(self) -> str:
        return "".join(firing.symbol for firing in self.firings)


def earliest_fire_time(job: ObservedJob, *, count: int, now: datetime) -> datetime | None:
    """The oldest of the fire times `health` looks at (None: the cron has none): every run
    `health` needs was created at or after it."""
    times = _fire_times(job, count=count, now=now)
    return times[-1] if times else None


def _fire_times(job: ObservedJob, *, count: int, now: datetime) -> list[datetime]:
    """The `count` fire times before the delivery window, newest first."""
    return cronexpr.previous_fire_times(*_cron_and_zone(job), now - DELIVERY_WINDOW, count)


def _cron_and_zone(job: ObservedJob) -> tuple[str, str]:
    body = job.fields.get("http_target.body") or {}
    return str(body.get("cron") or job.fields.get("schedule")), str(body.get("time_zone") or "UTC")


def health(schedule: str, job: ObservedJob, runs: Sequence[PipelineRun], *, count: int, now: datetime) -> Health:
    time_zone = _cron_and_zone(job)[1]
    by_id = {run.name: run for run in runs}
    updated = job.fields.get("user_update_time")
    written = parse_rfc3339(updated) if isinstance(updated, str) else None
    firings: list[Firing] = []
    for moment in _fire_times(job, count=count, now=now):
        the_id = job_id(schedule, moment)
        run = by_id.get(the_id)
        if run is None and written is not None and moment < written:
            continue  # before the schedule as it is now existed: not a missed firing
        firings.append(Firing(moment, the_id, run.state if run else NO_RUN))
    firings.reverse()
    failing = 0
    for firing in reversed(firings):
        if firing.state == "SUCCEEDED":
            break
        failing += firing.state in _FAILURES
    return Health(
        schedule=schedule,
        state=job.state,
        time_zone=time_zone,
        next_run=job.next_run,
        firings=tuple(firings),
        consecutive_failures=failing,
        last_error=next((run for run in runs if run.state == "FAILED"), None),  # runs come newest first
    )
