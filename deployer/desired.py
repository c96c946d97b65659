"""Settings + schedule inputs -> the Desired state, every local check done on the way.

Also the one definition of the fields vertex-cron sets on the function and on each
Scheduler job (`function_fields`, `job_fields`): the planner compares them and the seam
sends them, so what is shown in a plan is what is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from vertex_cron_trigger.body import parse_body
from vertex_cron_trigger.errors import BadRequest

from . import cronexpr, spec_file, validation
from .config import Settings
from .errors import ValidationError
from .function_source import FunctionSource
from .models import (
    JOB_DESCRIPTION,
    JOB_PREFIX,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SOURCE_LABEL,
    Desired,
    DesiredFunction,
    DesiredJob,
    Pending,
    ScheduleInput,
    SpecObject,
)

RUNTIME = "python312"
ENTRY_POINT = "trigger"
MEMORY = "256M"
# Scheduler retries a failed firing (the function answers 503 for transient upstream errors);
# the function's deterministic job id makes a retried delivery create no second run.
RETRY = {
    "retry_config.retry_count": 3,
    "retry_config.max_retry_duration": "0s",  # bounded by retry_count alone
    "retry_config.min_backoff_duration": "30s",
    "retry_config.max_backoff_duration": "600s",
    "retry_config.max_doublings": 3,
}
ATTEMPT_DEADLINE = "180s"  # HTTP targets allow 15 s .. 30 min; a cold start plus a Vertex create fits
# The widest generation GCS can return (int64), for sizing the body before the upload.
_WIDEST_GENERATION = "9" * 19

IDENTITIES = (
    ("workload_sa", "workload SA"),
    ("function_sa", "function SA"),
    ("scheduler_sa", "scheduler SA"),
)


def check_identities(settings: Settings) -> None:
    settings.require("project", "region", "bucket", *(name for name, _ in IDENTITIES))
    for name, role in IDENTITIES:
        validation.check_service_account(
            role, getattr(settings, name), allow_default=settings.allow_default_service_account
        )
    if settings.build_sa:
        validation.check_service_account("build SA", settings.build_sa, allow_default=settings.allow_default_service_account)
    if settings.impersonate_service_account:
        validation.check_service_account(
            "impersonated SA", settings.impersonate_service_account, allow_default=False
        )


def build(
    settings: Settings,
    schedules: Sequence[ScheduleInput],
    *,
    source: FunctionSource,
    prune: bool = False,
) -> Desired:
    check_identities(settings)
    names = [validation.check_schedule_name(s.name) for s in schedules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ValidationError(f"schedule {duplicate} is defined twice")
    specs: dict[str, SpecObject] = {}
    jobs = []
    for schedule in schedules:
        spec_object, job = _schedule(settings, schedule)
        specs.setdefault(spec_object.object_name, spec_object)
        jobs.append(job)
    project, region = settings.project, settings.region
    return Desired(
        project=project,
        region=region,
        bucket=settings.bucket,
        function=DesiredFunction(
            name=function_name(project, region, settings.function_name),
            source=source,
            fields=function_fields(settings, source),
        ),
        invoker_member=f"serviceAccount:{settings.scheduler_sa}",
        specs=tuple(specs.values()),
        jobs=tuple(jobs),
        prune=prune,
    )


def _schedule(settings: Settings, schedule: ScheduleInput) -> tuple[SpecObject, DesiredJob]:
    cron = cronexpr.check_cron(schedule.cron)
    time_zone = validation.check_time_zone(schedule.time_zone)
    spec_object, spec = spec_file.load(schedule.spec_path)
    body: dict[str, Any] = {
        "schedule": schedule.name,
        "spec_uri": f"gs://{settings.bucket}/{spec_object.object_name}",
        "parameter_values": spec_file.typed_parameters(schedule.name, spec, schedule.parameters, time_zone=time_zone),
        "pipeline_root": spec_file.pipeline_root(schedule.name, spec, schedule.pipeline_root),
        "cron": cron,
        "time_zone": time_zone,
    }
    for policy in ("max_concurrent_runs", "start_time", "end_time", "enable_caching"):
        if getattr(schedule, policy) is not None:
            body[policy] = getattr(schedule, policy)
    _check_body(schedule.name, body)
    return spec_object, DesiredJob(
        name=job_name(settings.project, settings.region, schedule.name),
        schedule=schedule.name,
        spec_object=spec_object.object_name,
        body=body,
        cron=cron,
        time_zone=time_zone,
        scheduler_sa=settings.scheduler_sa,
    )


def _check_body(schedule: str, body: Mapping[str, Any]) -> None:
    """The function must accept the body as pinned after upload, and it must fit the limits."""
    pinned = encode_body({**body, "spec_uri": f"{body['spec_uri']}#{_WIDEST_GENERATION}"})
    validation.check_body_size(schedule, pinned)
    try:
        parse_body(pinned)
    except BadRequest as exc:
        raise ValidationError(f"schedule {schedule}: {exc.message}") from exc


def encode_body(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def function_name(project: str, region: str, name: str) -> str:
    return f"projects/{project}/locations/{region}/functions/{name}"


def job_name(project: str, region: str, schedule: str) -> str:
    return f"projects/{project}/locations/{region}/jobs/{JOB_PREFIX}{schedule}"


def schedule_of(job: str) -> str | None:
    """The schedule name of a managed job's full name, None for a job vertex-cron does not manage."""
    short = job.rsplit("/", 1)[-1]
    return short[len(JOB_PREFIX):] if short.startswith(JOB_PREFIX) else None


