"""What a schedule's runs say about its fire times, for the two reporters of `missed` lines:
the catch-up sweep (sweep.py, schedules with catch-up) and a schedule's own next run
(run_reports.py, schedules without)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .google_rest import ACTIVE_STATES, GoogleRest
from .logical_time import FUTURE_SKEW
from .pipeline_job import SCHEDULE_LABEL, job_id
from .timefmt import format_rfc3339, parse_rfc3339

# Runs that may still hold a max_concurrent_runs slot (as count_active_runs counts, plus
# those on their way out).
_HOLDING_STATES = (*ACTIVE_STATES, "PIPELINE_STATE_CANCELLING", "PIPELINE_STATE_PAUSED")
# How far back one report reaches for what the reports before it could not write (the
# sweep's range, a run's missed fire times): sweep.py says why 24 h.
LOOKBACK = timedelta(hours=24)
_AT_ONCE = timedelta(0)
# How long after a fire time Cloud Scheduler may still deliver it, for the jobs the deployer
# writes (give_up.give_up_span of their retry policy and attempt deadline: six attempts of
# 240 s, five backoffs of 75 s, a minute's slack); written out so that an on-time firing
# loads neither; tests/deployer keep it equal to the deployer's.
DEPLOYED_GIVE_UP = timedelta(seconds=1875)


def runs_since(rest: GoogleRest, schedule: str, oldest: datetime) -> list[dict[str, Any]]:
    """The schedule's runs that can matter for fire times from `oldest` on: made since (a
    firing is delivered at most FUTURE_SKEW early), or holding a slot then or now."""
    since = f'"{format_rfc3339(oldest - FUTURE_SKEW)}"'
    holding = " OR ".join(f'state="{state}"' for state in _HOLDING_STATES)
    return rest.list_pipeline_jobs(
        f'labels.{SCHEDULE_LABEL}="{schedule}" AND (create_time>={since} OR end_time>={since} OR {holding})',
        action=f"listing the runs of schedule {schedule}",
    )


def at_limit(runs: list[dict[str, Any]], moment: datetime, limit: int | None, *, within: timedelta = _AT_ONCE) -> bool:
    """Whether `limit` runs were active at `moment`, or at any time up to `within` after it,
    so its firing may have been skipped on purpose: the function counts the runs active when
    a delivery reaches it, which Scheduler's retries can make later than the fire time."""
    if limit is None:
        return False
    spans = [(parse_time(run.get("createTime")), parse_time(run.get("endTime"))) for run in runs]
    # The count only rises when a run is created: look at `moment` and at each creation after it.
    instants = [
        moment,
        *(created for created, _ in spans if created is not None and moment < created <= moment + within),
    ]
    return any(
        sum(created is not None and created <= at and (ended is None or ended > at) for created, ended in spans)
        >= limit
        for at in instants
    )


def missed_line(schedule: str, moment: datetime, parent: str, *, catch_up: bool) -> dict[str, Any]:
    """The `missed` line of a fire time of `schedule` that ended with no run."""
    why = "and it left the catch-up window" if catch_up else "and catch-up is off for this schedule"
    return {
        "severity": "ERROR",
        "message": f"the firing of {schedule} at {format_rfc3339(moment)} has no run: Cloud Scheduler gave up on it {why}",
        "outcome": "missed",
        "schedule": schedule,
        "logical_time": format_rfc3339(moment),
        "job": f"{parent}/pipelineJobs/{job_id(schedule, moment)}",  # the id it would have had
        "error": None,
    }


def parse_time(value: Any) -> datetime | None:
    """A resource's RFC 3339 time field, or None when absent or malformed."""
    try:
        return parse_rfc3339(value) if isinstance(value, str) else None
    except ValueError:
        return None


def run_id(run: dict[str, Any]) -> str:
    """A listed run's PipelineJob id (the last part of its resource name)."""
    return str(run.get("name", "")).rsplit("/", 1)[-1]


def latest(*moments: datetime | None) -> datetime | None:
    """The latest of the moments given, None when none is."""
    return max((moment for moment in moments if moment is not None), default=None)
