"""The trigger: one Cloud Scheduler firing in, at most one Vertex AI PipelineJob out.

Order matters: method, configuration and token come before the body so an unauthenticated
caller learns nothing; cheap checks come before any call to Google.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import deadline
from . import settings as settings_module
from .body import MAX_BODY_BYTES, TriggerBody, parse_body
from .errors import BadRequest, Forbidden, MethodNotAllowed, TriggerError
from .google_rest import GoogleRest
from .logical_time import SCHEDULE_TIME_HEADER, logical_time
from .oidc import CertCache, TokenPolicy, bearer_token, verify_id_token
from .parameters import coerce_parameters
from .pipeline_job import build_pipeline_job, job_id
from .placeholders import render_parameters
from .request_log import RequestLog, emit
from .spec_store import SpecStore
from .spec_uri import bucket_of, parse_spec_uri
from .timefmt import format_rfc3339

JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Runtime:
    """Per-process state, built on the first request: config, the seam, the caches."""

    settings: settings_module.Settings
    rest: GoogleRest
    certs: CertCache
    specs: SpecStore


@functools.cache
def runtime() -> Runtime:
    config = settings_module.settings()
    rest = GoogleRest(config)
    return Runtime(settings=config, rest=rest, certs=CertCache(rest.fetch_certs), specs=SpecStore(rest))


@dataclass
class _Result:
    """What the request has learned so far; it becomes the response and the log line."""

    outcome: str = "failed"
    status: int = 500
    severity: str = "ERROR"
    message: str = ""
    schedule: str | None = None
    logical_time: datetime | None = None
    job: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def trigger(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework HTTP entry point (a flask.Request in, a JSON response out)."""
    started = time.monotonic()
    result = _Result()
    try:
        with deadline.request_deadline(deadline.REQUEST_SECONDS):
            _handle(request, result)
    except TriggerError as exc:
        result.outcome, result.status, result.severity, result.message = exc.outcome, exc.status, "ERROR", exc.message
        result.extra = {"field": exc.field} if exc.field else {}
    except Exception as exc:
        result.outcome, result.status, result.severity = "failed", 500, "ERROR"
        result.message = f"internal error ({type(exc).__name__}: {exc})"
    return _finish(result, started)


def _handle(request: Any, result: _Result) -> None:
    if request.method != "POST":
        raise MethodNotAllowed(f"method {request.method} is not allowed; Cloud Scheduler sends POST")
    rt = runtime()
    config = rt.settings
    if config.allowed_invokers:
        policy = TokenPolicy(
            audiences=config.audiences or (request.base_url,),
            allowed_emails=config.allowed_invokers,
            accept_stripped_signature=config.on_cloud_run,
        )
        verify_id_token(bearer_token(request.headers.get("Authorization")), certs=rt.certs, policy=policy)
    body = parse_body(_read_body(request))
    result.schedule = body.schedule
    when = logical_time(
        request.headers.get(SCHEDULE_TIME_HEADER),
        cron=body.cron,
        time_zone=body.time_zone,
        now=datetime.now(UTC),
    )
    result.logical_time = when
    uri = parse_spec_uri(body.spec_uri, allowed_bucket=config.spec_bucket)
    the_id = job_id(body.schedule, when)
    result.job = f"{config.parent}/pipelineJobs/{the_id}"
    if _outside_window(body, when, result):
        return
    spec = rt.specs.load(uri)
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
        active = rt.rest.count_active_runs(body.schedule, excluding=the_id, limit=body.max_concurrent_runs)
        if active >= body.max_concurrent_runs:
            _succeed(
                result,
                "skipped",
                "WARNING",
                f"skipped: {active} runs of {body.schedule} are still "
                f"queued or running (max_concurrent_runs={body.max_concurrent_runs})",
            )
            return
    created = rt.rest.create_pipeline_job(the_id, job)
    if created:
        _succeed(result, "created", "INFO", f"created PipelineJob {result.job}")
    else:
        _succeed(result, "duplicate", "INFO", f"PipelineJob {result.job} already exists: this firing already ran")


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


def _read_body(request: Any) -> bytes:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise BadRequest(f"body is {request.content_length} bytes; the limit is {MAX_BODY_BYTES}", field="body")
    return request.stream.read(MAX_BODY_BYTES + 1)


def _outside_window(body: TriggerBody, when: datetime, result: _Result) -> bool:
    if body.start_time and when < body.start_time:
        _succeed(result, "skipped", "INFO", f"skipped: {format_rfc3339(when)} is before start_time")
        return True
    if body.end_time and when >= body.end_time:
        _succeed(result, "skipped", "INFO", f"skipped: {format_rfc3339(when)} is at or after end_time")
        return True
    return False


def _succeed(result: _Result, outcome: str, severity: str, message: str) -> None:
    result.outcome, result.status, result.severity, result.message = outcome, 200, severity, message


def _finish(result: _Result, started: float) -> tuple[str, int, dict[str, str]]:
    logical = format_rfc3339(result.logical_time) if result.logical_time else None
    succeeded = result.status == 200
    # A skipped or rejected firing made no job; a failed one may have (a create cut off).
    job = result.job if result.outcome in ("created", "duplicate", "failed") else None
    emit(
        RequestLog(
            severity=result.severity,
            message=result.message,
            outcome=result.outcome,
            status=result.status,
            schedule=result.schedule,
            logical_time=logical,
            job=job,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
    )
    payload: dict[str, Any] = {"outcome": result.outcome, "message": result.message}
    if succeeded:
        payload |= {
            "schedule": result.schedule,
            "logical_time": logical,
            "job": result.job,
            "duplicate": result.outcome == "duplicate",
            "skipped": result.outcome == "skipped",
        }
    payload |= result.extra
    return json.dumps(payload), result.status, JSON_HEADERS
