"""Runs a Plan: each change's step, in the plan's order (specs, function, invoker, jobs, or
the deletions), through the seam, with progress.

A plan is data that runs alone: a step carries every field it sends; the values only an
earlier step produces (models.Pending: a new spec's generation, a new function's URL and
Cloud Run service) are taken from that step's outputs when the step that needs them runs.
Nothing is recomputed from desired or observed state here. Only changes that are not
`unchanged` have a step, so an unchanged plan makes no mutating call. Every step is
idempotent, so after a failure half way a re-run converges.

Scheduler job steps depend on nothing but the steps before them, so a run of them is made
a few at a time (JOB_CONCURRENCY calls in flight), each after a permit of the pacer that
keeps them under Cloud Scheduler's write quota (quota.py): a fleet applies at the pace the
quota allows, never over it. Their progress lines come in plan order; after a failure no
further job is started, those in flight end, and the first failure in plan order is raised.

Two executors: APPLY makes the calls; DRY_RUN shows the steps it would run and calls
nothing (`--dry-run`).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from .errors import DeployError
from .models import (
    FUNCTION_SERVICE,
    FUNCTION_URL,
    INVOKER_ROLE,
    Action,
    Change,
    DeleteFunction,
    DeleteJob,
    DeleteSpec,
    DeployFunction,
    DesiredFunction,
    Pending,
    Plan,
    SetInvokers,
    Step,
    UploadSpec,
    WriteJob,
    spec_generation_output,
)
from .observe import require_invoker_check
from .progress import Progress
from .quota import SCHEDULER_WRITES_PER_MINUTE, Pacer
from .seam import DeployCloud

# Scheduler writes in flight at once: at ~150 ms a call two keep up with the quota's pace
# (one write every 120 ms); more absorb slower calls without ever going faster than it.
JOB_CONCURRENCY = 8
_FUNCTION_STATE = "function state"  # recorded by a function step, for the error when it serves nothing


class Executor(Protocol):
    """Runs (or shows) a plan. `writes`: whether it changes anything, so whether the caller
    must hold the lease and look again before running it."""

    @property
    def writes(self) -> bool: ...

    def __call__(self, plan: Plan, cloud: DeployCloud, progress: Progress) -> None: ...


class Apply:
    """Makes the plan's calls. One pacer per executor: every plan it runs shares the quota."""

    writes = True

    def __init__(self, *, concurrency: int = JOB_CONCURRENCY, pacer: Pacer | None = None) -> None:
        self._concurrency = concurrency
        self._pacer = pacer or Pacer(SCHEDULER_WRITES_PER_MINUTE)

    def __call__(self, plan: Plan, cloud: DeployCloud, progress: Progress) -> None:
        outputs: dict[str, Any] = {}
        for jobs, batch in itertools.groupby(plan.mutations, key=lambda c: isinstance(c.step, WriteJob | DeleteJob)):
            if jobs:
                self._jobs(list(batch), cloud, outputs, progress)
                continue
            for change in batch:
                step = _resolved(_step(change), outputs)
                progress.step(describe(change.action, step))
                outputs.update(_run(step, cloud, progress))
        progress.finish()

    def _jobs(
        self, changes: Sequence[Change], cloud: DeployCloud, outputs: Mapping[str, Any], progress: Progress
    ) -> None:
        slots = threading.BoundedSemaphore(self._concurrency)
        failed = threading.Event()

        def ended(future: Future[dict[str, Any]]) -> None:
            if future.exception() is not None:
                failed.set()
            slots.release()

        started: list[Future[dict[str, Any]]] = []
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="vertex-cron-job") as pool:
            for change in changes:
                slots.acquire()
                if failed.is_set():
                    break  # a job failed: start no more
                step = _resolved(_step(change), outputs)
                self._pacer.acquire()
                progress.step(describe(change.action, step))
                future = pool.submit(_run, step, cloud, progress)
                future.add_done_callback(ended)
                started.append(future)
        for future in started:
            future.result()  # the first failure in plan order


class _DryRun:
    writes = False

    def __call__(self, plan: Plan, cloud: DeployCloud, progress: Progress) -> None:
        for change in plan.mutations:
            progress.step(f"would be {describe(change.action, _step(change))}")
        progress.finish()


