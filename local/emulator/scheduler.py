"""Cloud Scheduler v1 jobs: create, get, list, patch (updateMask), delete, pause, resume, run.

Like the real API: the caller names the job in `job.name` (the server makes one up if it
is empty), `schedule` must be unix-cron (5 fields) or an English interval ("every 5
minutes"), `timeZone` must be an IANA zone (empty means "Etc/UTC", as the API documents),
exactly one target, HTTP targets need an http(s) `uri`. The server fills `state`,
`userUpdateTime`, `scheduleTime` (next firing in the job's zone), `httpMethod` (POST),
`attemptDeadline` (180s) and the `retryConfig` defaults.

It stores an HTTP target in its own normal form, as the real API returns it (sources in
docs/fidelity.md, "Cloud Scheduler"): a `uri` with an empty path gets "/", `headers` gain
`User-Agent: Google-Cloud-Scheduler` and, for a body without one, `Content-Type:
application/octet-stream`; an `oidcToken` without `audience` gets the URI, an
`oauthToken` without `scope` gets cloud-platform.

`:run` calls `on_run(job)` synchronously (the local scheduler hands off to its
own thread). `record_scheduler_attempt()` is how the local scheduler reports a delivery.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vertex_cron import cronexpr

from .common import (
    LOCATION_PARENT,
    RPC_CODE,
    ApiError,
    apply_update_mask,
    deep,
    duration_seconds,
    invalid,
    is_email,
    masked_patch,
    not_found,
    page,
    parse_body,
    rfc3339,
    status_name_for_http,
    to_epoch,
)
from .routing import Request, Route
from .store import Store

log = logging.getLogger(__name__)

_JOB_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[A-Za-z0-9_-]{1,500}$")
_ENGLISH = re.compile(r"^every\s+(\d+)\s+(minutes?|mins?|hours?)(\s+.*)?$", re.IGNORECASE)
_RETRY_DEFAULTS = {
    "maxRetryDuration": "0s",
    "minBackoffDuration": "5s",
    "maxBackoffDuration": "3600s",
    "maxDoublings": 5,
}
_USER_AGENT = "Google-Cloud-Scheduler"
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_DEFAULT_OAUTH_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_OUTPUT_ONLY = ("userUpdateTime", "state", "status", "scheduleTime", "lastAttemptTime")
_MUTABLE = {
    "description",
    "schedule",
    "timeZone",
    "httpTarget",
    "pubsubTarget",
    "appEngineHttpTarget",
    "retryConfig",
    "attemptDeadline",
}
_TARGETS = ("httpTarget", "pubsubTarget", "appEngineHttpTarget")


def _duration(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = duration_seconds(value)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise invalid(f"Invalid duration for {what}: {value!r}.")
    return seconds


def _http_target_normal_form(target: dict[str, Any]) -> None:
    """Store an HttpTarget as Cloud Scheduler does (see the module docstring)."""
    parts = urlsplit(target["uri"])
    if not parts.path:
        target["uri"] = urlunsplit(parts._replace(path="/"))
    headers = target.setdefault("headers", {})
    for name in [name for name in headers if name.lower() == "user-agent"]:
        del headers[name]
    headers["User-Agent"] = _USER_AGENT
    if target.get("body") and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = _DEFAULT_CONTENT_TYPE
    if "oidcToken" in target:
        target["oidcToken"].setdefault("audience", target["uri"])
    if "oauthToken" in target:
        target["oauthToken"].setdefault("scope", _DEFAULT_OAUTH_SCOPE)


def next_fire_time(schedule: str, time_zone: str, after: float) -> float | None:
    """The next firing strictly after `after` (epoch seconds), or None if there is none."""
    m = _ENGLISH.fullmatch(schedule.strip())
    if m:
        amount = int(m.group(1))
        unit = 60 if m.group(2).lower().startswith("m") else 3600
        return after + amount * unit
    following = cronexpr.next_fire_times(schedule, time_zone or "Etc/UTC", datetime.fromtimestamp(after, UTC), 1)
    return following[0].timestamp() if following else None


class CloudScheduler:
    """Cloud Scheduler v1 jobs over the emulator's store. `on_run(job)` is called by `jobs:run`
    before it answers (make it quick, or hand off to a thread); exceptions are logged."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.on_run: Callable[[dict[str, Any]], object] | None = None
        self._jobs = store.collection("schedulerJobs")

    def routes(self) -> list[Route]:
        parent = rf"/v1/(?P<parent>{LOCATION_PARENT})/jobs"
        name = rf"/v1/(?P<name>{LOCATION_PARENT}/jobs/[^/:]+)"
        return [
            Route("POST", parent, self._sj_create),
            Route("GET", parent, self._sj_list, ("pageSize", "pageToken", "filter")),
            Route("GET", name, self._sj_get),
            Route("PATCH", name, self._sj_patch, ("updateMask",)),
            Route("DELETE", name, self._sj_delete),
            Route("POST", rf"{name}:pause", self._sj_pause, body_type="PauseJobRequest"),
            Route("POST", rf"{name}:resume", self._sj_resume, body_type="ResumeJobRequest"),
            Route("POST", rf"{name}:run", self._sj_run, body_type="RunJobRequest"),
        ]

    # -- in-process API for the local scheduler ------------------------------------------

    def scheduler_jobs(self) -> list[dict[str, Any]]:
        """Snapshot (deep copies) of every Scheduler job, in creation order."""
        with self.store.lock:
            return [deep(job) for job in self._jobs.values()]

    def record_scheduler_attempt(self, job_name: str, attempt_time: Any, status_code: int) -> None:
        """Record a delivery attempt: lastAttemptTime, status (google.rpc.Status), scheduleTime.

        `attempt_time` is a datetime, RFC 3339 string or epoch seconds; `status_code` the
        HTTP status the target answered (2xx = success, status becomes {}).
        """
        t = to_epoch(attempt_time)
        with self.store.lock:
            job = self._jobs.get(job_name)
            if job is None:
                raise KeyError(job_name)
            job["lastAttemptTime"] = rfc3339(t)
            if 200 <= int(status_code) < 300:
                job["status"] = {}
            else:
                name = status_name_for_http(int(status_code))
                job["status"] = {"code": RPC_CODE.get(name, 2), "message": f"HTTP {int(status_code)}"}
            nxt = self._sj_next(job, max(t, self.store.now()))
            if nxt is not None:
                job["scheduleTime"] = rfc3339(nxt)
            self.store.touch()
        self.store.save()

    # -- internals -----------------------------------------------------------------------

    def _sj_next(self, job: dict[str, Any], after: float) -> float | None:
        try:
            return next_fire_time(job["schedule"], job.get("timeZone", "Etc/UTC"), after)
        except Exception:
            return None

    def _sj_get_or_404(self, name: str) -> dict[str, Any]:
        job = self._jobs.get(name)
        if job is None:
            raise not_found(f"Job not found: {name}.")
        return job

    @staticmethod
    def _sj_validate(job: dict[str, Any]) -> None:
        schedule = (job.get("schedule") or "").strip()
        if not schedule:
            raise invalid("Job.schedule is required.")
        if not _ENGLISH.fullmatch(schedule):
            from croniter import croniter

            fields = schedule.split()
            if len(fields) != 5 or schedule.startswith("@") or not croniter.is_valid(schedule):
                raise invalid(f'Schedule "{schedule}" is not a valid unix-cron or English schedule.')
        tz = job.get("timeZone")
        if tz:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise invalid(f'Invalid time zone "{tz}": must be an IANA time zone name.') from None
        targets = [t for t in _TARGETS if t in job]
        if not targets:
            raise invalid("Job must have a target: http_target, pubsub_target or app_engine_http_target.")
        if "description" in job and len(job["description"]) > 500:
            raise invalid("Job.description must be at most 500 characters.")
        http = job.get("httpTarget")
        if http is not None:
            uri = http.get("uri", "")
            if not re.match(r"^https?://[^/\s]+", uri):
                raise invalid(f'HttpTarget.uri "{uri}" must begin with "http://" or "https://".')
            for header in http.get("headers") or {}:
                low = header.lower()
                if low in {"host", "content-length"} or low.startswith(("x-google-", "x-appengine-")):
                    raise invalid(f'Header "{header}" cannot be set on an HTTP target.')
            token = http.get("oidcToken") or http.get("oauthToken")
            if token is not None and not is_email(token.get("serviceAccountEmail", "")):
                raise invalid("OidcToken/OAuthToken.service_account_email must be a service account email.")
        pubsub = job.get("pubsubTarget")
        if pubsub is not None and not re.fullmatch(r"projects/[^/]+/topics/[^/]+", pubsub.get("topicName", "")):
            raise invalid("PubsubTarget.topic_name must be projects/PROJECT/topics/TOPIC.")
        retry = job.get("retryConfig") or {}
        if not 0 <= int(retry.get("retryCount", 0)) <= 5:
            raise invalid("RetryConfig.retry_count must be between 0 and 5.")
        if int(retry.get("maxDoublings", 0)) < 0:
            raise invalid("RetryConfig.max_doublings must not be negative.")
        lo = _duration(retry.get("minBackoffDuration"), "min_backoff_duration")
        hi = _duration(retry.get("maxBackoffDuration"), "max_backoff_duration")
        _duration(retry.get("maxRetryDuration"), "max_retry_duration")
        if lo is not None and hi is not None and lo > hi:
            raise invalid("RetryConfig.min_backoff_duration must not exceed max_backoff_duration.")
        deadline = _duration(job.get("attemptDeadline"), "attempt_deadline")
        if deadline is not None and http is not None and not 15 <= deadline <= 1800:
            raise invalid("attempt_deadline must be between 15 seconds and 30 minutes for HTTP targets.")

    def _sj_fill_defaults(self, job: dict[str, Any]) -> None:
        job.setdefault("timeZone", "Etc/UTC")
        if "httpTarget" in job:
            job["httpTarget"].setdefault("httpMethod", "POST")
            _http_target_normal_form(job["httpTarget"])
        retry = job.setdefault("retryConfig", {})
        for key, value in _RETRY_DEFAULTS.items():
            retry.setdefault(key, value)
        job.setdefault("attemptDeadline", "180s")

    # -- handlers ------------------------------------------------------------------------

    def _sj_create(self, req: Request, parent: str) -> Any:
        job = parse_body(req.body, "Job")
        for key in _OUTPUT_ONLY:
            job.pop(key, None)
        name = job.get("name") or f"{parent}/jobs/{uuid.uuid4().hex[:20]}"
        if not _JOB_NAME.fullmatch(name):
            raise invalid(f'Invalid job name "{name}": must be projects/PROJECT/locations/LOCATION/jobs/JOB_ID.')
        if not name.startswith(parent + "/jobs/"):
            raise invalid(f'Job name "{name}" does not belong to parent "{parent}".')
        self._sj_validate(job)
        now = self.store.now()
        with self.store.lock:
            if name in self._jobs:
                raise ApiError("ALREADY_EXISTS", f"Job {name} already exists.")
            job["name"] = name
            self._sj_fill_defaults(job)
            job["state"] = "ENABLED"
            return self._sj_store_written(name, job, now)

    def _sj_get(self, req: Request, name: str) -> Any:
        with self.store.lock:
            return deep(self._sj_get_or_404(name))

    def _sj_list(self, req: Request, parent: str) -> Any:
        with self.store.lock:
            jobs = [deep(j) for n, j in self._jobs.items() if n.startswith(parent + "/")]
        return page("jobs", jobs, req.query, key=parent, default_size=500)

    def _sj_patch(self, req: Request, name: str) -> Any:
        patch = parse_body(req.body, "Job")
        if patch.get("name") and patch["name"] != name:
            raise invalid(f'Job name in body "{patch["name"]}" does not match the URL.')
        patch, paths = masked_patch(patch, req.query, mutable=_MUTABLE, ignored={*_OUTPUT_ONLY, "name"})
        with self.store.lock:
            current = self._sj_get_or_404(name)
            updated = apply_update_mask(current, patch, paths)
            # Setting one target replaces the others (oneof).
            touched = set(paths) if paths is not None else set(patch)
            for target in _TARGETS:
                if any(p == target or p.startswith(target + ".") for p in touched) and target in updated:
                    for other in _TARGETS:
                        if other != target:
                            updated.pop(other, None)
            self._sj_validate(updated)
            self._sj_fill_defaults(updated)
            return self._sj_store_written(name, updated, self.store.now())

    def _sj_store_written(self, name: str, job: dict[str, Any], now: float) -> dict[str, Any]:
        """Keep a job a caller created or patched: stamped `userUpdateTime`, its next firing
        in `scheduleTime`, keys in order; answers a copy. Call with the store's lock held."""
        job["userUpdateTime"] = rfc3339(now)
        nxt = self._sj_next(job, now)
        if nxt is not None:
            job["scheduleTime"] = rfc3339(nxt)
        ordered = {k: job[k] for k in sorted(job)}
        self._jobs[name] = ordered
        self.store.touch()
        return deep(ordered)

    def _sj_delete(self, req: Request, name: str) -> Any:
        with self.store.lock:
            self._sj_get_or_404(name)
            del self._jobs[name]
            self.store.touch()
        return {}

    def _sj_set_state(self, name: str, state: str) -> dict[str, Any]:
        with self.store.lock:
            job = self._sj_get_or_404(name)
            now = self.store.now()
            job["state"] = state
            job["userUpdateTime"] = rfc3339(now)
            if state == "ENABLED":
                nxt = self._sj_next(job, now)
                if nxt is not None:
                    job["scheduleTime"] = rfc3339(nxt)
            self.store.touch()
            return deep(job)

    def _sj_pause(self, req: Request, name: str) -> Any:
        with self.store.lock:
            job = self._sj_get_or_404(name)
            if job["state"] not in {"ENABLED", "PAUSED"}:
                raise ApiError("FAILED_PRECONDITION", f"Job {name} cannot be paused in state {job['state']}.")
        return self._sj_set_state(name, "PAUSED")

    def _sj_resume(self, req: Request, name: str) -> Any:
        with self.store.lock:
            job = self._sj_get_or_404(name)
            if job["state"] not in {"ENABLED", "PAUSED"}:
                raise ApiError("FAILED_PRECONDITION", f"Job {name} cannot be resumed in state {job['state']}.")
        return self._sj_set_state(name, "ENABLED")

    def _sj_run(self, req: Request, name: str) -> Any:
        with self.store.lock:
            job = deep(self._sj_get_or_404(name))
        hook = self.on_run
        if hook is not None:
            try:
                hook(deep(job))
            except Exception:
                log.exception("on_run hook failed for %s", name)
        return job
