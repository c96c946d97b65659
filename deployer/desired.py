"""Settings + schedule inputs -> the Desired state, every pre-call check done on the way.

Also the one definition of the fields vertex-cron sets on the function and on each
Scheduler job (`function_fields`, `job_fields`): the planner compares them and the seam
sends them, so what is shown in a plan is what is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vertex_cron_trigger.body import parse_body
from vertex_cron_trigger.catch_up import SWEEP_BODY, SWEEP_CRON, SWEEP_JOB
from vertex_cron_trigger.errors import BadRequest
from vertex_cron_trigger.give_up import give_up_span
from vertex_cron_trigger.spec import PipelineSpec
from vertex_cron_trigger.spec_uri import bucket_of
from vertex_cron_trigger.timefmt import format_rfc3339

from . import cronexpr, spec_file, validation
from .config import Deployment
from .errors import ValidationError
from .function_source import FunctionSource
from .models import (
    JOB_DESCRIPTION,
    JOB_PREFIX,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SCHEDULE_OPTIONS,
    SOURCE_LABEL,
    SPEC_LOCATION_KEY,
    SPEC_MANAGED_BY_KEY,
    Desired,
    DesiredFunction,
    DesiredJob,
    ObservedJob,
    Pending,
    PublishedSpec,
    ScheduleInput,
    SpecObject,
    encode_body,
    location,
    spec_generation_output,
    spec_prefix,
)
from .permissions import PIPELINE_ROOT_PREFIX

RUNTIME = "python312"
ENTRY_POINT = "trigger"
# Not less, although bench/RESULTS.md measures a worker peak of ~30 MiB (37 MiB for the
# gunicorn master): Cloud Run functions tie CPU to memory (128 MiB -> 0.083 vCPU, 256 MiB
# -> 0.167 vCPU; cloud.google.com/functions/docs/configuring/memory). A cold start is
# CPU-bound (importing functions-framework and Flask), so 128M would roughly double it and
# slow every first request after a quiet period, while saving almost nothing: instances
# run only for the second or two a firing takes. 256M is also the platform's default.
MEMORY = "256M"
# Cloud Run cuts a request off at the function's timeout (the platform default is 60 s)
# with no answer from the function and no log line of its own. The function bounds each
# request by its own deadline (vertex_cron_trigger.deadline.REQUEST_SECONDS, 150 s) and
# then answers 503 itself so Scheduler retries; this timeout must stay above that.
TIMEOUT_SECONDS = 180
# Scheduler retries a failed firing (the function answers 503 for transient upstream errors);
# the function's deterministic job id makes a retried delivery create no second run.
# Chosen by bench/quota_herd.py (bench/RESULTS.md, "Herd under a quota"; docs/failures.md):
# a herd of schedules firing together retries together (Scheduler adds no jitter), so each
# retry is one more wave against Vertex AI's per-minute create quota. Five retries (the
# most Scheduler allows) 75 s apart put the six waves in six different quota minutes, more
# than a minute apart however the minute is counted: 1000 firings against 60 creates a
# minute get 360 runs on time, twice as many as 3 retries 30/60/120 s apart (two of whose
# waves share a minute), and Scheduler gives up after 6.25 minutes; the catch-up sweep
# creates the rest. Longer backoffs would only delay the runs and the sweep.
RETRY = {
    "retry_config.retry_count": 5,
    "retry_config.max_retry_duration": "0s",  # bounded by retry_count alone
    "retry_config.min_backoff_duration": "75s",
    "retry_config.max_backoff_duration": "75s",
    # Moot with min = max; not 0, which proto3 cannot tell from unset, so Scheduler would
    # store its default (5) and every plan would see a change.
    "retry_config.max_doublings": 5,
}
# How long Scheduler waits for an answer (HTTP targets allow 15 s .. 30 min): the function's
# own timeout plus a minute for a cold start, so Scheduler never gives up on an attempt the
# function is still completing (a retry would be a duplicate, but a needless one).
ATTEMPT_DEADLINE = f"{TIMEOUT_SECONDS + 60}s"
# Scheduler's retry policy and deadline as the REST job (give_up.give_up_span reads them so).
_RETRY_CONFIG = {
    "retryConfig": {
        "".join(w if i == 0 else w.title() for i, w in enumerate(k.removeprefix("retry_config.").split("_"))): v
        for k, v in RETRY.items()
    },
    "attemptDeadline": ATTEMPT_DEADLINE,
}
# The function's accepted token audiences (ARCHITECTURE "The function's contract").
AUDIENCE_VARIABLE = "VERTEX_CRON_AUDIENCE"
# The widest generation GCS can return (int64), for sizing the body before the upload.
_WIDEST_GENERATION = "9" * 19

PIPELINE_ROOT_BUCKETS = "VERTEX_CRON_PIPELINE_ROOT_BUCKETS"
# The body fields of a catch-up schedule (vertex_cron_trigger.catch_up).
CATCH_UP = "catch_up"
CATCH_UP_SINCE = "catch_up_since"

IDENTITIES = (
    ("workload_sa", "workload SA"),
    ("function_sa", "function SA"),
    ("scheduler_sa", "scheduler SA"),
)


def check_identities(settings: Deployment) -> None:
    for name, role in IDENTITIES:
        validation.check_service_account(
            role, getattr(settings, name), allow_default=settings.allow_default_service_account
        )
    if settings.build_sa:
        validation.check_service_account(
            "build SA", settings.build_sa, allow_default=settings.allow_default_service_account
        )
    elif not settings.allow_default_service_account:
        # Without build_config.service_account, Cloud Build runs as the project's default
        # build identity (the Compute Engine default SA in current projects): Editor-wide.
        raise ValidationError(
            "no build SA: the function would be built as the project's default service account",
            details="set --build-sa / VERTEX_CRON_BUILD_SA / build_sa in vertex-cron.toml to the "
            "build_sa output of infra/, or pass --allow-default-service-account",
        )
    if settings.impersonate_service_account:
        validation.check_service_account("impersonated SA", settings.impersonate_service_account, allow_default=False)


def build(
    settings: Deployment,
    schedules: Sequence[ScheduleInput],
    *,
    source: FunctionSource,
    prune: bool = False,
    published: Mapping[str, PublishedSpec] | None = None,
) -> Desired:
    """`published`: the pipelines of the schedules whose spec is an Artifact Registry URI,
    by that URI as given, read through the seam beforehand (api.apply)."""
    check_inputs(settings, schedules)
    specs: dict[str, SpecObject] = {}
    # Each spec file or published pipeline read and parsed once, however many schedules use it.
    loaded: dict[str, tuple[SpecObject, PipelineSpec]] = {}
    jobs = []
    for schedule in schedules:
        spec_object, job = _schedule(settings, schedule, published or {}, loaded)
        specs.setdefault(spec_object.object_name, spec_object)
        jobs.append(job)
    project, region = settings.project, settings.region
    desired = Desired(
        project=project,
        region=region,
        bucket=settings.bucket,
        function=DesiredFunction(
            name=function_name(project, region, settings.function_name),
            source=source,
            fields=function_fields(settings, source),
        ),
        scheduler_sa=settings.scheduler_sa,
        specs=tuple(specs.values()),
        jobs=tuple(jobs),
        prune=prune,
        invoker_members=(invoker_member(settings.scheduler_sa),),
    )
    return with_pipeline_root_buckets(desired, (bucket_of(job.body["pipeline_root"]) for job in jobs))


def with_pipeline_root_buckets(desired: Desired, buckets: Iterable[str]) -> Desired:
    """`desired` whose function lets runs write their outputs to the spec bucket and `buckets`
    (VERTEX_CRON_PIPELINE_ROOT_BUCKETS, which the function checks every pipeline root against):
    the buckets of the pipeline roots the schedules calling it were deployed with
    (--pipeline-root; the default root is in the spec bucket)."""
    environment = dict(desired.function.fields["service_config.environment_variables"])
    environment[PIPELINE_ROOT_BUCKETS] = ",".join(sorted({desired.bucket, *buckets}))
    fields = {**desired.function.fields, "service_config.environment_variables": environment}
    return dataclasses.replace(desired, function=dataclasses.replace(desired.function, fields=fields))


def check_inputs(settings: Deployment, schedules: Sequence[ScheduleInput]) -> None:
    """Every check that needs no spec: api.apply runs them before reading a spec from
    Artifact Registry, so a bad argument is refused before any call."""
    check_identities(settings)
    names = [validation.check_schedule_name(s.name) for s in schedules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ValidationError(f"schedule {duplicate} is defined twice")
    for schedule in schedules:
        cronexpr.check_cron(schedule.cron)
        validation.check_time_zone(schedule.time_zone)
        _option_fields(schedule)


def min_catch_up() -> timedelta:
    """The shortest useful catch-up window: a fire time is caught up only once Scheduler has
    given up on it (give_up_span of the jobs written here), by the first sweep after that,
    which may come one sweep period later."""
    return give_up_span(_RETRY_CONFIG) + _sweep_period()


def _sweep_period() -> timedelta:
    """The time between two sweeps (SWEEP_CRON fires at even intervals)."""
    first, second = cronexpr.next_fire_times(SWEEP_CRON, "UTC", datetime(2000, 1, 1, tzinfo=UTC), 2)
    return second - first


def check_catch_up_window(text: str) -> timedelta:
    """A schedule's catch-up window (validation.check_catch_up), refused when shorter than
    min_catch_up: such a window would never reach a fire time Scheduler has given up on."""
    window, minimum = validation.check_catch_up(text), min_catch_up()
    if window < minimum:
        raise ValidationError(
            f"catch_up {text} is shorter than the minimum of {validation.format_duration(minimum)} "
            f"(Cloud Scheduler may retry a firing for {validation.format_duration(give_up_span(_RETRY_CONFIG))}, "
            f"then the sweep runs every {validation.format_duration(_sweep_period())}), so it would catch nothing up"
        )
    return window


def invoker_member(email: str) -> str:
    return f"serviceAccount:{email}"


def with_audience(function: DesiredFunction, url: str | Pending) -> DesiredFunction:
    """`function` that accepts ID tokens whose audience is its URL `url`, the audience every
    job's OIDC token carries (job_fields): one explicit value on both sides, so neither
    depends on Scheduler's default audience (the job's URI, which it stores in its own form).
    Before the function serves, its URL is Pending and the variable is left out: it is
    created without it and given it right after (planner.plan)."""
    fields = dict(function.fields)
    environment = dict(fields["service_config.environment_variables"])
    if isinstance(url, Pending):
        environment.pop(AUDIENCE_VARIABLE, None)
    else:
        environment[AUDIENCE_VARIABLE] = url
    fields["service_config.environment_variables"] = environment
    return dataclasses.replace(function, fields=fields)


def with_invokers(desired: Desired, emails: Iterable[str]) -> Desired:
    """`desired` whose function is invoked by exactly the scheduler SAs `emails`: both the
    run.invoker members and the function's own allowlist (VERTEX_CRON_ALLOWED_INVOKERS)."""
    allowed = sorted(set(emails))
    fields = dict(desired.function.fields)
    environment = dict(fields["service_config.environment_variables"])
    environment["VERTEX_CRON_ALLOWED_INVOKERS"] = ",".join(allowed)
    fields["service_config.environment_variables"] = environment
    return dataclasses.replace(
        desired,
        function=dataclasses.replace(desired.function, fields=fields),
        invoker_members=tuple(invoker_member(email) for email in allowed),
    )


