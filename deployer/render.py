"""Command results as text tables or stable JSON (`--format json`). No I/O here.

Times: for people `2026-12-06 03:00:00 CET`, in the schedule's time zone where there is one
(a cron's firings are meant in it), else UTC; in JSON RFC 3339 in UTC (`2026-12-06T02:00:00Z`),
the form the function and Scheduler use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from vertex_cron_trigger.timefmt import format_rfc3339

from .backfill import BackfillReport
from .models import Action, Change, ForcedRun, Kind, PipelineRun, Plan, ScheduleStatus
from .status import Health

_SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.UNCHANGED: "=", Action.DELETE: "-"}
_MAX_VALUE_CHARS = 120
# check_cron refuses expressions that never fire, so no time left means the window is over.
_NO_RUNS_LEFT = "none: no firing left before the schedule's end time"


def plan(result: Plan, fmt: str, *, applied: bool) -> str:
    if fmt == "json":
        return _json(
            {
                "applied": applied,
                "changes": [_change_dict(c) for c in result.changes],
                "next_runs": {n.schedule: [format_rfc3339(t) for t in n.times] for n in result.next_runs},
                "resolved": {p.uri: p.version for p in result.resolved},
            }
        )
    counts = {a: sum(c.action is a for c in result.changes) for a in Action}
    summary = ", ".join(f"{counts[a]} to {a.value}" for a in (Action.CREATE, Action.UPDATE, Action.DELETE))
    title = "Applied" if applied else "Plan (dry run, nothing changed)"
    if not result.mutations:
        title, summary = ("Up to date" if applied else "Plan (dry run)"), "nothing to change"
    lines = [f"{title}: {summary}"]
    if result.resolved:
        lines.append("Pinned (a tag is read once, now; moving it later changes nothing until the next deploy):")
        lines.extend(f"  {p.uri} -> {p.version}" for p in result.resolved)
    for change in result.changes:
        lines.append(
            f"  {_SYMBOL[change.action]} {change.kind.value:<9} {_display_name(change)}  ({change.action.value})"
        )
        if change.action is Action.UPDATE:
            lines.extend(f"      {d.field}: {_diff_text(d.old, d.new)}" for d in change.diffs)
    if result.next_runs:
        lines.append("Next runs:")
        for runs in result.next_runs:
            times = ", ".join(_when(t, _zone_named(runs.time_zone)) for t in runs.times) or _NO_RUNS_LEFT
            lines.append(f"  {runs.schedule}: {times}")
    return "\n".join(lines)


def schedules(statuses: Sequence[ScheduleStatus], fmt: str, *, where: str) -> str:
    """`where` is the project/region listed, named when there is nothing to show."""
    if fmt == "json":
        return _json([_status_dict(s) for s in statuses])
    if not statuses:
        return f"No schedules managed by vertex-cron in {where}."
    header = ("NAME", "CRON", "TIME ZONE", "STATE", "NEXT RUN", "LAST ATTEMPT")
    rows = [
        (
            s.name,
            s.job.fields.get("schedule", ""),
            s.job.fields.get("time_zone", ""),
            s.job.state,
            _when(s.job.next_run, _zone(s)),
            f"{_when(s.job.last_attempt, _zone(s))} {s.job.last_status}" if s.job.last_attempt else "never",
        )
        for s in statuses
    ]
    return table(header, rows)


def schedule(status: ScheduleStatus, fmt: str) -> str:
    data = _status_dict(status)
    if fmt == "json":
        return _json(data)
    body = data.pop("body")
    data.update(
        next_run=_when(status.job.next_run, _zone(status)), last_attempt=_when(status.job.last_attempt, _zone(status))
    )
    lines = [f"{key.replace('_', ' ')}: {value if value is not None else '-'}" for key, value in data.items()]
    lines.append("body:")
    lines.extend(f"  {line}" for line in json.dumps(body, indent=2, sort_keys=True).splitlines())
    return "\n".join(lines)


def state_change(status: ScheduleStatus, fmt: str, *, done: str) -> str:
    """pause/resume: one line saying what happened (`done`: "paused", "resumed")."""
    if fmt == "json":
        return _json(_status_dict(status))
    next_run = f"; next run {_when(status.job.next_run, _zone(status))}" if status.job.state == "ENABLED" else ""
    return f"Schedule {status.name} {done} (Scheduler job {status.job.name.rsplit('/', 1)[-1]} is {status.job.state}){next_run}."


def forced_run(run: ForcedRun, fmt: str, *, following: bool = False) -> str:
    """What `run` started: the firing, the logical time and job id it gets, how to follow it
    (unless `following`: `run --wait` is doing that already); once followed, how it ended
    (the firing itself was shown while waiting)."""
    if fmt == "json":
        return _json(_forced_run_dict(run))
    if run.pipeline_run is not None:
        found = run.pipeline_run
        return (
            f"PipelineJob {found.name} {found.state}, logical time {_when(run.logical_time, _zone_named(run.time_zone))}, "
            f"took {_duration(found)}: {found.console_url}"
        )
    job = run.scheduler_job.rsplit("/", 1)[-1]
    lines = [
        f"Fired schedule {run.schedule} now (Cloud Scheduler runs job {job} at {_when(run.requested_at, _zone_named(run.time_zone))})."
    ]
    lines += [
        "Its logical time is the moment Cloud Scheduler executes it, with milliseconds, so its PipelineJob id",
        f"is known only once it runs: about {run.expected_job_id}, i.e. {run.schedule}-YYYYMMDD-HHMMSS-mmm (UTC).",
    ]
    if not following:
        lines.append(
            f"Follow it: vertex-cron history {run.schedule}   (or fire with `vertex-cron run {run.schedule} --wait`)"
        )
    return "\n".join(lines)


def runs(result: Sequence[PipelineRun], fmt: str, *, schedule: str | None = None) -> str:
    if fmt == "json":
        return _json([_run_dict(r) for r in result])
    if not result:
        return f"No pipeline runs of schedule {schedule} yet." if schedule else "No pipeline runs yet."
    header = ("RUN", "STATE", "STARTED", "DURATION", "LINK")
    rows = [(r.name, r.state, _when(r.start_time or r.create_time, UTC), _duration(r), r.console_url) for r in result]
    return table(header, rows)


def backfill(report: BackfillReport, fmt: str) -> str:
    """Each fire time with its PipelineJob id and, once delivered, what became of it."""
    outcomes = {result.firing: result for result in report.delivered}
    if fmt == "json":
        return _json(
            {
                "schedule": report.schedule,
                "dry_run": not report.delivered,
                "firings": [
                    {
                        "logical_time": format_rfc3339(firing.logical_time),
                        "job": firing.job_id,
                        **(
                            {"outcome": outcomes[firing].outcome, "message": outcomes[firing].message}
                            if firing in outcomes
                            else {}
                        ),
                    }
                    for firing in report.firings
                ],
                **({"counts": report.counts()} if report.delivered else {}),
            }
        )
    zone = ZoneInfo(report.time_zone)
    header = ("FIRE TIME", "RUN", "OUTCOME") if report.delivered else ("FIRE TIME", "RUN")
    rows = [
        (_when(firing.logical_time, zone), firing.job_id) + ((outcomes[firing].outcome,) if report.delivered else ())
        for firing in report.firings
    ]
    lines = [table(header, rows)]
    failures = [result for result in report.delivered if result.outcome in ("failed", "skipped")]
    lines.extend(f"{result.firing.job_id}: {result.message}" for result in failures)
    if report.delivered:
        lines.append(", ".join(f"{count} {outcome}" for outcome, count in report.counts().items()))
    else:
        lines.append(f"Dry run: {len(report.firings)} fire times; nothing was requested.")
    return "\n".join(lines)


def health(schedules: Sequence[Health], fmt: str) -> str:
    """One line per schedule: state, next run, the recent firings as a strip, failures."""
    if fmt == "json":
        return _json([_health_dict(h) for h in schedules])
    if not schedules:
        return "No schedules managed by vertex-cron here."
    width = max(len(h.firings) for h in schedules)
    header = ("SCHEDULE", "STATE", "NEXT RUN", f"LAST {width}".ljust(width), "FAILING", "LAST ERROR")
    rows = [
        (
            h.schedule,
            h.state,
            _when(h.next_run, _zone_named(h.time_zone)) if h.next_run and h.state == "ENABLED" else "-",
            h.strip or "-",
            str(h.consecutive_failures),
            _short(f"{h.last_error.name}: {h.last_error.error or h.last_error.state}") if h.last_error else "-",
        )
        for h in schedules
    ]
    legend = "oldest to newest: ✓ succeeded  ✗ failed or cancelled  ▸ running  · no run (missed or skipped)"
    return f"{table(header, rows)}\n{legend}"


def _health_dict(h: Health) -> dict[str, Any]:
    return {
        "schedule": h.schedule,
        "state": h.state,
        "next_run": format_rfc3339(h.next_run) if h.next_run else None,
        "firings": [
            {"logical_time": format_rfc3339(f.logical_time), "job": f.job_id, "state": f.state} for f in h.firings
        ],
        "consecutive_failures": h.consecutive_failures,
        "last_error": {"job": h.last_error.name, "message": h.last_error.error} if h.last_error else None,
    }


def _change_dict(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind.value,
        "name": change.name,
        "action": change.action.value,
        "diffs": [{"field": d.field, "old": d.old, "new": d.new} for d in change.diffs]
        if change.action is Action.UPDATE
        else [],
    }


def _status_dict(status: ScheduleStatus) -> dict[str, Any]:
    fields = status.job.fields
    return {
        "name": status.name,
        "job": status.job.name,
        "cron": fields.get("schedule"),
        "time_zone": fields.get("time_zone"),
        "state": status.job.state,
        "next_run": _iso(status.job.next_run),
        "last_attempt": _iso(status.job.last_attempt),
        "last_status": status.job.last_status,
        "spec_uri": status.body.get("spec_uri"),
        "function_url": fields.get("http_target.uri"),
        "invoker": fields.get("http_target.oidc_token.service_account_email"),
        "body": status.body,
    }


def _forced_run_dict(run: ForcedRun) -> dict[str, Any]:
    return {
        "schedule": run.schedule,
        "scheduler_job": run.scheduler_job,
        "requested_at": format_rfc3339(run.requested_at),
        # Exact only once the run exists: Scheduler stamps the firing when it executes it.
        "job_id": run.pipeline_run.name if run.pipeline_run else None,
        "expected_job_id": run.expected_job_id,
        "logical_time": _iso(run.logical_time),
        "run": _run_dict(run.pipeline_run) if run.pipeline_run else None,
        "follow": f"vertex-cron history {run.schedule}",
    }


def _run_dict(run: PipelineRun) -> dict[str, Any]:
    return {
        "name": run.name,
        "state": run.state,
        "create_time": _iso(run.create_time),
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "duration_seconds": _seconds(run),
        "console_url": run.console_url,
    }


def _display_name(change: Change) -> str:
    if change.kind is Kind.SPEC:
        return change.name  # the object name: its sha256 is the point
    name = change.name.rsplit("/", 1)[-1]
    return f"roles/run.invoker on {name}" if change.kind is Kind.INVOKER else name


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, as wide as their widest cell; no trailing spaces."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _seconds(run: PipelineRun) -> float | None:
    if run.start_time and run.end_time:
        return (run.end_time - run.start_time).total_seconds()
    return None


def _duration(run: PipelineRun) -> str:
    seconds = _seconds(run)
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m{secs:02d}s" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def _zone(status: ScheduleStatus) -> tzinfo:
    return _zone_named(status.job.fields.get("time_zone"))


def _zone_named(name: str | None) -> tzinfo:
    """A schedule's time zone (its firings are meant in it); UTC when it names none we know."""
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):  # not an IANA name (a job edited by hand): UTC is still right
        return UTC


def _when(moment: datetime | None, zone: tzinfo) -> str:
    """For people: `2026-12-06 03:00:00 CET`."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "-"


def _iso(moment: datetime | None) -> str | None:
    return format_rfc3339(moment) if moment else None


def _diff_text(old: Any, new: Any) -> str:
    """`old -> new`; for member lists (IAM), which members go and which come, in full."""
    if isinstance(new, list) and isinstance(old, list | None):
        removed = [m for m in old or () if m not in new]
        added = [m for m in new if m not in (old or ())]
        parts = [f"remove {', '.join(map(str, removed))}"] if removed else []
        parts += [f"add {', '.join(map(str, added))}"] if added else []
        return "; ".join(parts) or f"{_short(old)} -> {_short(new)}"
    return f"{_short(old)} -> {_short(new)}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)