APPLY: Executor = Apply()
DRY_RUN: Executor = _DryRun()


def execute(plan: Plan, cloud: DeployCloud, progress: Progress) -> None:
    APPLY(plan, cloud, progress)


def describe(action: Action, step: Step) -> str:
    """The step in words, as progress shows it (a value not known yet shows as <what it is>)."""
    verb = "creating" if action is Action.CREATE else "updating"
    match step:
        case UploadSpec(bucket, spec):
            return f"uploading gs://{bucket}/{spec.object_name}"
        case DeployFunction(name=name, build=build):
            return f"{verb} function {short_name(name)}{' (building)' if build else ''}"
        case SetInvokers(service, members):
            return f"setting {INVOKER_ROLE} on {short_name(str(service))} to exactly {', '.join(members)}"
        case WriteJob(name=name):
            return f"{verb} Scheduler job {short_name(name)}"
        case DeleteJob(name):
            return f"deleting Scheduler job {short_name(name)}"
        case DeleteSpec(name=name):
            return f"deleting spec {short_name(name)}"
        case DeleteFunction(name):
            return f"deleting function {short_name(name)}"


def _run(step: Step, cloud: DeployCloud, progress: Progress) -> dict[str, Any]:
    """Make the step's calls; its outputs (see models.Step)."""
    match step:
        case UploadSpec(bucket, spec):
            return {spec_generation_output(spec.object_name): cloud.upload_spec(bucket, spec)}
        case DeployFunction(name, fields, source, mask, build):
            function = cloud.deploy_function(
                DesiredFunction(name, source, fields),
                mask=None if mask is None else list(mask),
                build=build,
                tick=progress.tick,
            )
            if not (function.service and function.uri):
                return {_FUNCTION_STATE: function.state}
            return {FUNCTION_URL: function.uri, FUNCTION_SERVICE: function.service, _FUNCTION_STATE: function.state}
        case SetInvokers(service, members):
            service = str(service)  # resolved: a Pending service has been replaced by then
            cloud.set_invokers(service, members)
            require_invoker_check(cloud, service)  # the invokers matter only while Cloud Run checks them
        case WriteJob(name, fields, mask):
            if mask is None:
                cloud.create_job(name, fields)
            else:
                cloud.update_job(name, fields, list(mask))
        case DeleteJob(name):
            cloud.delete_job(name)  # a job already gone counts as deleted
        case DeleteSpec(bucket, name):
            cloud.delete_spec(bucket, name)
        case DeleteFunction(name):
            # An operation already running on it (e.g. a delete whose answer was lost) ends first.
            if cloud.wait_for_function(name, tick=progress.tick) is not None:
                cloud.delete_function(name, tick=progress.tick)
    return {}


def _step(change: Change) -> Step:
    if change.step is None:
        raise ValueError(f"the {change.action.value} change of {change.name} has no step")
    return change.step


def _resolved(step: Step, outputs: Mapping[str, Any]) -> Step:
    """`step` with every Pending value replaced by the output it refers to."""
    values = {f.name: _resolve(getattr(step, f.name), outputs) for f in dataclasses.fields(step)}
    return dataclasses.replace(step, **values)


def _resolve(value: Any, outputs: Mapping[str, Any]) -> Any:
    if isinstance(value, Pending):
        if value.output not in outputs:
            raise _missing(value, outputs)
        return f"{value.prefix}{outputs[value.output]}"
    if isinstance(value, Mapping):
        return {key: _resolve(item, outputs) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, outputs) for item in value]
    return value


def _missing(value: Pending, outputs: Mapping[str, Any]) -> Exception:
    if value.output in (FUNCTION_URL, FUNCTION_SERVICE):
        state = outputs.get(_FUNCTION_STATE) or "missing"
        return DeployError(
            f"the trigger function has no Cloud Run service or URL (its state is {state})",
            details="its last deployment ended without a serving service; `gcloud functions describe` "
            "shows its state messages. Re-running is safe",
        )
    return ValueError(f"{value} is used before a step of the plan produces it")


def short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]