def _schedule(
    settings: Deployment,
    schedule: ScheduleInput,
    published: Mapping[str, PublishedSpec],
    loaded: dict[str, tuple[SpecObject, PipelineSpec]],
) -> tuple[SpecObject, DesiredJob]:
    cron = cronexpr.check_cron(schedule.cron)
    time_zone = validation.check_time_zone(schedule.time_zone)
    project, region = settings.project, settings.region
    prefix = spec_prefix(project, region)
    key = str(schedule.spec)
    template: PublishedSpec | None = None
    if isinstance(schedule.spec, Path):
        if key not in loaded:
            loaded[key] = spec_file.load(schedule.spec, prefix=prefix)
    else:
        template = published[key]
        if key not in loaded:
            loaded[key] = spec_file.from_bytes(template.data, source=template.uri, prefix=prefix)
    spec_object, spec = loaded[key]
    spec_object = dataclasses.replace(spec_object, metadata=spec_metadata(project, region))
    body: dict[str, Any] = {
        "schedule": schedule.name,
        "spec_uri": f"gs://{settings.bucket}/{spec_object.object_name}",
        "parameter_values": spec_file.typed_parameters(schedule.name, spec, schedule.parameters, time_zone=time_zone),
        "pipeline_root": spec_file.check_pipeline_root(
            schedule.name, schedule.pipeline_root or default_pipeline_root(settings, schedule.name)
        ),
        "cron": cron,
        "time_zone": time_zone,
    }
    body.update(_option_fields(schedule))
    if template is not None:
        body["template_uri"] = template.pinned_uri
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


