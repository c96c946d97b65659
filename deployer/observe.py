"""Read-only inspection: what exists in the cloud for a Desired state, and which of the
region's Scheduler jobs vertex-cron manages. Never mutates."""

from __future__ import annotations

from collections.abc import Iterable

from . import errors
from .desired import is_managed_name
from .models import JOB_DESCRIPTION, Desired, Observed, ObservedJob, spec_prefix
from .seam import DeployCloud, InvokerReader, JobLister


def observe(cloud: DeployCloud, desired: Desired) -> Observed:
    """A fixed number of calls whatever the number of schedules: one listing of the location's
    specs, of its jobs (each paged), and the function with its invoker policy."""
    listed = cloud.spec_objects(desired.bucket, spec_prefix(desired.project, desired.region))
    stored = {spec.name: spec.generation for spec in listed}
    generations = {spec.object_name: stored.get(spec.object_name) for spec in desired.specs}
    function = cloud.get_function(desired.function.name)
    if function and function.service:
        require_invoker_check(cloud, function.service)  # refused before anything changes
    members = cloud.invoker_members(function.service) if function and function.service else None
    # One listing: the wanted jobs, and every other managed job of the region (prune
    # deletes them; those still calling the function keep their scheduler SA an invoker).
    jobs = managed_jobs(cloud, also=[job.name for job in desired.jobs])
    return Observed(spec_generations=generations, function=function, invoker_members=members, jobs=jobs)


def managed_jobs(cloud: JobLister, *, also: Iterable[str] = ()) -> dict[str, ObservedJob]:
    """Jobs vertex-cron manages (the schedules' and the catch-up sweep's): named `vertex-cron-*`
    and described `managed-by=vertex-cron`; plus those named in `also` (full names) whatever
    their description."""
    named = set(also)
    return {
        name: job
        for name, job in cloud.list_jobs().items()
        if name in named or (is_managed_name(name) and job.fields.get("description") == JOB_DESCRIPTION)
    }


def require_invoker_check(cloud: InvokerReader, service: str) -> None:
    """Refuse a service Cloud Run lets anyone call. With the check off, Cloud Run passes
    any token on with its signature removed, and the function cannot verify it then."""
    if cloud.invoker_iam_disabled(service):
        _, project, _, region, _, short = service.split("/")
        raise errors.InvokerCheckDisabled(
            f"Cloud Run does not check who may invoke {short} (invoker IAM check disabled): "
            "anyone could start pipeline runs through it",
            details="turn the check back on, then re-run: gcloud run services update "
            f"{short} --invoker-iam-check --region={region} --project={project}",
        )
