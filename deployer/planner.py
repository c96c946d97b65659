"""Desired + Observed -> Plan. Pure: no I/O, no clock (``now`` is passed in).

Each resource becomes one Change: create, update (with the fields that differ), unchanged
or delete. A Plan whose changes are all unchanged is applied with zero mutating calls.
Each change that is not unchanged carries its step (models.Step): the whole call it makes,
with every field it sends. What only an earlier step of the plan produces (a new spec's
generation, a new function's URL and Cloud Run service) is a models.Pending reference in
it, resolved by the executor when the step runs; so the executor runs the plan alone.
Jobs are planned alike whatever they are for: a desired job is its name and field map.

Who may invoke the shared function. Several schedules share one function, and each job
calls it as the scheduler SA it was deployed with. The function's invokers (the
roles/run.invoker members of its Cloud Run service, and the function's own allowlist
VERTEX_CRON_ALLOWED_INVOKERS) are exactly the scheduler SAs of the managed jobs that call
it once this plan is applied: the configured scheduler SA (every job written now uses it)
plus that of each other managed job in the region whose target is this function (except
those `apply --prune` deletes). Any other member of that role is removed; other
roles are left alone. So after the scheduler SA is rotated, the old one keeps invoking
for the jobs not yet redeployed, and goes with the last of them (a job rewritten by the
same apply switches to the new SA moments after the invoker update; a firing in between
is refused and retried by Scheduler). `with_invokers` computes that set.

Where runs may write. Likewise the function's VERTEX_CRON_PIPELINE_ROOT_BUCKETS holds the
buckets of the pipeline roots of every managed job that calls it once the plan is applied
(`with_pipeline_root_buckets`): deploying one schedule keeps the others' buckets.

Comparisons are made in the servers' normal form (normal_form.py): what vertex-cron would
send and what it reads back are both normalized, field by field, before they are compared,
so a field the server stores in its own way is not a change.

The function's audience. Every job's OIDC token carries the function's URL as its audience,
and the function's VERTEX_CRON_AUDIENCE names that same URL. A function that does not
serve yet has no URL: it is created (or rebuilt) without the variable, then updated with
it as a second function change, before any job is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from vertex_cron_trigger.spec_uri import bucket_of, gcs_directory_problem
from vertex_cron_trigger.timefmt import parse_rfc3339

from . import cronexpr, normal_form
from . import desired as desired_state
from .desired import (
    AUDIENCE_VARIABLE,
    PIPELINE_ROOT_BUCKETS,
    is_sweep_job,
    job_fields,
    pinned_spec_uri,
    schedule_of,
    sweep_job_name,
    uses_catch_up,
)
from .errors import ValidationError
from .models import (
    FUNCTION_SERVICE,
    FUNCTION_URL,
    INVOKER_ROLE,
    MANAGED_BY,
    SPEC_LOCATION_KEY,
    SPEC_MANAGED_BY_KEY,
    Action,
    Change,
    DeleteFunction,
    DeleteJob,
    DeleteSpec,
    DeployFunction,
    Desired,
    FieldChange,
    Kind,
    NextRuns,
    Observed,
    ObservedFunction,
    ObservedJob,
    Pending,
    Plan,
    SetInvokers,
    SpecObject,
    StoredSpec,
    UploadSpec,
    WriteJob,
)

# Maps others may add entries to (by hand, or a server's own entries normal_form does not
# know of): only the keys vertex-cron sets count, plus stale VERTEX_CRON_* variables.
_OPEN_MAPS = frozenset({"labels", "http_target.headers", "service_config.environment_variables"})
_OWNED_PREFIX = "VERTEX_CRON_"
OIDC_EMAIL = "http_target.oidc_token.service_account_email"
# Cloud Run service URLs (cloud.google.com/run/docs/triggering/https-request#deterministic).
_SERVICE_URL = re.compile(
    r"https://(?P<service>[a-z][a-z0-9-]*?)-(?:[a-z0-9]{10}-[a-z]{1,4}\.a|[0-9]+\.[a-z]+-[a-z]+[0-9]+)\.run\.app/?"
)


def with_invokers(desired: Desired, observed: Observed) -> Desired:
    """`desired` with its invokers resolved against what exists (see the module docstring)."""
    emails = {desired.scheduler_sa}
    for job in _other_callers(desired, observed):
        email = job.fields.get(OIDC_EMAIL)
        if isinstance(email, str) and email:
            emails.add(email)
    return desired_state.with_invokers(desired, emails)


def with_pipeline_root_buckets(desired: Desired, observed: Observed) -> Desired:
    """`desired` whose function also lets the other managed jobs that call it write to their
    pipeline roots' buckets: deploying one schedule must not make another's firings refused."""
    buckets = set(desired.function.fields["service_config.environment_variables"][PIPELINE_ROOT_BUCKETS].split(","))
    for job in _other_callers(desired, observed):
        root = (job.fields.get("http_target.body") or {}).get("pipeline_root")
        if isinstance(root, str) and gcs_directory_problem(root) is None:
            buckets.add(bucket_of(root))
    return desired_state.with_pipeline_root_buckets(desired, buckets)


def _other_callers(desired: Desired, observed: Observed) -> Iterator[ObservedJob]:
    """The managed jobs that call the function once the plan is applied, other than those it writes."""
    written = {job.name for job in desired.jobs}
    for name, job in observed.jobs.items():
        if name in written or is_sweep_job(name) or desired.prune:
            continue  # rewritten now, the sweep's (wanted or deleted by this plan), or deleted by this plan
        if _calls(job, observed.function):
            yield job


def check_one_sweep_function(desired: Desired, observed: Observed) -> None:
    """Refuse a catch-up schedule on another function than the region's other catch-up
    schedules: the region has one sweep job (vertex_cron_trigger.catch_up.SWEEP_JOB), it calls
    one function, and that function sweeps only the schedules that call it, so moving the
    sweep would leave the others unswept."""
    catching_up = [job.schedule for job in desired.jobs if job.schedule and uses_catch_up(job.body)]
    if not catching_up or desired.prune:  # with --prune the file's schedules are all there will be
        return
    mine = desired.function.name.rsplit("/", 1)[-1]
    written = {job.name for job in desired.jobs}
    for name, job in sorted(observed.jobs.items()):
        if name in written or schedule_of(name) is None or not uses_catch_up(job.fields.get("http_target.body")):
            continue
        other = job.fields.get("http_target.uri")
        # By name too: a function that failed to build, or was deleted by hand, has no URL to match.
        if not _calls(job, observed.function) and function_at(other) != mine:
            named = function_at(other)
            use, flag = (
                (f"the function {named}", f"--function-name {named}")
                if named
                else (f"another function (at {other})", "that function's --function-name")
            )
            raise ValidationError(
                f"schedule {catching_up[0]}: the catch-up schedules of {desired.region} (e.g. {schedule_of(name)}) "
                f"use {use}, and the region's one catch-up sweep serves them all; deploy it with {flag}, "
                "or without catch-up"
            )


def function_at(url: object) -> str | None:
    """The name of the function serving at `url`, a Cloud Run service URL (its hash-based
    https://SERVICE-HASH-REGIONCODE.a.run.app or deterministic
    https://SERVICE-PROJECTNUMBER.REGION.run.app form); None when it is neither."""
    match = _SERVICE_URL.fullmatch(str(url))
    return match["service"] if match else None


def plan(desired: Desired, observed: Observed, *, now: datetime) -> Plan:
    return Plan(changes(desired, observed), tuple(next_runs(desired, now)))


def changes(desired: Desired, observed: Observed) -> tuple[Change, ...]:
    """The plan's changes alone (its next runs depend on `desired` only, and cost a cron walk
    per schedule: api.apply plans twice and reuses them)."""
    planned = [
        _spec_change(desired.bucket, spec, observed.spec_generations.get(spec.object_name)) for spec in desired.specs
    ]
    url = function_url(observed.function)
    planned.extend(_function_changes(desired, observed.function, url))
    planned.append(_invoker_change(desired, observed.function, observed.invoker_members))
    for job in desired.jobs:
        if _sweep_of_another_function(job.name, desired, observed):
            planned.append(Change(Kind.JOB, job.name, Action.UNCHANGED))
            continue
        wanted = job_fields(job, spec_uri=pinned_spec_uri(job, observed.spec_generations), url=url)
        planned.append(_job_change(job.name, wanted, observed.jobs.get(job.name)))
    wanted_jobs = {job.name for job in desired.jobs}
    if desired.prune:
        planned.extend(
            _deletion(Kind.JOB, name, DeleteJob(name))
            for name in sorted(observed.jobs)
            if name not in wanted_jobs and schedule_of(name)
        )
    sweep = sweep_job_name(desired.project, desired.region)
    if sweep in observed.jobs and sweep not in wanted_jobs:  # no schedule uses catch-up any more
        planned.append(_deletion(Kind.JOB, sweep, DeleteJob(sweep)))
    return tuple(planned)


def _sweep_of_another_function(name: str, desired: Desired, observed: Observed) -> bool:
    """Whether `name` is the deployed sweep's job, wanted only for catch-up schedules this plan
    leaves alone, calling another function than this plan's: it stays as it is, since the
    function it calls sweeps those schedules (check_one_sweep_function keeps them on one)."""
    deployed = observed.jobs.get(name)
    return (
        is_sweep_job(name)
        and deployed is not None
        and not any(job.schedule and uses_catch_up(job.body) for job in desired.jobs)
        and not _calls(deployed, observed.function)
    )


def plan_delete(
    schedules: Sequence[str],
    observed_jobs: Mapping[str, ObservedJob],
    *,
    function: ObservedFunction | None,
    spec_objects: Iterable[StoredSpec] = (),
    location: str = "",
    bucket: str = "",
    purge: bool = False,
) -> Plan:
    """Delete the named jobs (full names); `observed_jobs` holds every managed job of `location`
    (projects/P/locations/R); `bucket` is where `spec_objects` were listed.

    The shared function goes when no remaining job calls it. With `purge`, so do the spec
    objects that no remaining job references, among `spec_objects` (those listed under
    the location's own prefix, models.spec_prefix): only objects whose metadata says
    vertex-cron uploaded them for this very location. Specs elsewhere in the bucket, e.g.
    another region's, and objects without that metadata (uploaded by hand, or by a version
    of vertex-cron that did not record it) are never deleted.
    """
    remaining = [job for name, job in observed_jobs.items() if name not in schedules and not is_sweep_job(name)]
    changes = [_deletion(Kind.JOB, name, DeleteJob(name)) for name in schedules]
    deletes_function = function is not None and not any(_calls(job, function) for job in remaining)
    # The catch-up sweep's job goes with the last schedule that uses catch-up, and with the
    # function it calls: left behind, it would call a function that no longer exists.
    changes.extend(
        _deletion(Kind.JOB, name, DeleteJob(name))
        for name, sweep in sorted(observed_jobs.items())
        if is_sweep_job(name)
        and (
            not any(uses_catch_up(job.fields.get("http_target.body")) for job in remaining)
            or (deletes_function and _calls(sweep, function))
        )
    )
    if purge:
        referenced = {_spec_object(job) for job in remaining}
        changes.extend(
            _deletion(Kind.SPEC, spec.name, DeleteSpec(bucket, spec.name))
            for spec in sorted(spec_objects, key=lambda spec: spec.name)
            if _purgeable(spec, location) and spec.name not in referenced
        )
    if function is not None and deletes_function:
        changes.append(_deletion(Kind.FUNCTION, function.name, DeleteFunction(function.name)))
    return Plan(tuple(changes))


def next_runs(desired: Desired, now: datetime, count: int = 3) -> Iterable[NextRuns]:
    """The next firings the function will act on: those inside the job's start/end window
    (firings outside it are skipped), so possibly none."""
    for job in desired.jobs:
        if job.schedule is None:
            continue  # the catch-up sweep's job: no schedule's firings
        window = {
            key: parse_rfc3339(job.body[f"{key}_time"]) for key in ("start", "end") if job.body.get(f"{key}_time")
        }
        times = cronexpr.next_fire_times(job.cron, job.time_zone, now, count, **window)
        yield NextRuns(job.schedule, job.time_zone, tuple(times))


def function_url(function: ObservedFunction | None) -> str | Pending:
    """The URL the function serves at: the jobs' target and their tokens' audience."""
    return function.uri if function and function.uri else Pending(FUNCTION_URL)


def _function_service(function: ObservedFunction | None) -> str | Pending:
    """The function's Cloud Run service, where its invokers are granted."""
    return function.service if function and function.service and function.uri else Pending(FUNCTION_SERVICE)


def update_mask(change: Change) -> list[str]:
    """Top-level fields of what differs; the update sends each of them whole."""
    return sorted({diff.field.split(".", 1)[0] for diff in change.diffs})


def needs_build(change: Change) -> bool:
    return change.action is Action.CREATE or any(d.field.startswith("build_config.") for d in change.diffs)


def _spec_change(bucket: str, spec: SpecObject, generation: int | None) -> Change:
    if generation is not None:
        return Change(Kind.SPEC, spec.object_name, Action.UNCHANGED)
    return Change(Kind.SPEC, spec.object_name, Action.CREATE, step=UploadSpec(bucket, spec))


def _deletion(kind: Kind, name: str, step: DeleteJob | DeleteSpec | DeleteFunction) -> Change:
    return Change(kind, name, Action.DELETE, step=step)


def _function_changes(desired: Desired, function: ObservedFunction | None, url: str | Pending) -> list[Change]:
    """The function's change, then, while it has no URL, the update that gives it its audience."""
    wanted = desired_state.with_audience(desired.function, url).fields
    if isinstance(url, Pending) and function is not None:
        wanted = _keeping_audience(wanted, function)  # not known yet: set by the second change
    changes = [_function_change(desired, wanted, function)]
    if isinstance(url, Pending):
        environment = "service_config.environment_variables"
        diff = FieldChange(f"{environment}.{AUDIENCE_VARIABLE}", None, url)
        audience = Change(Kind.FUNCTION, desired.function.name, Action.UPDATE, (diff,))
        given = {**wanted, environment: {**wanted[environment], AUDIENCE_VARIABLE: url}}
        changes.append(_with_function_step(audience, desired, given))
    return changes


def _with_function_step(change: Change, desired: Desired, wanted: Mapping[str, Any]) -> Change:
    if change.action is Action.UNCHANGED:
        return change
    mask = None if change.action is Action.CREATE else tuple(update_mask(change))
    step = DeployFunction(desired.function.name, wanted, desired.function.source, mask, needs_build(change))
    return replace(change, step=step)


def _keeping_audience(wanted: Mapping[str, Any], function: ObservedFunction) -> dict[str, Any]:
    environment = "service_config.environment_variables"
    current = (function.fields.get(environment) or {}).get(AUDIENCE_VARIABLE)
    if current is None:
        return dict(wanted)
    return {**wanted, environment: {**wanted[environment], AUDIENCE_VARIABLE: current}}


def _function_change(desired: Desired, wanted: Mapping[str, Any], function: ObservedFunction | None) -> Change:
    change = _upsert(Kind.FUNCTION, desired.function.name, wanted, function)
    if function is not None and function.fields.get("state") == "FAILED" and not needs_build(change):
        # A failed build leaves the function holding the wanted settings but serving nothing
        # (no Cloud Run service): only building its source again repairs it.
        source = "build_config.source"
        rebuild = FieldChange(source, f"{function.fields.get(source)} (build failed)", wanted[source])
        change = Change(Kind.FUNCTION, change.name, Action.UPDATE, (*change.diffs, rebuild))
    return _with_function_step(change, desired, wanted)


def _invoker_change(desired: Desired, function: ObservedFunction | None, members: frozenset[str] | None) -> Change:
    """The role's members become exactly `desired.invoker_members`: public members, a
    rotated-out scheduler SA or anyone else granted by hand are removed."""
    wanted = sorted(desired.invoker_members)
    name = desired.function.name
    step = SetInvokers(_function_service(function), tuple(desired.invoker_members))
    if members is None:
        return Change(Kind.INVOKER, name, Action.CREATE, (FieldChange(INVOKER_ROLE, None, wanted),), step)
    if {normal_form.member(m) for m in members} == {normal_form.member(m) for m in wanted}:
        return Change(Kind.INVOKER, name, Action.UNCHANGED)
    return Change(Kind.INVOKER, name, Action.UPDATE, (FieldChange(INVOKER_ROLE, sorted(members), wanted),), step)


def _job_change(name: str, wanted: Mapping[str, Any], observed: ObservedJob | None) -> Change:
    change = _upsert(Kind.JOB, name, wanted, observed)
    if change.action is Action.UNCHANGED:
        return change
    mask = None if change.action is Action.CREATE else tuple(update_mask(change))
    return replace(change, step=WriteJob(name, wanted, mask))


def _upsert(
    kind: Kind, name: str, wanted: Mapping[str, Any], observed: ObservedFunction | ObservedJob | None
) -> Change:
    if observed is None:
        return Change(kind, name, Action.CREATE, tuple(FieldChange(f, None, v) for f, v in wanted.items()))
    diffs = tuple(_diff(wanted, observed.fields))
    return Change(kind, name, Action.UPDATE if diffs else Action.UNCHANGED, diffs)


def _diff(wanted: Mapping[str, Any], observed: Mapping[str, Any]) -> Iterable[FieldChange]:
    """The fields whose wanted value differs from the observed one in the server's normal
    form; a change shows both values as they are."""
    for field, value in wanted.items():
        current = observed.get(field)
        if isinstance(value, Mapping):
            yield from _diff_map(field, value, current if isinstance(current, Mapping) else {})
        elif isinstance(value, Pending) or _normal(field, value) != _normal(field, current):
            yield FieldChange(field, current, value)


def _diff_map(field: str, wanted: Mapping[str, Any], observed: Mapping[str, Any]) -> Iterable[FieldChange]:
    normal_wanted, normal_observed = _normal(field, wanted), _normal(field, observed)
    keys = set(normal_wanted)
    if field in _OPEN_MAPS:
        keys |= {key for key in normal_observed if key.startswith(_OWNED_PREFIX)}
    else:
        keys |= set(normal_observed)
    for key in sorted(keys):
        value = wanted.get(key)
        if isinstance(value, Pending) or normal_wanted.get(key) != normal_observed.get(key):
            yield FieldChange(f"{field}.{key}", observed.get(key), value)


def _normal(field: str, value: Any) -> Any:
    return normal_form.normalize(field, value)


def _calls(job: ObservedJob, function: ObservedFunction | None) -> bool:
    """Whether `job` fires at `function` (a function not yet serving has no URL to match)."""
    if function is None or not function.uri:
        return False
    uri = "http_target.uri"
    return _normal(uri, job.fields.get(uri)) == _normal(uri, function.uri)


def _purgeable(spec: StoredSpec, location: str) -> bool:
    metadata = spec.metadata or {}
    return metadata.get(SPEC_MANAGED_BY_KEY) == MANAGED_BY and metadata.get(SPEC_LOCATION_KEY) == location


def _spec_object(job: ObservedJob) -> str | None:
    """The object a job's body points at, read leniently: a spec still referenced is never purged."""
    uri = (job.fields.get("http_target.body") or {}).get("spec_uri")
    if not isinstance(uri, str):
        return None
    return uri.removeprefix("gs://").partition("/")[2].partition("#")[0]