def _option_fields(schedule: ScheduleInput) -> dict[str, Any]:
    """The body fields of the options declared to go into it as they are (schedule_options.py)."""
    fields: dict[str, Any] = {}
    for name, option in SCHEDULE_OPTIONS.items():
        value = getattr(schedule, name)
        if option.body is None or value is None:
            continue
        try:
            fields[name] = option.body(value)
        except ValidationError as exc:
            raise ValidationError(f"schedule {schedule.name}: {exc.reason}", details=exc.details) from exc
    return fields


def default_pipeline_root(settings: Deployment, schedule: str) -> str:
    """Where a schedule's runs keep their artifacts unless it names a root: the one place
    infra/ lets the workload SA write, one folder per project, region and schedule (job ids
    repeat across regions). Not the spec's defaultPipelineRoot: that names a bucket of
    whoever compiled the pipeline, and a run that cannot write there fails at its first step."""
    return f"gs://{settings.bucket}/{PIPELINE_ROOT_PREFIX}{settings.project}/{settings.region}/{schedule}"


def _check_body(schedule: str, body: Mapping[str, Any]) -> None:
    """The function must accept the body as pinned after upload, and it must fit the limits."""
    pinned = encode_body({**body, "spec_uri": f"{body['spec_uri']}#{_WIDEST_GENERATION}", **_widest_since(body)})
    validation.check_body_size(schedule, pinned)
    try:
        parse_body(pinned)
    except BadRequest as exc:
        raise ValidationError(f"schedule {schedule}: {exc.message}") from exc


