"""The herd under a quota: N schedules fire in the same minute while Vertex AI admits at most
Q pipelineJobs.create a minute and refuses the rest with 429 RESOURCE_EXHAUSTED.

Unlike herd.py (duplicate deliveries against one warm instance, timed), nothing here is
timed: it counts what Cloud Scheduler's retries and the function make of a quota, in
virtual time, so hours of retries and sweeps take a minute and come out the same on any
machine. A discrete-event simulation of Cloud Scheduler drives the real code:

- the Scheduler jobs are the deployer's (desired.build, desired.job_fields: body, retry
  config, attempt deadline), created in the emulator through its seam (gcp.GoogleCloud);
- each attempt is a real request to the real function (functions-framework's app, in this
  process) carrying Scheduler's headers and token; what it answers, and which PipelineJob
  ids it creates, are its own decisions;
- the Vertex AI emulator holds the quota (faults.RateLimit) on the same virtual clock, and
  the function reads that clock too (its one `datetime.now`, `virtual_now` below);
- a failed attempt is retried as Scheduler documents it (local Scheduler's
  `backoff_intervals`: min backoff doubled max_doublings times, then linear, capped at the
  max backoff, retry_count times), after an answer that takes no virtual time, so the
  attempt deadline never cuts one off. When the last retry fails the firing is given up.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import io
import os
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vertex_cron import desired, function_source
from vertex_cron.gcp import GoogleCloud
from vertex_cron.models import ScheduleInput
from vertex_cron_local.dispatcher import backoff_intervals, format_schedule_time, parse_duration
from vertex_cron_local.emulator.faults import RateLimit
from vertex_cron_trigger import handler
from vertex_cron_trigger.pipeline_job import job_id

from .deploy import deployer_settings
from .world import AUDIENCE, SCHEDULER_SA, SPEC_FILE, LocalCloud

FUNCTION_MAIN = SPEC_FILE.parents[1] / "function" / "main.py"
# The issue's figures: 1000 schedules, Vertex AI's default "Job or LRO submission requests"
# quota of 60 a minute per region (cloud.google.com/vertex-ai/docs/quotas).
SCHEDULES, QUOTA_PER_MINUTE = 1000, 60
CRON = "0 0 * * *"  # daily: the herd's next firing is a day later, past every retry and sweep
FIRING = datetime(2024, 6, 1, tzinfo=UTC)
SEED = 14  # the order in which Scheduler dispatches the simultaneous first attempts
# The settings every deployed job had before issue 14's measurement (3 retries, 30 s, 60 s,
# 120 s apart: given up 3.5 minutes after the firing), beside the deployer's current ones.
BEFORE_ISSUE_14 = {
    "retry_config.retry_count": 3,
    "retry_config.max_retry_duration": "0s",
    "retry_config.min_backoff_duration": "30s",
    "retry_config.max_backoff_duration": "600s",
    "retry_config.max_doublings": 3,
}
NO_RETRIES = {**desired.RETRY, "retry_config.retry_count": 0}


@dataclass(frozen=True)
class Scenario:
    """Scheduler settings as the deployer writes them (desired.RETRY, ATTEMPT_DEADLINE)."""

    name: str
    retry: Mapping[str, Any]  # "retry_config.retry_count": 3, ...
    attempt_deadline: str

    def describe(self) -> str:
        retry = {key.removeprefix("retry_config."): value for key, value in self.retry.items()}
        return (
            f"{retry['retry_count']} retries, backoff {retry['min_backoff_duration']}–"
            f"{retry['max_backoff_duration']}, {retry['max_doublings']} doublings"
        )


def scenarios() -> list[Scenario]:
    """What the bench compares: the settings before, the deployer's now, and no retry at all."""
    return [
        Scenario("before issue 14", BEFORE_ISSUE_14, desired.ATTEMPT_DEADLINE),
        Scenario("the deployer's (desired.RETRY)", desired.RETRY, desired.ATTEMPT_DEADLINE),
        Scenario("no retries", NO_RETRIES, desired.ATTEMPT_DEADLINE),
    ]


