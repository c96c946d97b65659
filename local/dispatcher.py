"""A local Cloud Scheduler: fires the emulator's HTTP jobs like the real service would.

Each request is what Cloud Scheduler sends to an HTTP target with an OIDC token: the
job's method, body and headers, plus `X-CloudScheduler*` headers and a Bearer ID token
minted by the local issuer. Retries follow the job's retry_config; every attempt is
recorded on the emulator, so `describe`/`list` show the last attempt like the real API.

Time may be compressed for demos: with `time_scale=N`, N schedule seconds pass per real
second (cron times and retry backoffs alike), starting from the real time at start().
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests
from vertex_cron_local.emulator.common import duration_seconds
from vertex_cron_local.emulator.scheduler import next_fire_time
from vertex_cron_trigger.timefmt import format_rfc3339

# Cloud Scheduler's documented retry_config defaults and HTTP attempt deadline.
DEFAULT_MIN_BACKOFF_SECONDS = 5.0
DEFAULT_MAX_BACKOFF_SECONDS = 3600.0
DEFAULT_MAX_DOUBLINGS = 5
DEFAULT_ATTEMPT_DEADLINE_SECONDS = 180.0
# How often (real seconds) the job list is re-read, so new, paused and resumed jobs are
# noticed promptly without busy-waiting on two shared cores.
POLL_INTERVAL_SECONDS = 0.2
# The status recorded when the target could not be reached at all (no HTTP answer).
UNREACHABLE_STATUS = 503


class JobStore(Protocol):
    """What the scheduler needs from the control-plane emulator."""

    def scheduler_jobs(self) -> list[dict[str, Any]]: ...

    def record_scheduler_attempt(self, job_name: str, attempt_time: datetime, status_code: int) -> None: ...


class TokenMinter(Protocol):
    def mint(self, *, audience: str, email: str) -> str: ...


@dataclass(frozen=True)
class Attempt:
    """One HTTP request to the job's target and what came back."""

    status_code: int
    body: str
    attempt_time: datetime

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass
class Delivery:
    """One firing of a job (one logical schedule time) with all its attempts."""

    job_name: str
    schedule_time: datetime
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].succeeded

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]