def _widest_since(body: Mapping[str, Any]) -> dict[str, str]:
    """The `catch_up_since` the planner adds to every body (with_catch_up), at its widest."""
    return {CATCH_UP_SINCE: "9999-12-31T23:59:59.999Z"}


def spec_metadata(project: str, region: str) -> dict[str, str]:
    """The object metadata of a spec uploaded for project+region's schedules."""
    return {SPEC_MANAGED_BY_KEY: MANAGED_BY, SPEC_LOCATION_KEY: location(project, region)}


def function_name(project: str, region: str, name: str) -> str:
    return f"projects/{project}/locations/{region}/functions/{name}"


def job_name(project: str, region: str, schedule: str) -> str:
    return f"projects/{project}/locations/{region}/jobs/{JOB_PREFIX}{schedule}"


def schedule_of(job: str) -> str | None:
    """The schedule name of a managed job's full name; None for the catch-up sweep's job and
    for a job vertex-cron does not manage."""
    short = job.rsplit("/", 1)[-1]
    return short[len(JOB_PREFIX) :] if short.startswith(JOB_PREFIX) and short != SWEEP_JOB else None


def is_managed_name(job: str) -> bool:
    """Whether a job's full name is one vertex-cron gives its jobs: a schedule's or the sweep's."""
    return job.rsplit("/", 1)[-1].startswith(JOB_PREFIX)


def is_sweep_job(job: str) -> bool:
    return job.rsplit("/", 1)[-1] == SWEEP_JOB


def sweep_job_name(project: str, region: str) -> str:
    return f"projects/{project}/locations/{region}/jobs/{SWEEP_JOB}"


def uses_catch_up(body: object) -> bool:
    """Whether a schedule's body (as written, or as read back) asks for catch-up."""
    return isinstance(body, Mapping) and body.get(CATCH_UP) is not None


