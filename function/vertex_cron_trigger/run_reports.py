"""The reports a created run makes of what came before it: one ERROR line per run of its
schedule that ended FAILED or CANCELLED (`run_failed`) and per fire time that ended with no
run (`missed`), written in the cloud with no one running a command, and without storage.

Who reports a schedule depends on whether it uses catch-up:
- with catch-up, the catch-up sweep (sweep.py), every 10 minutes;
- without, the schedule's own next run (`report_before`). The sweep's job exists only
  while some schedule of the region uses catch-up (ARCHITECTURE), so a schedule without it
  cannot count on a sweep, and a sweep that reported it too would repeat these lines.

The firing that creates a run R of a schedule without catch-up (never a duplicate delivery,
never a skip: exactly one request creates R) reports:
- `run_failed`: the schedule's runs that ended in [creation of its previous run, creation of
  R), both times Vertex AI's own. Successive runs' windows meet end to end, so each ended run
  falls in exactly one and is reported once;
- `missed`: the fire times with no run (not skipped for max_concurrent_runs) in
  (P - DEPLOYED_GIVE_UP, R's - DEPLOYED_GIVE_UP], P being the logical time of the run before
  R, and not before the body's `catch_up_since` (the deployer writes it into every body: the
  schedule's deploy, a change of its fire times, catch-up turned on, a plain resume).
  Successive reports' windows meet end to end too, and only times Scheduler can no longer
  deliver are in them: a time still within its give-up span waits for the next report.
Backfilled and forced runs come through the same firing path, so they report too. What it
costs: one list call after the create (two when there is an earlier run), and for `missed`
nothing more in the usual case (a cron of a fixed interval of at least DEPLOYED_GIVE_UP whose
run before is the fire time just before: cron_interval.py); otherwise croniter and one more
list call (a missed firing, a forced run, a clock change, a cron of no fixed interval or a
shorter one). A report is as late as the schedule's next run — a nightly schedule hears of a
failure the next night; catch-up schedules are watched every 10 minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .body import TriggerBody
from .cron_interval import fixed_interval
from .errors import TriggerError, UpstreamUnavailable
from .google_rest import GoogleRest
from .logical_time import fire_times, in_clock_change, latest_fire_time
from .pipeline_job import SCHEDULE_LABEL, job_id, logical_time_of
from .request_log import emit_fields
from .run_history import DEPLOYED_GIVE_UP, LOOKBACK, at_limit, latest, missed_line, parse_time, run_id, runs_since
from .timefmt import format_rfc3339

# How many fire times back a report looks at least (LOOKBACK bounds frequent crons): a week of
# a daily schedule.
REACH = 7
# The most a daylight-saving change moves a wall-clock time in UTC.
_CLOCK_CHANGE = timedelta(hours=1)
ENDED_BADLY = ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")


def ended_badly_filter(start: str, end: str) -> str:
    """An AIP-160 clause: runs that ended FAILED or CANCELLED in [start, end) (RFC 3339)."""
    states = " OR ".join(f'state="{state}"' for state in ENDED_BADLY)
    return f'({states}) AND end_time>="{start}" AND end_time<"{end}"'


def report_before(rest: GoogleRest, body: TriggerBody, when: datetime, created: str, parent: str) -> None:
    """Writes the lines of schedule `body.schedule` that its run `created` (full resource name,
    of fire time `when`) owes: the runs that ended badly, and the fire times that ended with
    no run, since the run before it. A failure to look is one ERROR line (`report_failed`)
    instead: the firing itself succeeded and must not be retried (a retry is a duplicate
    delivery, which reports nothing), and that window is not reported."""
    schedule = body.schedule
    try:
        newest = rest.newest_pipeline_jobs(
            f'labels.{SCHEDULE_LABEL}="{schedule}"', count=3, action=f"listing the newest runs of schedule {schedule}"
        )
        if not any(run.get("name") == created for run in newest):
            # Runs created in the same instant listed before it: which came first is unknown.
            raise UpstreamUnavailable(f"the run just created is not among the {len(newest)} newest runs listed")
        lines = _failed_before(rest, schedule, newest, created)
        if body.cron:
            lines += _missed_before(rest, body, when, newest, parent)
    except TriggerError as exc:
        emit_fields(
            {
                "severity": "ERROR",
                "message": f"could not report the runs of {schedule} that ended, or the firings that made none, "
                f"before {created} was created: {exc.message}",
                "outcome": "report_failed",
                "schedule": schedule,
                "job": created,
                "error": {"message": exc.message},
            }
        )
        return
    for line in lines:
        emit_fields(line)


def _failed_before(rest: GoogleRest, schedule: str, newest: list[dict[str, Any]], created: str) -> list[dict[str, Any]]:
    """run_failed lines: the runs that ended badly since the schedule's previous run was created."""
    created_at = {str(run.get("name")): parse_time(run.get("createTime")) for run in newest}
    end = created_at.get(created)
    # The newest run created before ours (a concurrent creation may list first).
    start = max((t for t in created_at.values() if t is not None and end is not None and t < end), default=None)
    if end is None or start is None:
        return []  # the schedule's first run: nothing ended before it (or no createTime to go by)
    runs = rest.list_pipeline_jobs(
        f'labels.{SCHEDULE_LABEL}="{schedule}" AND ' + ended_badly_filter(format_rfc3339(start), format_rfc3339(end)),
        action=f"listing the runs of schedule {schedule} that failed or were cancelled",
    )
    return [run_failed_line(run, schedule) for run in runs]


