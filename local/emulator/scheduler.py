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

`:run` calls `on_scheduler_run(job)` synchronously (the local scheduler hands off to its
own thread). `record_scheduler_attempt()` is how the local scheduler reports a delivery.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .common import (
    LOCATION_PARENT,
    RPC_CODE,
    ApiError,
    apply_update_mask,
    deep,
    invalid,
    is_email,
    not_found,
    page,
    parse_body,
    parse_update_mask,
    rfc3339,
    status_name_for_http,
    to_epoch,
)

if TYPE_CHECKING:
    from .server import Request

log = logging.getLogger(__name__)

_JOB_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[A-Za-z0-9_-]{1,500}$")
_ENGLISH = re.compile(r"^every\s+(\d+)\s+(minutes?|mins?|hours?)(\s+.*)?$", re.IGNORECASE)
_DURATION = re.compile(r"^(\d+(\.\d+)?)s$")
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
    m = _DURATION.fullmatch(value)
    if not m:
        raise invalid(f"Invalid duration for {what}: {value!r}.")
    return float(m.group(1))


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
    """The next firing strictly after `after` (epoch seconds), or None if unknown."""
    m = _ENGLISH.fullmatch(schedule.strip())
    if m:
        amount = int(m.group(1))
        unit = 60 if m.group(2).lower().startswith("m") else 3600
        return after + amount * unit
    from croniter import croniter

    tz = ZoneInfo(time_zone or "Etc/UTC")
    base = datetime.fromtimestamp(after, tz)
    return croniter(schedule, base).get_next(datetime).timestamp()