def with_catch_up(desired: Desired, observed_jobs: Mapping[str, ObservedJob], *, now: datetime) -> Desired:
    """`desired` with catch-up resolved against the managed jobs of its region (vertex_cron_trigger.catch_up):

    - each schedule's `catch_up_since` (the earliest fire time it answers for: caught up
      with catch-up, reported missed without) is carried from its job as deployed, so
      redeploying keeps it; a new schedule, one that starts using catch-up now, one whose
      cron, time zone or start time changes, and one deployed before every body had it,
      start it `now`;
    - the sweep's job is wanted while a schedule of the region uses catch-up once this plan
      is applied: one written now, or one already deployed that stays (not rewritten now
      and not deleted by `apply --prune`). The planner deletes it when it is not wanted."""
    since = format_rfc3339(now.replace(microsecond=0))
    jobs = []
    for job in desired.jobs:
        deployed = (observed_jobs[job.name].fields if job.name in observed_jobs else {}).get("http_target.body")
        carried = (
            deployed.get(CATCH_UP_SINCE)
            if isinstance(deployed, Mapping) and _same_fire_times(deployed, job.body)
            else None
        )
        jobs.append(dataclasses.replace(job, body={**job.body, CATCH_UP_SINCE: carried or since}))
    written = {job.name for job in jobs}
    staying = (
        job
        for name, job in observed_jobs.items()
        if name not in written and schedule_of(name) is not None and not desired.prune
    )
    if any(uses_catch_up(job.body) for job in jobs) or any(
        uses_catch_up(job.fields.get("http_target.body")) for job in staying
    ):
        jobs.append(sweep_job(desired))
    return dataclasses.replace(desired, jobs=tuple(jobs))


# The body fields that decide a schedule's fire times (start_time bounds them from below).
_FIRE_TIME_FIELDS = ("cron", "time_zone", "start_time")


def _same_fire_times(deployed: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """Whether a deployed body had the fire times `body` has, and catch-up if `body` has it: a
    changed cron, time zone or start time would make the sweep catch up, or a run report
    missed, times that were never scheduled."""
    return (uses_catch_up(deployed) or not uses_catch_up(body)) and all(
        deployed.get(name) == body.get(name) for name in _FIRE_TIME_FIELDS
    )


def sweep_job(desired: Desired) -> DesiredJob:
    """The catch-up sweep's Scheduler job: it calls the same function as the schedules' jobs,
    as the same identity, with the sweep's body on the sweep's cron (in UTC)."""
    return DesiredJob(
        name=sweep_job_name(desired.project, desired.region),
        schedule=None,
        spec_object=None,
        body=dict(SWEEP_BODY),
        cron=SWEEP_CRON,
        time_zone="UTC",
        scheduler_sa=desired.scheduler_sa,
    )


def function_environment(settings: Deployment) -> dict[str, str | None]:
    """The function's environment (ARCHITECTURE "The function's contract"); doctor compares
    the deployed one against it without building the source zip."""
    return {
        "VERTEX_CRON_PROJECT": settings.project,
        "VERTEX_CRON_REGION": settings.region,
        "VERTEX_CRON_WORKLOAD_SA": settings.workload_sa,
        "VERTEX_CRON_SPEC_BUCKET": settings.bucket,
        "VERTEX_CRON_ALLOWED_INVOKERS": settings.scheduler_sa,
    }


def function_fields(settings: Deployment, source: FunctionSource) -> dict[str, Any]:
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
        "service_config.timeout_seconds": TIMEOUT_SECONDS,
        "service_config.max_instance_count": settings.max_instances,
        # Reachable by Scheduler, but only with an OIDC token of an invoker (never allUsers).
        "service_config.ingress_settings": "ALLOW_ALL",
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, SOURCE_LABEL: source.label},
    }


def pinned_spec_uri(job: DesiredJob, generations: Mapping[str, int | None]) -> str | Pending | None:
    """The job's spec_uri pinned to its object's generation in `generations` (Pending while
    the upload has not run); None for the sweep's job, which has no spec."""
    if job.spec_object is None:
        return None
    generation = generations.get(job.spec_object)
    base = f"{job.body['spec_uri']}#"
    if generation:
        return f"{base}{generation}"
    # Resolved by the executor from the upload step's output (models.Pending).
    return Pending("spec generation", ref=spec_generation_output(job.spec_object), prefix=base)


def job_fields(job: DesiredJob, *, spec_uri: str | Pending | None, url: str | Pending) -> dict[str, Any]:
    body = dict(job.body) if spec_uri is None else {**job.body, "spec_uri": spec_uri}
    return {
        "description": JOB_DESCRIPTION,
        "schedule": job.cron,
        "time_zone": job.time_zone,
        "http_target.uri": url,
        "http_target.http_method": "POST",
        "http_target.headers": {"Content-Type": "application/json"},
        "http_target.body": body,
        "http_target.oidc_token.service_account_email": job.scheduler_sa,
        "http_target.oidc_token.audience": url,
        **RETRY,
        "attempt_deadline": ATTEMPT_DEADLINE,
    }