class ScaledClock:
    """Schedule time that runs `time_scale` times faster than real time."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._origin = datetime.now(UTC)
        self._origin_monotonic = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._origin_monotonic) * self.time_scale
        return self._origin + timedelta(seconds=elapsed)

    def real_seconds(self, schedule_seconds: float) -> float:
        return schedule_seconds / self.time_scale


def parse_duration(value: str | None, default: float) -> float:
    """A REST `google.protobuf.Duration` ("5s", "0.5s") in seconds; absent means default."""
    return duration_seconds(value) if value else default


def backoff_intervals(retry_config: dict[str, Any]) -> Iterator[float]:
    """Seconds to wait before each retry, as Cloud Scheduler documents them.

    The interval doubles max_doublings times, then grows linearly by
    2**max_doublings * min_backoff, capped at max_backoff: with 10s/300s/3 that is
    10, 20, 40, 80, 160, 240, 300, 300, ...
    """
    retry_count = int(retry_config.get("retryCount", 0))
    minimum = parse_duration(retry_config.get("minBackoffDuration"), DEFAULT_MIN_BACKOFF_SECONDS)
    maximum = parse_duration(retry_config.get("maxBackoffDuration"), DEFAULT_MAX_BACKOFF_SECONDS)
    doublings = int(retry_config.get("maxDoublings", DEFAULT_MAX_DOUBLINGS))
    for retry in range(retry_count):
        if retry <= doublings:
            interval = minimum * 2**retry
        else:
            interval = minimum * 2**doublings * (retry - doublings + 1)
        yield min(interval, maximum)


def is_enabled(job: dict[str, Any]) -> bool:
    # Enums may be stored as names or as their integer values (ENABLED = 1).
    return job.get("state") in ("ENABLED", 1)


def short_name(job_name: str) -> str:
    return job_name.rsplit("/", 1)[-1]


class LocalScheduler:
    """Fires ENABLED jobs at their cron times in their time zones; or on demand."""

    def __init__(
        self,
        jobs: JobStore,
        issuer: TokenMinter,
        *,
        time_scale: float = 1.0,
        fire_new_jobs_now: bool = False,
    ) -> None:
        self._jobs = jobs
        self._issuer = issuer
        self.clock = ScaledClock(time_scale)
        self._fire_new_jobs_now = fire_new_jobs_now
        self._next_fire: dict[tuple[str, str, str], datetime] = {}
        self._seen_jobs: set[str] = set()
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="local-scheduler")
        self.on_delivery: Callable[[Delivery], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._loop = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._loop.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._loop is not None:
            self._loop.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- on demand ----------------------------------------------------------------------

    def fire_now(self, job_name: str) -> Future[Delivery]:
        """A forced run (`jobs.run`): schedule time is now, with milliseconds, like Cloud."""
        now = self.clock.now()
        forced_time = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        return self._pool.submit(self.deliver, job_name, forced_time)

    def deliver(self, job_name: str, schedule_time: datetime) -> Delivery:
        """Deliver one firing of the job (with its retries) and wait for the outcome."""
        job = self._job(job_name)
        delivery = Delivery(job_name=job["name"], schedule_time=schedule_time)
        retry_config = job.get("retryConfig", {})
        max_retry_seconds = parse_duration(retry_config.get("maxRetryDuration"), 0.0)
        first_attempt = self.clock.now()
        delivery.attempts.append(self._attempt(job, schedule_time))
        for interval in backoff_intervals(retry_config):
            if delivery.succeeded or self._stopping.is_set():
                break
            if max_retry_seconds and (self.clock.now() - first_attempt).total_seconds() + interval > max_retry_seconds:
                break
            if self._stopping.wait(self.clock.real_seconds(interval)):
                break
            delivery.attempts.append(self._attempt(job, schedule_time))
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        return delivery

    # -- internals ----------------------------------------------------------------------

    def _job(self, job_name: str) -> dict[str, Any]:
        for job in self._jobs.scheduler_jobs():
            if job["name"] == job_name or short_name(job["name"]) == job_name:
                return job
        raise KeyError(f"no Cloud Scheduler job named {job_name!r}")

    def _attempt(self, job: dict[str, Any], schedule_time: datetime) -> Attempt:
        target = job["httpTarget"]
        attempt_time = self.clock.now()
        try:
            response = requests.request(
                target.get("httpMethod", "POST"),
                target["uri"],
                data=base64.b64decode(target.get("body", "")),
                headers=self._headers(job, schedule_time),
                timeout=parse_duration(job.get("attemptDeadline"), DEFAULT_ATTEMPT_DEADLINE_SECONDS),
            )
            attempt = Attempt(response.status_code, response.text, attempt_time)
        except requests.RequestException as exc:
            attempt = Attempt(UNREACHABLE_STATUS, f"target unreachable: {exc}", attempt_time)
        self._jobs.record_scheduler_attempt(job["name"], attempt_time, attempt.status_code)
        return attempt

    def _headers(self, job: dict[str, Any], schedule_time: datetime) -> dict[str, str]:
        target = job["httpTarget"]
        headers = {"Content-Type": "application/octet-stream", "User-Agent": "Google-Cloud-Scheduler"}
        headers.update(target.get("headers", {}))
        headers["X-CloudScheduler"] = "true"
        headers["X-CloudScheduler-JobName"] = short_name(job["name"])
        headers["X-CloudScheduler-ScheduleTime"] = format_rfc3339(schedule_time)
        oidc = target.get("oidcToken")
        if oidc:
            # Cloud Scheduler uses the target URI when no audience is configured.
            audience = oidc.get("audience") or target["uri"]
            token = self._issuer.mint(audience=audience, email=oidc["serviceAccountEmail"])
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _run(self) -> None:
        while not self._stopping.is_set():
            jobs = self._jobs.scheduler_jobs()
            now = self.clock.now()
            for job in jobs:
                self._fire_due(job, now)
            self._forget_missing({job["name"] for job in jobs})
            self._stopping.wait(POLL_INTERVAL_SECONDS)

    def _fire_due(self, job: dict[str, Any], now: datetime) -> None:
        key = (job["name"], job.get("schedule", ""), job.get("timeZone") or "UTC")
        if not is_enabled(job):
            # Paused jobs do not catch up on resume: the next firing counts from then.
            self._next_fire.pop(key, None)
            return
        if job["name"] not in self._seen_jobs:
            self._seen_jobs.add(job["name"])
            if self._fire_new_jobs_now:
                self.fire_now(job["name"])
        if key not in self._next_fire:
            # A new or changed schedule starts counting from now.
            self._drop_other_schedules(job["name"])
            self._next_fire[key] = self._following(key, now)
        while self._next_fire[key] <= now:
            self._pool.submit(self.deliver, job["name"], self._next_fire[key])
            self._next_fire[key] = self._following(key, self._next_fire[key])

    @staticmethod
    def _following(key: tuple[str, str, str], after: datetime) -> datetime:
        # The emulator's own rule, so the firing matches the job's reported scheduleTime.
        _, schedule, time_zone = key
        following = next_fire_time(schedule, time_zone, after.timestamp())
        if following is None:  # a schedule the emulator cannot place never fires
            return datetime.max.replace(tzinfo=UTC)
        return datetime.fromtimestamp(following, UTC)

    def _drop_other_schedules(self, job_name: str) -> None:
        for key in [key for key in self._next_fire if key[0] == job_name]:
            del self._next_fire[key]

    def _forget_missing(self, names: set[str]) -> None:
        for key in [key for key in self._next_fire if key[0] not in names]:
            del self._next_fire[key]
        self._seen_jobs &= names