class SchedulerMixin:
    _lock: threading.RLock
    _state: dict[str, Any]
    on_scheduler_run: Callable[[dict[str, Any]], object] | None

    def now(self) -> float:
        raise NotImplementedError

    def _touch(self) -> None:
        raise NotImplementedError

    def _save(self) -> None:
        raise NotImplementedError

    def _scheduler_routes(self) -> list[tuple[str, str, Any, set[str], str | None]]:
        name = rf"(?P<name>{LOCATION_PARENT}/jobs/[^/:]+)"
        return [
            ("POST", rf"/v1/(?P<parent>{LOCATION_PARENT})/jobs", self._sj_create, set(), None),
            (
                "GET",
                rf"/v1/(?P<parent>{LOCATION_PARENT})/jobs",
                self._sj_list,
                {"pageSize", "pageToken", "filter"},
                None,
            ),
            ("GET", rf"/v1/{name}", self._sj_get, set(), None),
            ("PATCH", rf"/v1/{name}", self._sj_patch, {"updateMask"}, None),
            ("DELETE", rf"/v1/{name}", self._sj_delete, set(), None),
            ("POST", rf"/v1/{name}:pause", self._sj_pause, set(), "PauseJobRequest"),
            ("POST", rf"/v1/{name}:resume", self._sj_resume, set(), "ResumeJobRequest"),
            ("POST", rf"/v1/{name}:run", self._sj_run, set(), "RunJobRequest"),
        ]

    # -- in-process API for the local scheduler ------------------------------------------

    def scheduler_jobs(self) -> list[dict[str, Any]]:
        """Snapshot (deep copies) of every Scheduler job, in creation order."""
        with self._lock:
            return [deep(job) for job in self._state["schedulerJobs"].values()]

    def record_scheduler_attempt(self, job_name: str, attempt_time: Any, status_code: int) -> None:
        """Record a delivery attempt: lastAttemptTime, status (google.rpc.Status), scheduleTime.

        `attempt_time` is a datetime, RFC 3339 string or epoch seconds; `status_code` the
        HTTP status the target answered (2xx = success, status becomes {}).
        """
        t = to_epoch(attempt_time)
        with self._lock:
            job = self._state["schedulerJobs"].get(job_name)
            if job is None:
                raise KeyError(job_name)
            job["lastAttemptTime"] = rfc3339(t)
            if 200 <= int(status_code) < 300:
                job["status"] = {}
            else:
                name = status_name_for_http(int(status_code))
                job["status"] = {"code": RPC_CODE.get(name, 2), "message": f"HTTP {int(status_code)}"}
            nxt = self._sj_next(job, max(t, self.now()))
            if nxt is not None:
                job["scheduleTime"] = rfc3339(nxt)
            self._touch()
        self._save()

    # -- internals -----------------------------------------------------------------------

    def _sj_next(self, job: dict[str, Any], after: float) -> float | None:
        try:
            return next_fire_time(job["schedule"], job.get("timeZone", "Etc/UTC"), after)
        except Exception:
            return None

    def _sj_get_or_404(self, name: str) -> dict[str, Any]:
        job = self._state["schedulerJobs"].get(name)
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
        now = self.now()
        with self._lock:
            if name in self._state["schedulerJobs"]:
                raise ApiError("ALREADY_EXISTS", f"Job {name} already exists.")
            job["name"] = name
            self._sj_fill_defaults(job)
            job["userUpdateTime"] = rfc3339(now)
            job["state"] = "ENABLED"
            nxt = self._sj_next(job, now)
            if nxt is not None:
                job["scheduleTime"] = rfc3339(nxt)
            ordered = {k: job[k] for k in sorted(job)}
            self._state["schedulerJobs"][name] = ordered
            self._touch()
            return deep(ordered)

    def _sj_get(self, req: Request, name: str) -> Any:
        with self._lock:
            return deep(self._sj_get_or_404(name))

    def _sj_list(self, req: Request, parent: str) -> Any:
        with self._lock:
            jobs = [deep(j) for n, j in self._state["schedulerJobs"].items() if n.startswith(parent + "/")]
        chunk, token = page(jobs, req.query, key=parent, default_size=500)
        out: dict[str, Any] = {}
        if chunk:
            out["jobs"] = chunk
        if token:
            out["nextPageToken"] = token
        return out

    def _sj_patch(self, req: Request, name: str) -> Any:
        patch = parse_body(req.body, "Job")
        if patch.get("name") and patch["name"] != name:
            raise invalid(f'Job name in body "{patch["name"]}" does not match the URL.')
        paths = parse_update_mask(req.query)
        if paths is not None:
            for path in paths:
                if path.split(".")[0] not in _MUTABLE and path.split(".")[0] not in _OUTPUT_ONLY and path != "name":
                    raise invalid(f'Invalid update_mask path "{path}".')
            paths = [p for p in paths if p.split(".")[0] in _MUTABLE]
        else:
            patch = {k: v for k, v in patch.items() if k in _MUTABLE}
        with self._lock:
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
            now = self.now()
            updated["userUpdateTime"] = rfc3339(now)
            nxt = self._sj_next(updated, now)
            if nxt is not None:
                updated["scheduleTime"] = rfc3339(nxt)
            ordered = {k: updated[k] for k in sorted(updated)}
            self._state["schedulerJobs"][name] = ordered
            self._touch()
            return deep(ordered)

    def _sj_delete(self, req: Request, name: str) -> Any:
        with self._lock:
            self._sj_get_or_404(name)
            del self._state["schedulerJobs"][name]
            self._touch()
        return {}

    def _sj_set_state(self, name: str, state: str) -> dict[str, Any]:
        with self._lock:
            job = self._sj_get_or_404(name)
            now = self.now()
            job["state"] = state
            job["userUpdateTime"] = rfc3339(now)
            if state == "ENABLED":
                nxt = self._sj_next(job, now)
                if nxt is not None:
                    job["scheduleTime"] = rfc3339(nxt)
            self._touch()
            return deep(job)

    def _sj_pause(self, req: Request, name: str) -> Any:
        with self._lock:
            job = self._sj_get_or_404(name)
            if job["state"] not in {"ENABLED", "PAUSED"}:
                raise ApiError("FAILED_PRECONDITION", f"Job {name} cannot be paused in state {job['state']}.")
        return self._sj_set_state(name, "PAUSED")

    def _sj_resume(self, req: Request, name: str) -> Any:
        with self._lock:
            job = self._sj_get_or_404(name)
            if job["state"] not in {"ENABLED", "PAUSED"}:
                raise ApiError("FAILED_PRECONDITION", f"Job {name} cannot be resumed in state {job['state']}.")
        return self._sj_set_state(name, "ENABLED")

    def _sj_run(self, req: Request, name: str) -> Any:
        with self._lock:
            job = deep(self._sj_get_or_404(name))
        hook = self.on_scheduler_run
        if hook is not None:
            try:
                hook(deep(job))
            except Exception:
                log.exception("on_scheduler_run hook failed for %s", name)
        return job
