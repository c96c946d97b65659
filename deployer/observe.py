"""Read-only inspection: what exists in the cloud for a Desired state. Never mutates."""

from __future__ import annotations

from .gcp import GoogleCloud
from .models import Desired, Observed


def observe(cloud: GoogleCloud, desired: Desired) -> Observed:
    generations = {spec.object_name: cloud.spec_generation(desired.bucket, spec.object_name) for spec in desired.specs}
    function = cloud.get_function(desired.function.name)
    if function and function.service:
        cloud.require_invoker_check(function.service)  # refused before anything changes
    members = cloud.invoker_members(function.service) if function and function.service else None
    # One list call: the wanted jobs, and every other managed job of the region (prune
    # deletes them; those still calling the function keep their scheduler SA an invoker).
    jobs = cloud.managed_jobs(also=[job.name for job in desired.jobs])
    return Observed(spec_generations=generations, function=function, invoker_members=members, jobs=jobs)
