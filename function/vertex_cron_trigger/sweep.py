"""The catch-up sweep: the answer to the sweep job's body (catch_up.py), one request that
creates the runs Cloud Scheduler gave up on and reports what ended badly.

    jobs.list (Cloud Scheduler, read-only, all pages)
      -> this function's schedule jobs (`vertex-cron-NAME`, http target = this function),
         PAUSED ones left out
      -> per schedule: one pipelineJobs.list (its label, runs created or ended since the
         oldest time looked at, or still active) instead of a get per fire time
      -> catch-up: the fire times in [max(now - catch_up, catch_up_since, start_time),
         now - give-up span), before end_time, with no run, oldest first across schedules,
         at most `catch_up_max_runs` per sweep, each created by firing.fire as on time
      -> reports (one ERROR line each, below) for the range since the last sweep that reported

Reported once across sweeps, through a watermark (watermark.py: one object in the spec
bucket, "reported through" time T and its generation). The sweep of logical time L (its
X-CloudScheduler-ScheduleTime) reports, for the schedules with catch-up (each other schedule's
own next run reports it: run_reports.py), what ended in [max(T, L - LOOKBACK), L):
- `run_failed`: their runs that ended FAILED or CANCELLED in the range (one
  pipelineJobs.list for the region);
- `missed`: their fire times with no run whose last chance ended in the range: the catch-up
  window (or Scheduler's give-up span, when longer) after the time (the sweeps before had it
  as a candidate);
- `report_gap`: one line for [T, L - LOOKBACK) when T is older than that: what no sweep
  reported in time is named, never dropped silently.
No watermark yet: the range is the sweep's own ten minutes (sweep_slot). T >= L (Scheduler's
retry of a sweep that reported, a forced run, a sweep overtaken by a later one): nothing.
So a sweep that fails throughout (the function down, Vertex AI failing every retry) leaves T
where it was and the next sweep that succeeds reports its range too.

LOOKBACK is 24 h, not the 7-day catch-up maximum: the wider the range, the more runs one
sweep lists (each schedule's since the range's start, paged by 100: a per-minute schedule
gives 15 pages for a day, 101 for a week) within one request's 150 s, and a sweep that
overruns fails and never moves T, so every later one would fail the same way.

Order: lines first, then the watermark. The lines are written only once the whole range
is known (a schedule's runs unreadable, the failed-runs listing failing: nothing is written
and T stays, so a later sweep writes the whole range rather than part of it twice), and only
while T is still the generation read (checked just before: a sweep that moved it wrote its
lines first, and what lies past its T is left to the next). Then T moves to L with
ifGenerationMatch. The other order (claim, then write) is exactly once while nothing
breaks, but an instance dying between the two, or a write whose answer was lost, would
lose the range's lines for good; this order can only repeat them: a crash or a failed write
after the lines (the next sweep writes them again, and the sweep answers `failed`), or a
concurrent sweep moving T between the check and the write (412: both wrote). Duplicates are
visible and harmless to the alerts (a count above 0); a lost line is the failure issue 14
forbids hiding.

Watermark unreadable (403 without the grant, 5xx): runs are still caught up, nothing is
reported, T stays, and the sweep answers `failed` (503, or 500 when permanent) naming it, so
the alert on `failed` lines fires while the reports wait.

A fire time at which the schedule already had `max_concurrent_runs` runs active (from the
runs listed) was skipped on purpose: neither caught up nor missed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import watermark
from .body import TriggerBody, parse_body
from .catch_up import SWEEP_CRON, SWEEP_JOB
from .errors import BadRequest, ConditionNotMet, TriggerError, UpstreamRejected, UpstreamUnavailable
from .firing import fire
from .give_up import give_up_span
from .google_rest import GoogleRest
from .logical_time import fire_times, in_clock_change
from .oidc import normalize_audience
from .pipeline_job import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SCHEDULE_LABEL, job_id
from .request_log import emit_fields
from .run_history import LOOKBACK, at_limit, latest, missed_line, parse_time, run_id, runs_since
from .run_reports import ended_badly_filter, run_failed_line
from .settings import Settings
from .spec_store import SpecStore
from .timefmt import format_rfc3339

SCHEDULE_JOB_PREFIX = "vertex-cron-"


@dataclass
class ScheduleSummary:
    """What the sweep did for one schedule: its part of the response and the log line."""

    catch_up: bool
    created: int = 0
    existing: int = 0  # fire times in the catch-up window whose run exists
    skipped: int = 0  # max_concurrent_runs, then or now
    capped: int = 0  # left for the next sweep by the per-sweep cap
    missed: int = 0
    run_failed: int = 0
    paused: bool = False
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self).items() if k not in ("paused", "error")}
        return fields | ({"paused": True} if self.paused else {}) | ({"error": self.error} if self.error else {})


@dataclass
class SweepReport:
    # What this sweep reports, [watermark, sweep time) (module docstring); None: nothing
    # (already reported through the sweep time, or the watermark could not be read).
    reporting: tuple[datetime, datetime] | None
    schedules: dict[str, ScheduleSummary] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # job names, oldest logical time first
    transient_errors: int = 0
    permanent_errors: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)  # run_failed / missed / report_gap
    reported: bool = False  # the lines were written
    # Why the reporting range is left for a later sweep (lines not written, or written and
    # the watermark not moved), and the error behind it: the sweep answers `failed`.
    report_error: tuple[str, TriggerError] | None = None
    report_note: str | None = None  # e.g. the range was claimed by a concurrent sweep

    def totals(self) -> dict[str, int]:
        keys = ("created", "existing", "skipped", "capped", "missed", "run_failed")
        return {key: sum(getattr(s, key) for s in self.schedules.values()) for key in keys}


@dataclass(frozen=True)
class _Schedule:
    name: str
    job: Mapping[str, Any]
    body: TriggerBody
    give_up: timedelta


def sweep_slot(sweep_time: datetime) -> tuple[datetime, datetime]:
    """[the sweep cron's previous time, sweep_time): what the first sweep reports."""
    before = fire_times(SWEEP_CRON, None, sweep_time - timedelta(days=1), sweep_time)
    return (before[-1] if before else sweep_time - timedelta(minutes=10)), sweep_time


def report_range(
    reported_through: datetime | None, sweep_time: datetime
) -> tuple[tuple[datetime, datetime] | None, tuple[datetime, datetime] | None]:
    """(what the sweep of `sweep_time` reports, the older part it gives up on as a gap) for
    a watermark at `reported_through` (None: none written yet)."""
    if reported_through is None:
        return sweep_slot(sweep_time), None
    if reported_through >= sweep_time:  # a retry of a sweep that reported, or a forced run
        return None, None
    oldest = sweep_time - LOOKBACK
    if reported_through < oldest:
        return (oldest, sweep_time), (reported_through, oldest)
    return (reported_through, sweep_time), None


def sweep(
    *,
    config: Settings,
    rest: GoogleRest,
    specs: SpecStore,
    sweep_time: datetime,
    now: datetime,
    targets: Collection[str],
) -> SweepReport:
    own = _own_schedule_jobs(rest.list_scheduler_jobs(), targets)
    report, mark = _start(rest, config, sweep_time)
    candidates: list[tuple[datetime, _Schedule]] = []
    for name, job in own.items():
        summary = report.schedules[name] = ScheduleSummary(catch_up=False)
        try:
            schedule = _schedule(name, job)
            summary.catch_up = schedule.body.catch_up is not None  # paused too: its runs still end
            if job.get("state") == "PAUSED":
                summary.paused = True
                continue
            candidates += [
                (t, schedule) for t in _examine(schedule, rest, report, summary, now=now, parent=config.parent)
            ]
        except TriggerError as exc:
            _record_error(report, summary, exc)
            if isinstance(exc, (UpstreamUnavailable, UpstreamRejected)):
                _hold(report, f"the runs of schedule {name} could not be read", exc)
    _catch_up(sorted(candidates, key=lambda c: (c[0], c[1].name)), config, rest, specs, report)
    if report.reporting is not None:
        try:
            catch_up = {name for name, summary in report.schedules.items() if summary.catch_up}
            _report_failed_runs(rest, report, catch_up, report.reporting)
        except TriggerError as exc:
            _hold(report, "the runs that ended badly could not be listed", exc)
    if mark is not None:
        _publish(report, rest, config, mark)
    return report


def _start(rest: GoogleRest, config: Settings, sweep_time: datetime) -> tuple[SweepReport, watermark.Watermark | None]:
    """The report with its range from the watermark (and the watermark, None when unreadable)."""
    try:
        mark = watermark.read(rest, config)
    except TriggerError as exc:
        report = SweepReport(reporting=None)
        report.report_error = ("reading the watermark failed: nothing is reported until a sweep can", exc)
        return report, None
    reporting, gap = report_range(mark.reported_through, sweep_time)
    report = SweepReport(reporting=reporting)
    if gap:
        report.lines.append(report_gap_line(gap))
    return report, mark


def _hold(report: SweepReport, why: str, exc: TriggerError) -> None:
    """Leave the whole range to a later sweep: writing part of it would repeat that part then."""
    if report.reporting is not None and report.report_error is None:
        report.report_error = (f"{why}: nothing is reported and a later sweep reports {_range(report.reporting)}", exc)


def _publish(report: SweepReport, rest: GoogleRest, config: Settings, mark: watermark.Watermark) -> None:
    """Write the range's lines, then move the watermark past it (module docstring: why in that order)."""
    if report.reporting is None or report.report_error is not None:
        return
    try:
        # Lines are only worth writing while no other sweep has taken the range (one that
        # did wrote its own lines first); with none, there is nothing to write twice.
        if report.lines and not watermark.unchanged(rest, config, mark):
            report.report_note = "a concurrent sweep moved the watermark: it, or the next sweep, reports this range"
            return
        for line in report.lines:
            emit_fields(line)
        report.reported = True
        watermark.advance(rest, config, mark, report.reporting[1])
    except ConditionNotMet:
        report.report_note = "a concurrent sweep moved the watermark meanwhile: some lines may be written twice"
    except TriggerError as exc:
        what = "the lines were written but the watermark was not moved: the next sweep writes them again"
        if not report.reported:
            what = "checking the watermark failed: nothing is reported until a sweep can"
        report.report_error = (what, exc)


def _own_schedule_jobs(jobs: list[dict[str, Any]], targets: Collection[str]) -> dict[str, dict[str, Any]]:
    """{schedule name: Scheduler job} of the schedules whose jobs call this function."""
    ours = {normalize_audience(target) for target in targets}
    own = {}
    for job in jobs:
        short = str(job.get("name", "")).rsplit("/", 1)[-1]
        uri = (job.get("httpTarget") or {}).get("uri")
        calls_us = isinstance(uri, str) and normalize_audience(uri) in ours
        if calls_us and short.startswith(SCHEDULE_JOB_PREFIX) and short != SWEEP_JOB:
            own[short.removeprefix(SCHEDULE_JOB_PREFIX)] = job
    return own


def _schedule(name: str, job: Mapping[str, Any]) -> _Schedule:
    try:
        raw = base64.b64decode((job.get("httpTarget") or {}).get("body") or "", validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadRequest(f"the Scheduler job's body is not base64 ({exc})", field="body") from exc
    body = parse_body(raw)
    if body.schedule != name:
        raise BadRequest(f"the Scheduler job's body is for schedule {body.schedule!r}", field="schedule")
    if not isinstance(job.get("schedule"), str):
        raise BadRequest("the Scheduler job has no schedule", field="schedule")
    return _Schedule(name=name, job=job, body=body, give_up=give_up_span(job))


def _examine(
    schedule: _Schedule, rest: GoogleRest, report: SweepReport, summary: ScheduleSummary, *, now: datetime, parent: str
) -> list[datetime]:
    """Reports the schedule's missed fire times; returns those to catch up, oldest first.
    A schedule without catch-up has nothing to catch up, and its own next run reports it
    (run_reports.py)."""
    body, job = schedule.body, schedule.job
    if body.catch_up is None:
        return []
    # Without catch_up_since (the deployer writes it), never before the job was written.
    since = latest(body.catch_up_since or _written(job), body.start_time)
    window = (latest(now - body.catch_up, since) or now, now - schedule.give_up)
    # A window shorter than Scheduler's retries must not call a firing missed early.
    last_chance = max(body.catch_up, schedule.give_up)
    if report.reporting is None:
        missed_range = (now, now)  # nothing to report
    else:
        start, end = report.reporting
        missed_range = (latest(start - last_chance, since) or start, end - last_chance)

    def times(start: datetime, end: datetime) -> list[datetime]:
        if body.end_time:
            end = min(end, body.end_time)
        found = fire_times(job["schedule"], job.get("timeZone"), start, end)
        # Which time Scheduler fires in a repeated or skipped hour is not documented: such a
        # time is neither caught up (it could make a second run) nor called missed.
        return [t for t in found if not in_clock_change(job["schedule"], job.get("timeZone"), t)]

    to_catch_up, to_report = times(*window), times(*missed_range)
    looked = [*to_catch_up, *to_report]
    if not looked:
        return []
    runs = runs_since(rest, schedule.name, min(looked))
    have = {run_id(run) for run in runs}
    pending = []
    for moment in to_catch_up:
        if job_id(schedule.name, moment) in have:
            summary.existing += 1
        elif at_limit(runs, moment, body.max_concurrent_runs):
            summary.skipped += 1
        else:
            pending.append(moment)
    for moment in to_report:
        if job_id(schedule.name, moment) not in have and not at_limit(
            runs, moment, body.max_concurrent_runs, within=schedule.give_up
        ):
            summary.missed += 1
            report.lines.append(missed_line(schedule.name, moment, parent, catch_up=True))
    return pending


def _catch_up(
    candidates: list[tuple[datetime, _Schedule]],
    config: Settings,
    rest: GoogleRest,
    specs: SpecStore,
    report: SweepReport,
) -> None:
    failed: set[str] = set()
    # A schedule found at max_concurrent_runs stays there for the rest of this sweep (its
    # runs last longer than one): its later times wait for later sweeps instead of each
    # taking one of the capped attempts and coming back skipped, crowding out the others.
    at_limit: set[str] = set()
    attempts = 0
    for moment, schedule in candidates:
        summary = report.schedules[schedule.name]
        if schedule.name in failed or schedule.name in at_limit:
            continue
        if attempts >= config.catch_up_max_runs:
            summary.capped += 1
            continue
        attempts += 1
        try:
            fired = fire(schedule.body, moment, config=config, rest=rest, specs=specs)
        except TriggerError as exc:
            failed.add(schedule.name)
            _record_error(report, summary, exc)
            continue
        if fired.outcome == "created":
            summary.created += 1
            report.created.append(fired.job)
        elif fired.outcome == "duplicate":
            summary.existing += 1
        else:
            summary.skipped += 1
            at_limit.add(schedule.name)


def _report_failed_runs(
    rest: GoogleRest, report: SweepReport, schedules: set[str], between: tuple[datetime, datetime]
) -> None:
    """The run_failed lines of the schedules with catch-up (run_reports.py: the others'
    own runs report theirs)."""
    start, end = (format_rfc3339(moment) for moment in between)
    runs = rest.list_pipeline_jobs(
        f'labels.{MANAGED_BY_LABEL}="{MANAGED_BY_VALUE}" AND {ended_badly_filter(start, end)}',
        action="listing the runs that failed or were cancelled",
    )
    for run in runs:
        schedule = (run.get("labels") or {}).get(SCHEDULE_LABEL)
        if schedule not in schedules:
            continue  # no catch-up, another function's schedule, or a run vertex-cron made otherwise (Luigi)
        report.schedules[schedule].run_failed += 1
        report.lines.append(run_failed_line(run, schedule))


def report_gap_line(gap: tuple[datetime, datetime]) -> dict[str, Any]:
    """The one line for what no sweep will ever report: older than LOOKBACK when reached."""
    return {
        "severity": "ERROR",
        "message": f"the sweep's run_failed and missed lines for {_range(gap)} were never written: no sweep reported "
        f"them in time, and a sweep looks back at most {LOOKBACK.total_seconds() / 3600:g} h; "
        "`vertex-cron status` shows each schedule's recent firings",
        "outcome": "report_gap",
        "schedule": None,
        "logical_time": None,
        "job": None,
        "error": None,
        "unreported": [format_rfc3339(moment) for moment in gap],
    }


def _range(moments: tuple[datetime, datetime]) -> str:
    return f"[{format_rfc3339(moments[0])}, {format_rfc3339(moments[1])})"


def _record_error(report: SweepReport, summary: ScheduleSummary, exc: TriggerError) -> None:
    summary.error = exc.message if not exc.field else f"{exc.field}: {exc.message}"
    if isinstance(exc, UpstreamUnavailable):
        report.transient_errors += 1
    else:
        report.permanent_errors += 1


def _written(job: Mapping[str, Any]) -> datetime | None:
    """When the job was last written: fire times before it belong to an older schedule."""
    return parse_time(job.get("userUpdateTime"))