def _missed_before(
    rest: GoogleRest, body: TriggerBody, when: datetime, newest: list[dict[str, Any]], parent: str
) -> list[dict[str, Any]]:
    """missed lines: the schedule's fire times with no run that Scheduler is done with, in
    (previous - DEPLOYED_GIVE_UP, when - DEPLOYED_GIVE_UP], `previous` being the logical time
    of the schedule's latest earlier run (whose own report ended where this one starts), and
    not before the body's catch_up_since.

    A fire time within DEPLOYED_GIVE_UP of `when` may still be retried by Scheduler (a forced
    run can come in the middle of a retry, and Scheduler only says it "might" skip a firing
    while the one before is retrying): the next report has it. The usual case costs no call
    and no croniter: a cron of a fixed interval at least that span (cron_interval.py) whose
    previous run is the fire time just before has nothing else in the window."""
    schedule, cron, zone = body.schedule, " ".join(str(body.cron).split()), body.time_zone
    # Only times since the schedule was deployed with these fire times or last resumed (the
    # deployer writes catch_up_since into every body): the times of a pause are not missed.
    since = latest(body.catch_up_since, body.start_time)
    if since is None:
        return []  # a job written before the deployer wrote catch_up_since: nothing bounds it
    earlier = (logical_time_of(schedule, run_id(run)) for run in newest)
    previous = max((moment for moment in earlier if moment is not None and moment < when), default=None)
    settled = when - DEPLOYED_GIVE_UP
    start = since if previous is None else max(since, previous - DEPLOYED_GIVE_UP)
    interval = fixed_interval(cron)
    if interval is not None and interval >= DEPLOYED_GIVE_UP:
        if previous is not None and previous == when - interval:
            return []  # the window holds `previous` alone, and it has its run
        if previous is None and when - interval + _CLOCK_CHANGE < since:
            return []  # the first firing: nothing was due before it
    if settled < start:
        return []
    # A day back, or the REACH fire times before `when` if that reaches further (a schedule
    # that fires daily or less often).
    reach = when
    for _ in range(REACH):
        reach = latest_fire_time(cron, zone, reach - timedelta(seconds=1))
    oldest = max(start, min(settled - LOOKBACK, reach))
    lines = []
    if oldest > start:
        unseen = latest_fire_time(cron, zone, oldest - timedelta(seconds=1))
        if unseen == previous:  # it has its run; look before it
            unseen = latest_fire_time(cron, zone, unseen - timedelta(seconds=1))
        if unseen > start:
            lines.append(_gap_line(schedule, start, oldest))  # fire times no report will look at
    times = [
        moment
        for moment in fire_times(cron, zone, oldest, settled + timedelta(seconds=1))
        # (start, settled]: a time at the start was the previous report's; since itself counts.
        if (moment > start or (previous is None and moment == since))
        and not in_clock_change(cron, zone, moment)
        and (body.end_time is None or moment < body.end_time)
    ]
    if not times:
        return lines
    runs = runs_since(rest, schedule, times[0])
    have = {run_id(run) for run in runs}
    return lines + [
        missed_line(schedule, moment, parent, catch_up=False)
        for moment in times
        if job_id(schedule, moment) not in have
        and not at_limit(runs, moment, body.max_concurrent_runs, within=DEPLOYED_GIVE_UP)
    ]


def _gap_line(schedule: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The stretch [start, end) older than a report looks back, whose missed fire times get
    no line of their own: named, not dropped."""
    return {
        "severity": "ERROR",
        "message": f"the missed lines of {schedule} for [{format_rfc3339(start)}, {format_rfc3339(end)}) were never "
        "written: they are older than a report looks back; "
        "`vertex-cron status` and `vertex-cron history` show its firings",
        "outcome": "report_gap",
        "schedule": schedule,
        "logical_time": None,
        "job": None,
        "error": None,
        "unreported": [format_rfc3339(start), format_rfc3339(end)],
    }


def emit_run_failed(run: dict[str, Any], schedule: str) -> None:
    emit_fields(run_failed_line(run, schedule))


def run_failed_line(run: dict[str, Any], schedule: str) -> dict[str, Any]:
    """The `run_failed` line of one run (as listed with google_rest.LIST_READ_MASK)."""
    name = str(run.get("name", ""))
    when = logical_time_of(schedule, run_id(run))
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