def function_environment(settings: Settings) -> dict[str, str | None]:
    """The function's environment (ARCHITECTURE "The function's contract"); doctor compares
    the deployed one against it without building the source zip."""
    return {
        "VERTEX_CRON_PROJECT": settings.project,
        "VERTEX_CRON_REGION": settings.region,
        "VERTEX_CRON_WORKLOAD_SA": settings.workload_sa,
        "VERTEX_CRON_SPEC_BUCKET": settings.bucket,
        "VERTEX_CRON_ALLOWED_INVOKERS": settings.scheduler_sa,
    }


def function_fields(settings: Settings, source: FunctionSource) -> dict[str, Any]:
    build_identity = (
        {"build_config.service_account": f"projects/{settings.project}/serviceAccounts/{settings.build_sa}"}
        if settings.build_sa
        else {}
    )
    return {
        **build_identity,
        "build_config.runtime": RUNTIME,
        "build_config.entry_point": ENTRY_POINT,
        # Stands for the uploaded zip: compared against the deployed source label, and
        # replaced by the upload's storage_source when written (gcp.py).
        "build_config.source": source.label,
        "service_config.service_account_email": settings.function_sa,
        "service_config.environment_variables": function_environment(settings),
        "service_config.available_memory": MEMORY,
        "service_config.max_instance_count": settings.max_instances,
        # Reachable by Scheduler, but only with an OIDC token of an invoker (never allUsers).
        "service_config.ingress_settings": "ALLOW_ALL",
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, SOURCE_LABEL: source.label},
    }


def job_fields(job: DesiredJob, *, spec_uri: str | Pending, url: str | Pending) -> dict[str, Any]:
    return {
        "description": JOB_DESCRIPTION,
        "schedule": job.cron,
        "time_zone": job.time_zone,
        "http_target.uri": url,
        "http_target.http_method": "POST",
        "http_target.headers": {"Content-Type": "application/json"},
        "http_target.body": {**job.body, "spec_uri": spec_uri},
        "http_target.oidc_token.service_account_email": job.scheduler_sa,
        "http_target.oidc_token.audience": url,
        **RETRY,
        "attempt_deadline": ATTEMPT_DEADLINE,
    }
