"""`run_failed` lines: one ERROR line per run of a schedule that ended FAILED or CANCELLED,
written in the cloud with no one running a command, and without storage.

Who writes a schedule's lines depends on whether it uses catch-up:
- with catch-up, the catch-up sweep (sweep.py) reports its runs every 10 minutes;
- without, the schedule's own next run does (`report_before`). The sweep's job exists only
  while some schedule of the region uses catch-up (ARCHITECTURE), so a schedule without it
  cannot count on a sweep, and a sweep that reported it too would repeat these lines.

The firing that creates a run R of a schedule without catch-up (never a duplicate delivery,
never a skip: exactly one request creates R) reports the schedule's runs that ended in
[creation of the schedule's previous run, creation of R), both times Vertex AI's own. The
windows of successive runs meet end to end, so each ended run falls in exactly one and is
reported once. Backfilled runs come through the same firing path, so they report too. What it
costs: one list call (two when there is a previous run) after the create, and a run's report
is as late as the schedule's next run — a nightly schedule hears of a failure the next night;
catch-up schedules are watched every 10 minutes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .errors import TriggerError
from .google_rest import GoogleRest
from .pipeline_job import SCHEDULE_LABEL, logical_time_of
from .request_log import emit_fields
from .timefmt import format_rfc3339, parse_rfc3339

ENDED_BADLY = ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")


def ended_badly_filter(start: str, end: str) -> str:
    """An AIP-160 clause: runs that ended FAILED or CANCELLED in [start, end) (RFC 3339)."""
    states = " OR ".join(f'state="{state}"' for state in ENDED_BADLY)
    return f'({states}) AND end_time>="{start}" AND end_time<"{end}"'


def report_before(rest: GoogleRest, schedule: str, created: str) -> int:
    """Reports the runs of `schedule` that ended badly since its previous run was created and
    before run `created` (its full resource name) was; returns how many. A failure to look is
    its own ERROR line (`report_failed`): the firing itself succeeded and must not be retried
    (a retry is a duplicate delivery, which reports nothing), and the window is lost."""
    try:
        newest = rest.newest_pipeline_jobs(
            f'labels.{SCHEDULE_LABEL}="{schedule}"', count=3, action=f"listing the newest runs of schedule {schedule}"
        )
        created_at = {str(run.get("name")): _time(run.get("createTime")) for run in newest}
        end = created_at.get(created)
        # The newest run created before ours (a concurrent creation may list first).
        start = max((t for t in created_at.values() if t is not None and end is not None and t < end), default=None)
        if end is None or start is None:
            return 0  # the schedule's first run: nothing ended before it
        runs = rest.list_pipeline_jobs(
            f'labels.{SCHEDULE_LABEL}="{schedule}" AND '
            + ended_badly_filter(format_rfc3339(start), format_rfc3339(end)),
            action=f"listing the runs of schedule {schedule} that failed or were cancelled",
        )
    except TriggerError as exc:
        emit_fields(
            {
                "severity": "ERROR",
                "message": f"could not report the runs of {schedule} that ended before {created} was created: "
                f"{exc.message}",
                "outcome": "report_failed",
                "schedule": schedule,
                "job": created,
                "error": {"message": exc.message},
            }
        )
        return 0
    for run in runs:
        emit_run_failed(run, schedule)
    return len(runs)


def _time(value: Any) -> datetime | None:
    try:
        return parse_rfc3339(value) if isinstance(value, str) else None
    except ValueError:
        return None


def emit_run_failed(run: dict[str, Any], schedule: str) -> None:
    emit_fields(run_failed_line(run, schedule))


def run_failed_line(run: dict[str, Any], schedule: str) -> dict[str, Any]:
    """The `run_failed` line of one run (as listed with google_rest.LIST_READ_MASK)."""
    name = str(run.get("name", ""))
    when = logical_time_of(schedule, name.rsplit("/", 1)[-1])
    error: dict[str, Any] = run["error"] if isinstance(run.get("error"), dict) else {}
    state = str(run.get("state", "")).removeprefix("PIPELINE_STATE_")
    return {
        "severity": "ERROR",
        "message": f"run {name} of schedule {schedule} ended {state}: {error.get('message') or 'no error given'}",
        "outcome": "run_failed",
        "schedule": schedule,
        "logical_time": format_rfc3339(when) if when else None,
        "job": name,
        "state": state,
        "error": {"code": error.get("code"), "message": error.get("message")},
    }
