"""Read-only inspection: what exists in the cloud for a Desired state. Never mutates."""

from __future__ import annotations

from .gcp import GoogleCloud
from .models import Desired, Observed


def observe(cloud: GoogleCloud, desired: Desired) -> Observed:
    generations = {
        spec.object_name: cloud.spec_generation(desired.bucket, spec.object_name) for spec in desired.specs
    }
    function = cloud.get_function(desired.function.name)
    members = cloud.invoker_members(function.service) if function and function.service else None
    if desired.prune or len(desired.jobs) > 1:
        jobs = cloud.managed_jobs()  # one list call instead of a get per schedule
    else:
        jobs = {job.name: found for job in desired.jobs if (found := cloud.get_job(job.name))}
    return Observed(spec_generations=generations, function=function, invoker_members=members, jobs=jobs)