@dataclass(frozen=True)
class QuotaHerd:
    scenario: str
    settings: str  # the retry settings in words
    schedules: int
    quota_per_minute: int
    retry_times: list[float]  # seconds after the firing at which Scheduler retries
    attempts: int  # requests Scheduler made to the function
    create_requests: int  # pipelineJobs.create requests that reached Vertex AI
    refused: int  # of which answered 429
    runs: int  # PipelineJobs of the herd at the end
    lost: int  # firings with no run when Scheduler gave up on all of them
    duplicates: int  # runs beyond one per firing (deterministic ids make this 0)
    outcomes: dict[str, int]  # the function's answers, by outcome
    last_run_seconds: float | None  # when the last run was created, after the firing
    gave_up_seconds: float  # when Scheduler made its last attempt, after the firing


class VirtualClock:
    """Epoch seconds the simulation sets; the emulator, its quota and the function read it."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@dataclass(order=True)
class _Attempt:
    at: float
    order: int
    job: dict[str, Any] = field(compare=False)
    retry: int = field(compare=False)  # 0 for the first attempt


def run(scenario: Scenario, *, schedules: int = SCHEDULES, quota_per_minute: int = QUOTA_PER_MINUTE) -> QuotaHerd:
    clock = VirtualClock(FIRING - timedelta(days=1))  # deployed the day before
    with LocalCloud() as cloud:
        cloud.vertex.clock = clock
        cloud.vertex.oidc_issuer = cloud.issuer
        jobs = _deploy(cloud, scenario, schedules)
        quota = RateLimit(quota_per_minute, clock=cloud.vertex.now)
        cloud.vertex.pipeline_create_quota = quota
        cloud.vertex.clear_calls()
        with _function(cloud, clock) as post:
            outcomes, attempts, last_attempt = _simulate(jobs, post, clock, cloud.issuer.mint)
        runs = [job for job in cloud.vertex.pipeline_jobs() if job["labels"].get("vertex-cron-schedule")]
    expected = {job_id(str(job["name"]).rsplit("/", 1)[-1].removeprefix("vertex-cron-"), FIRING) for job in jobs}
    ids = [str(run["name"]).rsplit("/", 1)[-1] for run in runs]
    created = [datetime.fromisoformat(run["createTime"].replace("Z", "+00:00")) for run in runs]
    return QuotaHerd(
        scenario=scenario.name,
        settings=scenario.describe(),
        schedules=schedules,
        quota_per_minute=quota_per_minute,
        retry_times=_retry_times(jobs[0]["retryConfig"]),
        attempts=attempts,
        create_requests=sum(
            1 for method, path, _ in cloud.vertex.calls if method == "POST" and path.endswith("/pipelineJobs")
        ),
        refused=quota.refused,
        runs=len(runs),
        lost=len(expected - set(ids)),
        duplicates=len(ids) - len(set(ids) & expected),
        outcomes=outcomes,
        last_run_seconds=(max(created) - FIRING).total_seconds() if created else None,
        gave_up_seconds=last_attempt - FIRING.timestamp(),
    )


def _deploy(cloud: LocalCloud, scenario: Scenario, schedules: int) -> list[dict[str, Any]]:
    """The deployer's jobs for `schedules` daily schedules, with the scenario's retry settings,
    created through the deployer's seam; returned as Scheduler stores them (REST JSON)."""
    settings = deployer_settings(cloud)
    wanted = [
        ScheduleInput(
            name=f"herd-{index:04d}",
            spec=SPEC_FILE,
            cron=CRON,
            time_zone="UTC",
            parameters={"run_date": "{{schedule_time:%Y-%m-%d}}"},
        )
        for index in range(schedules)
    ]
    built = desired.build(settings, wanted, source=function_source.build())
    seam = GoogleCloud(settings)
    for job in built.jobs:
        fields = desired.job_fields(job, spec_uri=cloud.spec_uri, url=AUDIENCE)
        seam.create_job(job.name, {**fields, **scenario.retry, "attempt_deadline": scenario.attempt_deadline})
    stored = cloud.vertex.scheduler_jobs()
    if any(parse_duration(job["retryConfig"].get("maxRetryDuration"), 0.0) for job in stored):
        # "Retried until both limits are reached" is not modelled: refuse rather than guess.
        raise ValueError("a nonzero max_retry_duration is not modelled by this bench")
    return stored


