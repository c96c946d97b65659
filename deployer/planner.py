"""Desired + Observed -> Plan. Pure: no I/O, no clock (``now`` is passed in).

Each resource becomes one Change: create, update (with the fields that differ), unchanged
or delete. A Plan whose changes are all unchanged is applied with zero mutating calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from . import cronexpr
from .desired import job_fields, schedule_of
from .models import (
    INVOKER_ROLE,
    PUBLIC_MEMBERS,
    SPEC_PREFIX,
    Action,
    Change,
    Desired,
    FieldChange,
    Kind,
    NextRuns,
    Observed,
    ObservedFunction,
    ObservedJob,
    Pending,
    Plan,
)

# Maps the service adds its own entries to (Cloud Functions adds LOG_EXECUTION_ID, Scheduler
# may add headers): only the keys vertex-cron sets count, plus stale VERTEX_CRON_* variables.
_OPEN_MAPS = frozenset({"labels", "http_target.headers", "service_config.environment_variables"})
_OWNED_PREFIX = "VERTEX_CRON_"


def plan(desired: Desired, observed: Observed, *, now: datetime) -> Plan:
    changes = [
        Change(Kind.SPEC, spec.object_name, _exists(observed.spec_generations.get(spec.object_name)))
        for spec in desired.specs
    ]
    changes.append(_function_change(desired, observed.function))
    changes.append(_invoker_change(desired, observed.invoker_members))
    url: str | Pending = observed.function.uri if observed.function else Pending("function URL")
    for job in desired.jobs:
        generation = observed.spec_generations.get(job.spec_object)
        spec_uri = job.body["spec_uri"] + f"#{generation}" if generation else Pending("spec generation")
        wanted = job_fields(job, spec_uri=spec_uri, url=url)
        changes.append(_upsert(Kind.JOB, job.name, wanted, observed.jobs.get(job.name)))
    if desired.prune:
        wanted_jobs = {job.name for job in desired.jobs}
        changes.extend(
            Change(Kind.JOB, name, Action.DELETE)
            for name in sorted(observed.jobs)
            if name not in wanted_jobs and schedule_of(name)
        )
    return Plan(tuple(changes), tuple(next_runs(desired, now)))


def plan_delete(
    schedules: Sequence[str],
    observed_jobs: Mapping[str, ObservedJob],
    *,
    function: ObservedFunction | None,
    spec_objects: Iterable[str] = (),
    purge: bool = False,
) -> Plan:
    """Delete the named jobs (full names); `observed_jobs` holds every managed job.

    The shared function goes when no remaining job calls it; with `purge`, so do the spec
    objects no remaining job references.
    """
    remaining = [job for name, job in observed_jobs.items() if name not in schedules]
    changes = [Change(Kind.JOB, name, Action.DELETE) for name in schedules]
    if purge:
        referenced = {_spec_object(job) for job in remaining}
        changes.extend(
            Change(Kind.SPEC, name, Action.DELETE)
            for name in sorted(spec_objects)
            if name.startswith(SPEC_PREFIX) and name not in referenced
        )
    if function and not any(job.fields.get("http_target.uri") == function.uri for job in remaining):
        changes.append(Change(Kind.FUNCTION, function.name, Action.DELETE))
    return Plan(tuple(changes))


def next_runs(desired: Desired, now: datetime, count: int = 3) -> Iterable[NextRuns]:
    for job in desired.jobs:
        times = cronexpr.next_fire_times(job.cron, job.time_zone, now, count)
        yield NextRuns(job.schedule, job.time_zone, tuple(times))


def update_mask(change: Change) -> list[str]:
    """Top-level fields of what differs; the update sends each of them whole."""
    return sorted({diff.field.split(".", 1)[0] for diff in change.diffs})


def needs_build(change: Change) -> bool:
    return change.action is Action.CREATE or any(d.field.startswith("build_config.") for d in change.diffs)


def _exists(generation: int | None) -> Action:
    return Action.CREATE if generation is None else Action.UNCHANGED


def _function_change(desired: Desired, function: ObservedFunction | None) -> Change:
    change = _upsert(Kind.FUNCTION, desired.function.name, desired.function.fields, function)
    if function is None or function.fields.get("state") != "FAILED" or needs_build(change):
        return change
    # A failed build leaves the function holding the wanted settings but serving nothing
    # (no Cloud Run service): only building its source again repairs it.
    source = "build_config.source"
    rebuild = FieldChange(source, f"{function.fields.get(source)} (build failed)", desired.function.fields[source])
    return Change(Kind.FUNCTION, change.name, Action.UPDATE, (*change.diffs, rebuild))


def _invoker_change(desired: Desired, members: frozenset[str] | None) -> Change:
    member = desired.invoker_member
    wanted = sorted(((members or frozenset()) - PUBLIC_MEMBERS) | {member})
    name = desired.function.name
    if members is None:
        return Change(Kind.INVOKER, name, Action.CREATE, (FieldChange(INVOKER_ROLE, None, wanted),))
    if member in members and not members & PUBLIC_MEMBERS:
        return Change(Kind.INVOKER, name, Action.UNCHANGED)
    return Change(Kind.INVOKER, name, Action.UPDATE, (FieldChange(INVOKER_ROLE, sorted(members), wanted),))


def _upsert(
    kind: Kind, name: str, wanted: Mapping[str, Any], observed: ObservedFunction | ObservedJob | None
) -> Change:
    if observed is None:
        return Change(kind, name, Action.CREATE, tuple(FieldChange(f, None, v) for f, v in wanted.items()))
    diffs = tuple(_diff(wanted, observed.fields))
    return Change(kind, name, Action.UPDATE if diffs else Action.UNCHANGED, diffs)


def _diff(wanted: Mapping[str, Any], observed: Mapping[str, Any]) -> Iterable[FieldChange]:
    for field, value in wanted.items():
        current = observed.get(field)
        if isinstance(value, Mapping):
            yield from _diff_map(field, value, current if isinstance(current, Mapping) else {})
        elif isinstance(value, Pending) or value != current:
            yield FieldChange(field, current, value)


def _diff_map(field: str, wanted: Mapping[str, Any], observed: Mapping[str, Any]) -> Iterable[FieldChange]:
    keys = set(wanted)
    if field in _OPEN_MAPS:
        keys |= {key for key in observed if key.startswith(_OWNED_PREFIX)}
    else:
        keys |= set(observed)
    for key in sorted(keys):
        value, current = wanted.get(key), observed.get(key)
        if isinstance(value, Pending) or value != current:
            yield FieldChange(f"{field}.{key}", current, value)


def _spec_object(job: ObservedJob) -> str | None:
    """The object a job's body points at, read leniently: a spec still referenced is never purged."""
    uri = (job.fields.get("http_target.body") or {}).get("spec_uri")
    if not isinstance(uri, str):
        return None
    return uri.removeprefix("gs://").partition("/")[2].partition("#")[0]
