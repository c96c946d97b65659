"""One firing of a schedule: (its Scheduler job body, a logical time) in, its PipelineJob out,
or a skip. The on-time firing (handler.py) and the catch-up sweep (sweep.py) both come here,
so a caught-up run has exactly the id, parameters and placeholders the on-time one would have.
"""

from __future__ import annotations

from datetime import datetime

from .body import TriggerBody
from .errors import BadRequest, Forbidden
from .google_rest import GoogleRest
from .parameters import coerce_parameters
from .pipeline_job import build_pipeline_job, job_id
from .placeholders import render_parameters
from .settings import Settings
from .spec_store import SpecStore
from .spec_uri import bucket_of, parse_spec_uri
from .timefmt import format_rfc3339


class Fired:
    """What became of the firing; errors (TriggerError) are raised instead."""

    __slots__ = ("outcome", "severity", "message", "job")

    def __init__(self, outcome: str, severity: str, message: str, job: str) -> None:
        self.outcome = outcome  # created, duplicate, skipped
        self.severity = severity  # INFO, or WARNING for a max_concurrent_runs skip
        self.message = message
        self.job = job  # the full resource name of the firing's PipelineJob (made or not)


def job_name(config: Settings, body: TriggerBody, when: datetime) -> str:
    return f"{config.parent}/pipelineJobs/{job_id(body.schedule, when)}"


def fire(body: TriggerBody, when: datetime, *, config: Settings, rest: GoogleRest, specs: SpecStore) -> Fired:
    uri = parse_spec_uri(body.spec_uri, allowed_bucket=config.spec_bucket)
    the_id = job_id(body.schedule, when)
    name = job_name(config, body, when)
    if body.start_time and when < body.start_time:
        return Fired("skipped", "INFO", f"skipped: {format_rfc3339(when)} is before start_time", name)
    if body.end_time and when >= body.end_time:
        return Fired("skipped", "INFO", f"skipped: {format_rfc3339(when)} is at or after end_time", name)
    spec = specs.load(uri)
    rendered = render_parameters(
        body.parameter_values, schedule=body.schedule, logical_time=when, time_zone=body.time_zone
    )
    values = {**spec.preset_values, **rendered}
    pipeline_root = _pipeline_root(body, spec.default_pipeline_root, config.pipeline_root_buckets)
    job = build_pipeline_job(
        spec=spec,
        schedule=body.schedule,
        logical_time=when,
        parameter_values=coerce_parameters(spec, values),
        pipeline_root=pipeline_root,
        service_account=config.workload_sa,
        enable_caching=body.enable_caching,
        template_uri=body.template_uri,
    )
    if body.max_concurrent_runs is not None:
        active = rest.count_active_runs(body.schedule, excluding=the_id, limit=body.max_concurrent_runs)
        if active >= body.max_concurrent_runs:
            return Fired(
                "skipped",
                "WARNING",
                f"skipped: {active} runs of {body.schedule} are still "
                f"queued or running (max_concurrent_runs={body.max_concurrent_runs})",
                name,
            )
    if rest.create_pipeline_job(the_id, job):
        return Fired("created", "INFO", f"created PipelineJob {name}", name)
    return Fired("duplicate", "INFO", f"PipelineJob {name} already exists: this firing already ran", name)


def _pipeline_root(body: TriggerBody, spec_default: str | None, allowed_buckets: frozenset[str]) -> str:
    """The body's pipeline root, else the spec's; its bucket must be one the deployer allows:
    runs write their outputs there as the workload SA, so a body or spec must not send them
    out of the project."""
    pipeline_root = body.pipeline_root or spec_default
    if not pipeline_root:
        raise BadRequest(
            "pipeline_root is required: the spec has no defaultPipelineRoot (compile with "
            "pipeline_root=... or set pipeline_root in the schedule)",
            field="pipeline_root",
        )
    bucket = bucket_of(pipeline_root)
    if bucket not in allowed_buckets:
        origin = "pipeline_root" if body.pipeline_root else "the spec's default pipeline root"
        raise Forbidden(
            f"{origin} {pipeline_root!r:.200} is in bucket {bucket!r}, which is not one this function "
            f"allows ({', '.join(sorted(allowed_buckets))}; VERTEX_CRON_PIPELINE_ROOT_BUCKETS, set by the "
            "deployer from the schedules' pipeline roots)",
            field="pipeline_root",
        )
    return pipeline_root