def _simulate(
    jobs: list[dict[str, Any]],
    post: Callable[[bytes, Mapping[str, str]], tuple[int, str]],
    clock: VirtualClock,
    mint: Callable[..., str],
) -> tuple[dict[str, int], int, float]:
    """Scheduler's attempts in time order until each firing succeeded or was given up;
    (the function's answers by outcome, attempts made, time of the last attempt)."""
    order = list(range(len(jobs)))
    random.Random(SEED).shuffle(order)
    queue = [_Attempt(FIRING.timestamp(), rank, job, 0) for rank, job in zip(order, jobs, strict=True)]
    heapq.heapify(queue)
    outcomes: dict[str, int] = {}
    attempts, last = 0, FIRING.timestamp()
    token = mint(audience=AUDIENCE, email=SCHEDULER_SA)
    while queue:
        attempt = heapq.heappop(queue)
        clock.now = last = attempt.at
        status, outcome = post(_body(attempt.job), _headers(attempt.job, token))
        attempts += 1
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if 200 <= status < 300:
            continue
        intervals = list(backoff_intervals(attempt.job["retryConfig"]))
        if attempt.retry < len(intervals):
            heapq.heappush(
                queue, _Attempt(attempt.at + intervals[attempt.retry], attempt.order, attempt.job, attempt.retry + 1)
            )
    return outcomes, attempts, last


def _body(job: Mapping[str, Any]) -> bytes:
    return base64.b64decode(job["httpTarget"].get("body", ""))


def _headers(job: Mapping[str, Any], token: str) -> dict[str, str]:
    """What Cloud Scheduler sends with every attempt of the firing (as the local Scheduler does)."""
    return {
        "Content-Type": "application/octet-stream",
        **job["httpTarget"].get("headers", {}),
        "User-Agent": "Google-Cloud-Scheduler",
        "X-CloudScheduler": "true",
        "X-CloudScheduler-JobName": str(job["name"]).rsplit("/", 1)[-1],
        "X-CloudScheduler-ScheduleTime": format_schedule_time(FIRING),
        "Authorization": f"Bearer {token}",
    }


@contextlib.contextmanager
def _function(
    cloud: LocalCloud, clock: VirtualClock
) -> Iterator[Callable[[bytes, Mapping[str, str]], tuple[int, str]]]:
    """The real function, served by functions-framework's app in this process, with the
    deployer's environment and `clock` as its time; yields post(body, headers) ->
    (status, outcome)."""
    import functions_framework

    # The function's log lines (one per attempt) are not what this bench reads.
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    env = cloud.function_env(VERTEX_CRON_OIDC_CERTS_URL=f"{cloud.vertex.url}/oauth2/v1/certs")
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    _new_instance()
    try:
        with virtual_now(clock):
            client = functions_framework.create_app(target="trigger", source=str(FUNCTION_MAIN)).test_client()

            def post(body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
                answer = client.post("/", data=body, headers=dict(headers))
                return answer.status_code, str((answer.get_json(silent=True) or {}).get("outcome", "no answer"))

            yield post
    finally:
        stack.close()
        _new_instance()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _new_instance() -> None:
    """Forget the function's per-process state (settings, sessions, caches), as a new
    instance would start: the next request builds it from the environment again."""
    handler.settings_module.settings.cache_clear()
    handler.runtime.cache_clear()


@contextlib.contextmanager
def virtual_now(clock: VirtualClock) -> Iterator[None]:
    """The function's clock (the handler's `datetime.now`) reads `clock`; token expiry and
    request deadlines keep the machine's clocks (the token is minted on it)."""
    real = handler.datetime

    class _Virtual(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return clock.datetime().astimezone(tz) if tz else clock.datetime().replace(tzinfo=None)

    handler.datetime = _Virtual  # type: ignore[misc]
    try:
        yield
    finally:
        handler.datetime = real  # type: ignore[misc]


def _retry_times(retry_config: Mapping[str, Any]) -> list[float]:
    times, at = [], 0.0
    for interval in backoff_intervals(dict(retry_config)):
        at += interval
        times.append(at)
    return times
