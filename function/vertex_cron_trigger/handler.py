"""The trigger: one Cloud Scheduler firing in, at most one Vertex AI PipelineJob out
(firing.py); or the catch-up sweep job's request in, the sweep's summary out (sweep.py).

Order matters: method, configuration and token come before the body so an unauthenticated
caller learns nothing; cheap checks come before any call to Google.
"""

from __future__ import annotations

import functools
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import deadline
from . import settings as settings_module
from .body import MAX_BODY_BYTES, parse_request
from .catch_up import SWEEP_CRON
from .errors import BadRequest, MethodNotAllowed, TriggerError, UpstreamUnavailable
from .firing import fire, job_name
from .google_rest import GoogleRest
from .logical_time import SCHEDULE_TIME_HEADER, logical_time
from .oidc import CertCache, TokenPolicy, bearer_token, verify_id_token
from .request_log import RequestLog, emit
from .run_reports import report_before
from .spec_store import SpecStore
from .timefmt import format_rfc3339

if TYPE_CHECKING:
    from .sweep import SweepReport

JSON_HEADERS = {"Content-Type": "application/json"}


class Runtime:
    """Per-process state, built on the first request: config, the seam, the caches."""

    __slots__ = ("settings", "rest", "certs", "specs")

    def __init__(self, settings: settings_module.Settings, rest: GoogleRest) -> None:
        self.settings = settings
        self.rest = rest
        self.certs = CertCache(rest.fetch_certs)
        self.specs = SpecStore(rest)


@functools.cache
def runtime() -> Runtime:
    config = settings_module.settings()
    return Runtime(config, GoogleRest(config))


class _Result:
    """What the request has learned so far; it becomes the response and the log line."""

    __slots__ = ("outcome", "status", "severity", "message", "schedule", "logical_time", "job", "extra", "sweep")

    def __init__(self) -> None:
        self.outcome = "failed"
        self.status = 500
        self.severity = "ERROR"
        self.message = ""
        self.schedule: str | None = None
        self.logical_time: datetime | None = None
        self.job: str | None = None
        self.extra: dict[str, Any] = {}
        self.sweep: dict[str, Any] | None = None  # the catch-up sweep's summary


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
    body = parse_request(_read_body(request))
    now = datetime.now(UTC)
    if body is None:
        _sweep(request, rt, result, now)
        return
    result.schedule = body.schedule
    when = logical_time(request.headers.get(SCHEDULE_TIME_HEADER), cron=body.cron, time_zone=body.time_zone, now=now)
    result.logical_time = when
    result.job = job_name(config, body, when)  # named on failure too: a create may have been cut off
    fired = fire(body, when, config=config, rest=rt.rest, specs=rt.specs)
    _succeed(result, fired.outcome, fired.severity, fired.message)
    if fired.outcome == "created" and body.catch_up is None:  # the sweep reports catch-up schedules
        report_before(rt.rest, body, when, fired.job, config.parent)


def _sweep(request: Any, rt: Runtime, result: _Result, now: datetime) -> None:
    """The catch-up sweep job's request (sweep.py): one summary line, an ERROR line per report."""
    from .sweep import sweep  # lazily: an on-time firing, most requests, never loads the sweep

    sweep_time = logical_time(request.headers.get(SCHEDULE_TIME_HEADER), cron=SWEEP_CRON, time_zone=None, now=now)
    result.logical_time = sweep_time
    report = sweep(
        config=rt.settings,
        rest=rt.rest,
        specs=rt.specs,
        sweep_time=sweep_time,
        now=now,
        targets=rt.settings.audiences or (request.base_url,),
    )
    totals = report.totals()
    summary = ", ".join(f"{count} {what}" for what, count in totals.items())
    reported = report.reporting if report.reported else None
    result.sweep = {
        # The range whose run_failed / missed lines this sweep wrote (null: none).
        "reported": [format_rfc3339(moment) for moment in reported] if reported else None,
        "schedules": {name: s.as_json() for name, s in sorted(report.schedules.items())},
        "created_jobs": report.created,
    }
    if report.report_error:  # the reports wait for a later sweep: say so where the alert looks
        why, exc = report.report_error
        transient = report.transient_errors or isinstance(exc, UpstreamUnavailable)
        result.outcome, result.status, result.severity = "failed", 503 if transient else exc.status, "ERROR"
        result.message = f"swept {_schedules(report)}: {summary}; {why} ({exc.message})"
        return
    if report.transient_errors:  # a retry may get through; the reports are written once
        result.outcome, result.status, result.severity = "failed", 503, "ERROR"
        result.message = f"swept {_schedules(report)}, some failing for now: {summary}"
        return
    # A schedule that cannot be swept for good (its body refused, its spec gone) must not make
    # Scheduler retry the whole sweep at each sweep until it is fixed.
    severity = "ERROR" if report.permanent_errors else "WARNING" if totals["capped"] else "INFO"
    failing = f", {report.permanent_errors} of them failing" if report.permanent_errors else ""
    note = f"; {report.report_note}" if report.report_note else ""
    _succeed(result, "swept", severity, f"swept {_schedules(report)}{failing}: {summary}{note}")


def _schedules(report: SweepReport) -> str:
    count = len(report.schedules)
    return f"{count} schedule" + ("" if count == 1 else "s")


def _read_body(request: Any) -> bytes:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise BadRequest(f"body is {request.content_length} bytes; the limit is {MAX_BODY_BYTES}", field="body")
    return request.stream.read(MAX_BODY_BYTES + 1)


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
            sweep=result.sweep,
        )
    )
    payload: dict[str, Any] = {"outcome": result.outcome, "message": result.message}
    if result.sweep is not None:
        payload |= {"logical_time": logical, **result.sweep}
    elif succeeded:
        payload |= {
            "schedule": result.schedule,
            "logical_time": logical,
            "job": result.job,
            "duplicate": result.outcome == "duplicate",
            "skipped": result.outcome == "skipped",
        }
    payload |= result.extra
    return json.dumps(payload), result.status, JSON_HEADERS
