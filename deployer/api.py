"""The Python API: everything the CLI does, usable on its own.

    from vertex_cron import api, config
    settings = config.resolve({}, os.environ, config.load_file_values(None, cwd=Path.cwd()))
    plan = api.deploy(settings, ScheduleInput("nightly", Path("pipeline.json"), "0 3 * * *"))

Mutating functions plan, then hand the plan to an ``executor`` (executor.py): APPLY by
default; ``executor=DRY_RUN`` shows the steps and changes nothing, the plan computed from
read-only calls. ``cloud`` is the seam (seam.py: DeployCloud for plan/apply/delete,
RunsCloud for the rest); it defaults to a GoogleCloud for the settings (built lazily);
tests pass one with tight polling, or an in-memory fake.

`apply` and `deploy` first look and plan without writing anything; only when there is
something to change do they take the project+region's lease (lease.py), look again and
apply, so concurrent runs take turns and an unchanged deploy writes nothing. `delete`
holds the lease from its first look (without a bucket setting it has none to take). A
function that an operation started before this run is still changing (DEPLOYING,
DELETING) is waited for before it is compared or deleted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from vertex_cron_trigger.pipeline_job import job_id
from vertex_cron_trigger.template_uri import TemplateUri
from vertex_cron_trigger.timefmt import format_rfc3339

from . import backfill as backfills
from . import cronexpr, function_source, lease, planner, spec_file, validation
from . import desired as desired_state
from . import status as schedule_health
from .config import DEFAULT_BACKFILL_RUNS, DEFAULT_FIRINGS, DEFAULT_HISTORY, DeployerSettings
from .errors import NotFound, RunFailed, Unavailable, ValidationError
from .executor import APPLY, Executor, short_name
from .gcp import GoogleCloud
from .models import (
    BUSY_STATES,
    JOB_DESCRIPTION,
    Desired,
    ForcedRun,
    Kind,
    Observed,
    ObservedJob,
    PipelineRun,
    Plan,
    PublishedSpec,
    ScheduleInput,
    ScheduleStatus,
    location,
    spec_prefix,
)
from .observe import managed_jobs, observe
from .progress import Progress
from .seam import DeployCloud, RunsCloud

FOLLOW_POLL_SECONDS = 5.0
# How long `follow` waits for a forced firing's PipelineJob to appear: Scheduler's six
# attempts (240 s deadline each) and the 75 s backoffs between them (desired.RETRY) fit in it.
FOLLOW_APPEAR_SECONDS = 35 * 60
# This machine's clock and Scheduler's differ; a forced run stamped up to this long before
# the request was sent is still taken for it.
_CLOCK_SKEW = timedelta(minutes=1)
# A backfilled firing waits for the function as long as Cloud Scheduler waits for an attempt.
_ATTEMPT_SECONDS = float(desired_state.ATTEMPT_DEADLINE.removesuffix("s"))
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


def deploy(
    settings: DeployerSettings,
    schedule: ScheduleInput,
    *,
    executor: Executor = APPLY,
    cloud: DeployCloud | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Plan:
    """Create or update one schedule (and the shared function it calls)."""
    return apply(settings, [schedule], executor=executor, cloud=cloud, progress=progress, now=now)


def apply(
    settings: DeployerSettings,
    schedules: Sequence[ScheduleInput],
    *,
    prune: bool = False,
    executor: Executor = APPLY,
    cloud: DeployCloud | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Plan:
    """Converge the cloud on `schedules`; with `prune`, delete managed schedules not listed.

    A spec given as an Artifact Registry URI is read first, with the deployer's credentials:
    a tag is resolved to its version here, once, and the schedule is pinned to that version."""
    deployment = settings.deployment()
    desired_state.check_inputs(deployment, schedules)
    cloud = cloud or GoogleCloud(settings)
    published = _published(cloud, schedules)
    built = desired_state.build(deployment, schedules, source=function_source.build(), prune=prune, published=published)
    resolved = tuple(p for p in published.values() if p.uri != p.pinned_uri)
    progress = progress or Progress()
    now = now or datetime.now(UTC)
    observed = observe(cloud, built)
    wanted = _resolved(built, observed, now)
    plan = replace(planner.plan(wanted, observed, now=now), resolved=resolved)
    if not executor.writes or not (plan.mutations or _busy(observed)):
        executor(plan, cloud, progress)  # an unchanged deploy writes nothing, not even the lease
        return plan
    with _lease(cloud, settings, "apply", progress):
        observed = _observe_settled(cloud, built, progress)  # afresh: another run may have just finished
        plan = replace(plan, changes=planner.changes(_resolved(built, observed, now), observed))
        executor(plan, cloud, progress)
    return plan


def _resolved(built: Desired, observed: Observed, now: datetime) -> Desired:
    """`built` resolved against what exists: catch-up (its start, the sweep's job), who
    invokes the function, where runs may write. A catch-up schedule on another function than
    the region's other catch-up schedules is refused (before any write)."""
    planner.check_one_sweep_function(built, observed)
    wanted = desired_state.with_catch_up(built, observed.jobs, now=now)
    return planner.with_pipeline_root_buckets(planner.with_invokers(wanted, observed), observed)


def _busy(observed: Observed) -> bool:
    return observed.function is not None and observed.function.state in BUSY_STATES


def _observe_settled(cloud: DeployCloud, wanted: Desired, progress: Progress) -> Observed:
    """What exists, once no operation runs on the function any more: a build or delete
    started before this run (whose answer was lost, or by another tool) is waited for,
    so the plan compares the function as it ends up, not as it is mid-way."""
    observed = observe(cloud, wanted)
    function = observed.function
    if function is None or not _busy(observed):
        return observed
    progress.step(
        f"function {short_name(function.name)} is {function.state}: an operation started before this run "
        "is still running; waiting for it"
    )
    cloud.wait_for_function(function.name, tick=progress.tick)
    return observe(cloud, wanted)


def _lease(
    cloud: DeployCloud, settings: DeployerSettings, command: str, progress: Progress
) -> AbstractContextManager[None]:
    bucket, project, region = settings.bucket, settings.project, settings.region
    if not (bucket and project and region):
        return nullcontext()
    return lease.held(
        cloud, bucket, project, region, command=command, progress=progress, poll_seconds=cloud.poll_interval
    )


def _published(cloud: DeployCloud, schedules: Sequence[ScheduleInput]) -> dict[str, PublishedSpec]:
    uris = {str(s.spec): s.spec for s in schedules if isinstance(s.spec, TemplateUri)}
    return {
        text: cloud.published_pipeline(uri, max_bytes=spec_file.SPEC_LIMIT_BYTES) for text, uri in sorted(uris.items())
    }


def list_schedules(settings: DeployerSettings, *, cloud: RunsCloud | None = None) -> list[ScheduleStatus]:
    settings.project_region()  # refused before any call when either is missing
    jobs = managed_jobs(cloud or GoogleCloud(settings))
    return sorted(
        (ScheduleStatus(schedule, job) for name, job in jobs.items() if (schedule := desired_state.schedule_of(name))),
        key=lambda status: status.name,
    )


def describe(settings: DeployerSettings, name: str, *, cloud: RunsCloud | None = None) -> ScheduleStatus:
    return ScheduleStatus(name, _managed_job(settings, name, cloud or GoogleCloud(settings)))


def pause(settings: DeployerSettings, name: str, *, cloud: RunsCloud | None = None) -> ScheduleStatus:
    return ScheduleStatus(name, _job_action(settings, name, "pause_job", cloud or GoogleCloud(settings)))


def resume(
    settings: DeployerSettings,
    name: str,
    *,
    catch_up: bool = False,
    cloud: RunsCloud | None = None,
    now: datetime | None = None,
) -> ScheduleStatus:
    """Resume a schedule. Its fire times while paused are not caught up, nor reported
    missed: a paused schedule's `catch_up_since` moves to now first, so neither the sweep
    nor its next run reaches back into the pause. With `catch_up` it is left as it was, so the next sweeps catch those times
    up, as far back as the schedule's catch_up window reaches; a schedule without catch-up
    is refused (a backfill requests any range of fire times)."""
    cloud = cloud or GoogleCloud(settings)
    job = _managed_job(settings, name, cloud)
    body = job.fields.get("http_target.body")
    if catch_up and not desired_state.uses_catch_up(body):
        raise ValidationError(
            f"schedule {name} has no catch_up window, so nothing would catch up its paused fire times",
            details=f"redeploy it with --catch-up DURATION, or request them with `vertex-cron backfill {name} "
            "--from RFC3339 --to RFC3339`",
        )
    if not catch_up and job.state == "PAUSED" and isinstance(body, dict):
        since = format_rfc3339((now or datetime.now(UTC)).replace(microsecond=0))
        target = {field: value for field, value in job.fields.items() if field.startswith("http_target.")}
        target["http_target.body"] = {**body, desired_state.CATCH_UP_SINCE: since}
        try:
            cloud.update_job(job.name, target, ["http_target"])
        except NotFound as exc:  # deleted meanwhile
            raise _no_such_schedule(settings, name) from exc
    return ScheduleStatus(name, _job_action(settings, name, "resume_job", cloud), was_paused=job.state == "PAUSED")


def run(settings: DeployerSettings, name: str, *, cloud: RunsCloud | None = None) -> ForcedRun:
    """Fire now. Scheduler sends the moment it executes the job, with milliseconds, as the
    logical time, so a forced run gets its own PipelineJob id and is never deduplicated
    against a firing. That moment is Scheduler's, so the id is only expected here (the one
    for the time of the request); `follow` finds the real one."""
    cloud = cloud or GoogleCloud(settings)
    job = _managed_job(settings, name, cloud)
    before = frozenset(r.name for r in cloud.pipeline_runs(name, limit=DEFAULT_HISTORY))
    requested = datetime.now(UTC)
    job = _job_action(settings, name, "run_job", cloud)
    return ForcedRun(
        schedule=name,
        scheduler_job=job.name,
        cron=job.fields.get("schedule") or "",
        time_zone=job.fields.get("time_zone") or "UTC",
        requested_at=requested,
        expected_job_id=job_id(name, requested),
        runs_before=before,
    )


def follow(
    settings: DeployerSettings,
    forced: ForcedRun,
    *,
    cloud: RunsCloud | None = None,
    progress: Progress | None = None,
    poll_seconds: float | None = None,
    appear_seconds: float = FOLLOW_APPEAR_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> ForcedRun:
    """Wait for the forced run's PipelineJob and until it ends; RunFailed unless it SUCCEEDED.

    The forced run is a PipelineJob of the schedule that did not exist before the request,
    whose logical time (in its id) is not before the request (less clock skew) and is no
    firing of the cron (scheduled firings fall on whole minutes the cron matches, a forced one
    at the millisecond Scheduler executed it); of several, the one nearest the request."""
    cloud = cloud or GoogleCloud(settings)
    poll_seconds = poll_seconds or settings.poll_seconds or FOLLOW_POLL_SECONDS
    progress = progress or Progress()
    progress.step(f"waiting for the PipelineJob of the forced run of {forced.schedule}")
    waited, state, found = 0.0, "", None
    while found is None or found.state not in FINAL_STATES:
        candidates = [
            (moment, run)
            for run in cloud.pipeline_runs(forced.schedule, limit=DEFAULT_HISTORY)
            if (moment := _forced_run_time(forced, run)) is not None
        ]
        if candidates:  # several forced runs close together: the one nearest the request is ours
            found = min(candidates, key=lambda pair: abs(pair[0] - forced.requested_at))[1]
        if found is not None and found.state != state:
            state = found.state
            progress.step(f"PipelineJob {found.name}: {state}")
        if found is None and waited >= appear_seconds:
            progress.finish()
            raise RunFailed(
                f"no PipelineJob of the forced run of {forced.schedule} appeared within {appear_seconds / 60:.0f} min",
                details=f"`vertex-cron describe {forced.schedule}` shows the Scheduler job's last attempt and its status",
            )
        if found is None or found.state not in FINAL_STATES:
            sleep(poll_seconds)
            waited += poll_seconds
            progress.tick(waited)
    progress.finish()
    result = replace(forced, pipeline_run=found, logical_time=_logical_time(forced.schedule, found.name))
    if found.state != "SUCCEEDED":
        raise RunFailed(
            f"PipelineJob {found.name} of the forced run of {forced.schedule} ended {found.state}"
            + (f": {found.error}" if found.error else ""),
            details=f"its logs: {found.console_url}",
        )
    return result


def delete(
    settings: DeployerSettings,
    names: Sequence[str],
    *,
    purge: bool = False,
    executor: Executor = APPLY,
    cloud: DeployCloud | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Delete schedules; the shared function goes with the last schedule that calls it.

    With `purge`, also the spec objects of this project+region that no remaining schedule
    here references (planner.plan_delete says which objects qualify).

    A named schedule whose job is already gone counts as deleted while something besides
    jobs is left to clean up (the function, with `purge` spec objects), so a delete that
    failed half-way can be re-run; otherwise it is "no schedule named", and nothing is
    deleted (a typo next to a real name deletes nothing)."""
    where = settings.project_region()
    # Spec objects are deleted only with `purge`, which needs the bucket.
    bucket = settings.spec_bucket() if purge else settings.bucket or ""
    names = list(dict.fromkeys(names))
    jobs = [_job_name(settings, name) for name in names]
    cloud = cloud or GoogleCloud(settings)
    progress = progress or Progress()
    with _lease(cloud, settings, "delete", progress) if executor.writes else nullcontext():
        managed = managed_jobs(cloud)
        function = cloud.get_function(desired_state.function_name(where.project, where.region, settings.function_name))
        plan = planner.plan_delete(
            [job for job in jobs if job in managed],
            managed,
            function=function,
            spec_objects=(cloud.spec_objects(bucket, spec_prefix(where.project, where.region)) if purge else ()),
            location=location(where.project, where.region),
            bucket=bucket,
            purge=purge,
        )
        missing = next((name for name, job in zip(names, jobs, strict=True) if job not in managed), None)
        if missing and all(change.kind is Kind.JOB for change in plan.changes):
            raise _no_such_schedule(settings, missing)
        executor(plan, cloud, progress)
    return plan


def history(
    settings: DeployerSettings, name: str, *, limit: int = DEFAULT_HISTORY, cloud: RunsCloud | None = None
) -> list[PipelineRun]:
    """The schedule's most recent PipelineJobs, newest first. A deleted schedule's runs are
    still its history; a name with neither runs nor a schedule is NotFound, like `describe`."""
    settings.project_region()  # refused before any call when either is missing
    validation.check_schedule_name(name)
    cloud = cloud or GoogleCloud(settings)
    runs = cloud.pipeline_runs(name, limit=limit)
    if not runs:
        _managed_job(settings, name, cloud)
    return runs


def backfill(
    settings: DeployerSettings,
    name: str,
    *,
    start: datetime,
    end: datetime,
    max_runs: int = DEFAULT_BACKFILL_RUNS,
    dry_run: bool = False,
    cloud: RunsCloud | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    retry_seconds: float = 5.0,
) -> backfills.BackfillReport:
    """Request the run of every fire time of schedule NAME in [start, end): delivered to its
    function as Cloud Scheduler delivers a firing (see backfill.py), one at a time, so a time
    that already ran is reported as existing and never runs twice. Transient failures (429,
    5xx, no answer) are retried a few times; what still fails is reported, and re-running the
    same backfill finishes it."""
    cloud = cloud or GoogleCloud(settings)
    job = _managed_job(settings, name, cloud)
    body = job.fields.get("http_target.body")
    if not isinstance(body, dict):
        raise NotFound(f"schedule {name!r} has no vertex-cron body", details="redeploy it with `vertex-cron deploy`")
    firings = backfills.firings(name, body, start=start, end=end, max_runs=max_runs, now=now or datetime.now(UTC))
    report = backfills.BackfillReport(name, str(body["time_zone"]), firings)
    if dry_run:
        return report
    progress = progress or Progress()
    target = _Target(cloud, job.fields, desired_state.encode_body(body))
    delivered = []
    for number, firing in enumerate(firings, start=1):
        progress.step(f"backfill {name}: {number}/{len(firings)} {format_rfc3339(firing.logical_time)}")
        delivered.append(target.deliver(firing, retry_seconds=retry_seconds))
    progress.finish()
    return backfills.BackfillReport(name, report.time_zone, firings, tuple(delivered))


class _Target:
    """The function a job fires at, reached as that job's OIDC identity (a token minted
    once and renewed well before Google's one-hour lifetime)."""

    _TOKEN_SECONDS = 30 * 60
    _ATTEMPTS = 4

    def __init__(self, cloud: RunsCloud, fields: Mapping[str, Any], body: bytes) -> None:
        self._cloud, self._body = cloud, body
        self._url = str(fields.get("http_target.uri"))
        self._email = str(fields.get("http_target.oidc_token.service_account_email"))
        # Cloud Scheduler's audience: the configured one, else the target URI.
        self._audience = str(fields.get("http_target.oidc_token.audience") or self._url)
        self._token, self._minted = "", -float(self._TOKEN_SECONDS)

    def deliver(self, firing: backfills.Firing, *, retry_seconds: float) -> backfills.Delivered:
        answer: tuple[str, str] = ("failed", "not delivered")
        for attempt in range(self._ATTEMPTS):
            if attempt:
                time.sleep(retry_seconds * 2 ** (attempt - 1))
            if time.monotonic() - self._minted > self._TOKEN_SECONDS:
                self._token, self._minted = self._cloud.id_token(self._email, self._audience), time.monotonic()
            try:
                status, document = self._cloud.deliver_firing(
                    self._url, self._body, format_rfc3339(firing.logical_time), self._token, timeout=_ATTEMPT_SECONDS
                )
            except Unavailable as exc:
                answer = ("failed", f"{exc.reason} ({exc.details})")
                continue
            answer = backfills.outcome(status, document)
            if status == 401:
                self._minted = -float(self._TOKEN_SECONDS)  # a fresh token for the next attempt
            if status not in _TRANSIENT_STATUSES:
                break
        return backfills.Delivered(firing, *answer)


# What Cloud Scheduler retries too: the function answers 503 for transient upstream failures.
_TRANSIENT_STATUSES = frozenset({401, 408, 429, 500, 502, 503, 504})


def status(
    settings: DeployerSettings,
    names: Sequence[str] = (),
    *,
    count: int = DEFAULT_FIRINGS,
    cloud: RunsCloud | None = None,
    now: datetime | None = None,
) -> list[schedule_health.Health]:
    """Each managed schedule's (or each named one's) state, next run and last `count` fire
    times with what became of them (status.py says how fire times meet runs)."""
    settings.project_region()  # refused before any call when either is missing
    cloud = cloud or GoogleCloud(settings)
    jobs = {
        schedule: job
        for name, job in managed_jobs(cloud).items()
        if (schedule := desired_state.schedule_of(name)) is not None
    }
    for name in names:
        if validation.check_schedule_name(name) not in jobs:
            raise _no_such_schedule(settings, name)
    wanted = sorted(set(names) or set(jobs))
    moment = now or datetime.now(UTC)
    # Enough runs to cover the fire times plus forced runs and retries of a busy schedule.
    limit = min(100, 4 * count)
    runs = _runs_by_schedule(cloud, [jobs[name] for name in wanted], names, count=count, now=moment)
    return [
        schedule_health.health(name, jobs[name], runs.get(name, [])[:limit], count=count, now=moment) for name in wanted
    ]


def _runs_by_schedule(
    cloud: RunsCloud, jobs: Sequence[ObservedJob], names: Sequence[str], *, count: int, now: datetime
) -> dict[str, list[PipelineRun]]:
    """The runs of the schedules created since the oldest fire time status shows of any of
    them, by schedule, newest first: one listing (paged) whatever the number of schedules."""
    oldest = [t for job in jobs if (t := schedule_health.earliest_fire_time(job, count=count, now=now)) is not None]
    if not oldest:
        return {}
    by_schedule: dict[str, list[PipelineRun]] = {}
    for run in cloud.recent_pipeline_runs(since=min(oldest) - _CLOCK_SKEW, schedules=sorted(set(names))):
        if run.schedule:
            by_schedule.setdefault(run.schedule, []).append(run)
    return by_schedule


def _job_action(settings: DeployerSettings, name: str, action: str, cloud: RunsCloud) -> ObservedJob:
    job = _managed_job(settings, name, cloud)
    try:
        observed: ObservedJob = getattr(cloud, action)(job.name)
        return observed
    except NotFound as exc:  # deleted meanwhile
        raise _no_such_schedule(settings, name) from exc


_FORCED_ID_TIME = re.compile(r"([0-9]{8}-[0-9]{6})(?:-([0-9]{3}))?")


def _logical_time(schedule: str, run_id: str) -> datetime | None:
    """The logical time a job id of this schedule was made from (pipeline_job.job_id)."""
    match = _FORCED_ID_TIME.fullmatch(run_id.removeprefix(f"{schedule}-"))
    if not run_id.startswith(f"{schedule}-") or not match:
        return None
    moment = datetime.strptime(match[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    return moment + timedelta(milliseconds=int(match[2] or 0))


def _forced_run_time(forced: ForcedRun, run: PipelineRun) -> datetime | None:
    """The run's logical time if it may be the forced run (see `follow`), else None."""
    moment = _logical_time(forced.schedule, run.name)
    if (
        run.name in forced.runs_before
        or moment is None
        or moment < forced.requested_at - _CLOCK_SKEW
        or cronexpr.is_fire_time(forced.cron, forced.time_zone, moment)
    ):
        return None
    return moment


def _managed_job(settings: DeployerSettings, name: str, cloud: RunsCloud) -> ObservedJob:
    """The job of schedule `name`; a job of that name vertex-cron did not create (its
    description is not the marker `list` goes by) is no schedule, and is left alone."""
    job = cloud.get_job(_job_name(settings, name))
    if job is None:
        raise _no_such_schedule(settings, name)
    if job.fields.get("description") != JOB_DESCRIPTION:
        raise NotFound(
            f"no schedule named {name!r} in {settings.project}/{settings.region}: the Scheduler job "
            f"{job.name.rsplit('/', 1)[-1]} there is not managed by vertex-cron",
            details=f"vertex-cron acts only on jobs it created (description {JOB_DESCRIPTION!r}); "
            "manage this one with `gcloud scheduler jobs`",
        )
    return job


def _job_name(settings: DeployerSettings, name: str) -> str:
    where = settings.project_region()
    return desired_state.job_name(where.project, where.region, validation.check_schedule_name(name))


def _no_such_schedule(settings: DeployerSettings, name: str) -> NotFound:
    return NotFound(
        f"no schedule named {name!r} in {settings.project}/{settings.region}",
        details="`vertex-cron list` shows the schedules vertex-cron manages there",
    )
