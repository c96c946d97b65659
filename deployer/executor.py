"""Applies a Plan through the seam, in dependency order: specs, function, invoker, jobs.

Only changes that are not `unchanged` cause calls, so an unchanged plan makes no mutating
call. Values the plan could not know (a new spec generation, a new function's URL) are
taken from the steps that produce them: a function created without its URL as its
audience gets it from the plan's second function change. Every step is idempotent, so
after a failure half way a re-run converges.
"""

from __future__ import annotations

from . import desired as desired_state
from .desired import job_fields, pinned_spec_uri
from .errors import DeployError
from .gcp import GoogleCloud
from .models import Action, Change, Desired, Kind, Observed, ObservedFunction, Plan
from .planner import function_url, needs_build, update_mask
from .progress import Progress


def execute(plan: Plan, desired: Desired, observed: Observed, cloud: GoogleCloud, progress: Progress) -> None:
    generations = dict(observed.spec_generations)
    function = observed.function
    specs = {spec.object_name: spec for spec in desired.specs}
    jobs = {job.name: job for job in desired.jobs}
    for change in plan.mutations:
        if change.action is Action.DELETE:
            delete(change, cloud, desired.bucket, progress)
        elif change.kind is Kind.SPEC:
            progress.step(f"uploading gs://{desired.bucket}/{change.name}")
            generations[change.name] = cloud.upload_spec(desired.bucket, specs[change.name])
        elif change.kind is Kind.FUNCTION:
            build = needs_build(change)
            progress.step(f"{_verb(change)} function {short_name(change.name)}{' (building)' if build else ''}")
            mask = None if change.action is Action.CREATE else update_mask(change)
            wanted = desired_state.with_audience(desired.function, function_url(function))
            function = cloud.deploy_function(wanted, mask=mask, build=build, tick=progress.tick)
        elif change.kind is Kind.INVOKER:
            service, _ = _require_service(function)
            members = ", ".join(desired.invoker_members)
            progress.step(f"setting roles/run.invoker on {short_name(service)} to exactly {members}")
            cloud.set_invokers(service, desired.invoker_members)
            cloud.require_invoker_check(service)  # the invokers matter only while Cloud Run checks them
        elif change.kind is Kind.JOB:
            job = jobs[change.name]
            _, url = _require_service(function)
            fields = job_fields(job, spec_uri=pinned_spec_uri(job, generations), url=url)
            progress.step(f"{_verb(change)} Scheduler job {short_name(change.name)}")
            if change.action is Action.CREATE:
                cloud.create_job(change.name, fields)
            else:
                cloud.update_job(change.name, fields, update_mask(change))
    progress.finish()


def delete(change: Change, cloud: GoogleCloud, bucket: str, progress: Progress) -> None:
    """Apply one `delete` change; a resource already gone counts as deleted."""
    progress.step(f"deleting {change.kind.value} {short_name(change.name)}")
    if change.kind is Kind.JOB:
        cloud.delete_job(change.name)
    elif change.kind is Kind.SPEC:
        cloud.delete_spec(bucket, change.name)
    # A function: an operation already running on it (e.g. a delete whose answer was lost) ends first.
    elif change.kind is Kind.FUNCTION and cloud.wait_for_function(change.name, tick=progress.tick) is not None:
        cloud.delete_function(change.name, tick=progress.tick)


def _require_service(function: ObservedFunction | None) -> tuple[str, str]:
    """The function's Cloud Run service and URL, which jobs and invokers need."""
    if function is None or not function.service or not function.uri:
        state = function.state if function else "missing"
        raise DeployError(
            f"the trigger function has no Cloud Run service or URL (its state is {state})",
            details="its last deployment ended without a serving service; `gcloud functions describe` "
            "shows its state messages. Re-running is safe",
        )
    return function.service, function.uri


def _verb(change: Change) -> str:
    return "creating" if change.action is Action.CREATE else "updating"


def short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]
