"""The herd under a quota: N schedules fire in the same minute while Vertex AI admits at most
Q pipelineJobs.create a minute and refuses the rest with 429 RESOURCE_EXHAUSTED.

Unlike herd.py (duplicate deliveries against one warm instance, timed), nothing here is
timed: it counts what Cloud Scheduler's retries and the function make of a quota, in
virtual time, so hours of retries and sweeps take minutes and come out the same on any
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

Every schedule has catch-up on (a CATCH_UP window), so the deployer adds the sweep job, fired
every 10 minutes of virtual time like the others: the real function's sweep decides what it
catches up and when, with its own per-sweep cap.
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
from vertex_cron_local.dispatcher import backoff_intervals, parse_duration
from vertex_cron_local.emulator.faults import RateLimit
from vertex_cron_trigger import handler
from vertex_cron_trigger import settings as trigger_settings
from vertex_cron_trigger.catch_up import SWEEP_CRON
from vertex_cron_trigger.logical_time import fire_times
from vertex_cron_trigger.pipeline_job import job_id
from vertex_cron_trigger.timefmt import format_rfc3339

from .deploy import deployer_settings
from .world import AUDIENCE, PROJECT, REGION, SCHEDULER_SA, SPEC_FILE, LocalCloud

FUNCTION_MAIN = SPEC_FILE.parents[1] / "function" / "main.py"
# The issue's figures: 1000 schedules, Vertex AI's default "Job or LRO submission requests"
# quota of 60 a minute per region (cloud.google.com/vertex-ai/docs/quotas).
SCHEDULES, QUOTA_PER_MINUTE = 1000, 60
CRON = "0 0 * * *"  # daily: the herd's next firing is a day later, past every retry and sweep
FIRING = datetime(2024, 6, 1, tzinfo=UTC)
SEED = 14  # the order in which Scheduler dispatches the simultaneous first attempts
DEPLOYED = FIRING - timedelta(days=1)  # catch-up never reaches before a schedule was deployed
CATCH_UP = timedelta(hours=6)  # the issue's example window
# The settings every deployed job had before issue 14's measurement (3 retries, 30 s, 60 s,
# 120 s apart: given up 3.5 minutes after the firing), beside the deployer's current ones.
BEFORE_ISSUE_14 = {
    "retry_config.retry_count": 3,
    "retry_config.max_retry_duration": "0s",
    "retry_config.min_backoff_duration": "30s",
    "retry_config.max_backoff_duration": "600s",
    "retry_config.max_doublings": 3,
}
DEPLOYERS = "the deployer's (desired.RETRY)"  # the scenario the goal is judged on
NO_RETRIES = {**desired.RETRY, "retry_config.retry_count": 0}


@dataclass(frozen=True)
class Scenario:
    """Scheduler settings as the deployer writes them (desired.RETRY, ATTEMPT_DEADLINE)."""

    name: str
    retry: Mapping[str, Any]  # "retry_config.retry_count": 3, ...
    attempt_deadline: str

    def describe(self) -> str:
        retry = {key.removeprefix("retry_config."): value for key, value in self.retry.items()}
        low, high = retry["min_backoff_duration"], retry["max_backoff_duration"]
        if retry["retry_count"] == 0:
            return "0 retries"
        if low == high:  # doublings are moot
            return f"{retry['retry_count']} retries, {low} apart"
        return f"{retry['retry_count']} retries, backoff {low}–{high}, {retry['max_doublings']} doublings"


def scenarios() -> list[Scenario]:
    """What the bench compares: the settings before, the deployer's now, and no retry at all."""
    return [
        Scenario("before issue 14", BEFORE_ISSUE_14, desired.ATTEMPT_DEADLINE),
        Scenario(DEPLOYERS, desired.RETRY, desired.ATTEMPT_DEADLINE),
        Scenario("no retries", NO_RETRIES, desired.ATTEMPT_DEADLINE),
    ]


@dataclass(frozen=True)
class QuotaHerd:
    scenario: str
    settings: str  # the retry settings in words
    schedules: int
    quota_per_minute: int
    catch_up_seconds: float  # each schedule's catch-up window
    sweep_max_runs: int  # the most runs one sweep creates (the function's setting)
    retry_times: list[float]  # seconds after the firing at which Scheduler retries
    attempts: int  # requests Scheduler made to the function for the herd's firings
    sweeps: int  # requests Scheduler made to the function for the sweep job, retries included
    create_requests: int  # pipelineJobs.create requests that reached Vertex AI
    refused: int  # of which answered 429
    on_time: int  # runs created by the firings' own attempts
    given_up: int  # firings Scheduler gave up on (every attempt failed)
    caught_up: int  # runs created by the sweep
    lost: int  # firings with no run at the end of their catch-up window
    duplicates: int  # runs beyond one per firing (deterministic ids make this 0)
    outcomes: dict[str, int]  # the function's answers to the firings, by outcome
    last_run_seconds: float | None  # when the last run was created, after the firing
    gave_up_seconds: float  # when Scheduler made its last attempt of a firing, after it

    @property
    def runs(self) -> int:
        return self.on_time + self.caught_up

    @property
    def goal_met(self) -> bool:
        """Issue 14's goal: none lost, none duplicated, every run within the catch-up window."""
        last = self.last_run_seconds
        return not self.lost and not self.duplicates and last is not None and last <= self.catch_up_seconds


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
    schedule_time: datetime = field(compare=False)  # the firing's, on every attempt
    retry: int = field(compare=False, default=0)  # 0 for the first attempt


@dataclass
class _Tally:
    """What the simulation saw Scheduler and the function do."""

    outcomes: dict[str, int] = field(default_factory=dict)  # the herd's firings' answers
    attempts: int = 0
    sweeps: int = 0
    given_up: int = 0
    last_attempt: float = FIRING.timestamp()


def run(
    scenario: Scenario,
    *,
    schedules: int = SCHEDULES,
    quota_per_minute: int = QUOTA_PER_MINUTE,
    catch_up: timedelta = CATCH_UP,
) -> QuotaHerd:
    clock = VirtualClock(DEPLOYED)
    with LocalCloud() as cloud:
        cloud.vertex.clock = clock
        cloud.vertex.oidc_issuer = cloud.issuer
        jobs, sweep_job = _deploy(cloud, scenario, schedules, catch_up)
        quota = RateLimit(quota_per_minute, clock=cloud.vertex.now)
        cloud.vertex.pipeline_create_quota = quota
        cloud.vertex.clear_calls()
        with _function(cloud, clock) as post:
            tally = _simulate(jobs, sweep_job, post, clock, cloud.issuer.mint, catch_up, _all_ran(cloud, schedules))
        runs = [job for job in cloud.vertex.pipeline_jobs() if job["labels"].get("vertex-cron-schedule")]
    expected = {job_id(str(job["name"]).rsplit("/", 1)[-1].removeprefix("vertex-cron-"), FIRING) for job in jobs}
    ids = [str(run["name"]).rsplit("/", 1)[-1] for run in runs]
    created = [datetime.fromisoformat(run["createTime"].replace("Z", "+00:00")) for run in runs]
    on_time = tally.outcomes.get("created", 0)
    return QuotaHerd(
        scenario=scenario.name,
        settings=scenario.describe(),
        schedules=schedules,
        quota_per_minute=quota_per_minute,
        catch_up_seconds=catch_up.total_seconds(),
        sweep_max_runs=trigger_settings.DEFAULT_CATCH_UP_MAX_RUNS,
        retry_times=_retry_times(jobs[0]["retryConfig"]),
        attempts=tally.attempts,
        sweeps=tally.sweeps,
        create_requests=sum(
            1 for method, path, _ in cloud.vertex.calls if method == "POST" and path.endswith("/pipelineJobs")
        ),
        refused=quota.refused,
        on_time=on_time,
        given_up=tally.given_up,
        caught_up=len(set(ids) & expected) - on_time,
        lost=len(expected - set(ids)),
        duplicates=len(ids) - len(set(ids) & expected),
        outcomes=tally.outcomes,
        last_run_seconds=(max(created) - FIRING).total_seconds() if created else None,
        gave_up_seconds=tally.last_attempt - FIRING.timestamp(),
    )


def _deploy(
    cloud: LocalCloud, scenario: Scenario, schedules: int, window: timedelta
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The deployer's jobs for `schedules` daily schedules with catch-up `window`, deployed
    at DEPLOYED, and its sweep job, with the scenario's retry settings, created through the
    deployer's seam; returned as Scheduler stores them (REST JSON)."""
    settings = deployer_settings(cloud)
    wanted = [
        ScheduleInput(
            name=f"herd-{index:04d}",
            spec=SPEC_FILE,
            cron=CRON,
            time_zone="UTC",
            parameters={"run_date": "{{schedule_time:%Y-%m-%d}}"},
            catch_up=f"{window.total_seconds() / 60:.0f}m",
        )
        for index in range(schedules)
    ]
    built = desired.with_catch_up(desired.build(settings, wanted, source=function_source.build()), {}, now=DEPLOYED)
    seam = GoogleCloud(settings)
    for job in built.jobs:
        spec_uri = None if job.spec_object is None else cloud.spec_uri  # the sweep's job has no spec
        fields = desired.job_fields(job, spec_uri=spec_uri, url=AUDIENCE)
        seam.create_job(job.name, {**fields, **scenario.retry, "attempt_deadline": scenario.attempt_deadline})
    stored = cloud.vertex.scheduler_jobs()
    if any(parse_duration(job["retryConfig"].get("maxRetryDuration"), 0.0) for job in stored):
        # "Retried until both limits are reached" is not modelled: refuse rather than guess.
        raise ValueError("a nonzero max_retry_duration is not modelled by this bench")
    sweep = desired.sweep_job_name(PROJECT, REGION)
    return [job for job in stored if job["name"] != sweep], next(job for job in stored if job["name"] == sweep)


def _simulate(
    jobs: list[dict[str, Any]],
    sweep_job: dict[str, Any],
    post: Callable[[bytes, Mapping[str, str]], tuple[int, str]],
    clock: VirtualClock,
    mint: Callable[..., str],
    catch_up: timedelta,
    all_ran: Callable[[], bool],
) -> _Tally:
    """Scheduler's attempts in time order: the herd's firings until each succeeded or was
    given up, and the sweep job's firings until every firing has its run or the catch-up
    window has passed (later sweeps could change nothing)."""
    order = list(range(len(jobs)))
    random.Random(SEED).shuffle(order)
    queue = [_Attempt(FIRING.timestamp(), rank, job, FIRING) for rank, job in zip(order, jobs, strict=True)]
    end = FIRING + catch_up + timedelta(minutes=10)  # the last sweep whose window holds the firing
    queue += [
        _Attempt(moment.timestamp(), len(jobs), sweep_job, moment)
        for moment in fire_times(SWEEP_CRON, "UTC", FIRING, end)
    ]
    heapq.heapify(queue)
    tally = _Tally()
    while queue:
        attempt = heapq.heappop(queue)
        clock.now = attempt.at
        token = mint(audience=AUDIENCE, email=SCHEDULER_SA)  # a fresh one per attempt, as Scheduler's
        status, outcome = post(_body(attempt.job), _headers(attempt.job, attempt.schedule_time, token))
        sweep = attempt.job is sweep_job
        if sweep:
            tally.sweeps += 1
        else:
            tally.attempts += 1
            tally.outcomes[outcome] = tally.outcomes.get(outcome, 0) + 1
            tally.last_attempt = attempt.at
        if 200 <= status < 300:
            if sweep and all_ran():
                break
            continue
        intervals = list(backoff_intervals(attempt.job["retryConfig"]))
        if attempt.retry < len(intervals):
            retry = attempt.at + intervals[attempt.retry]
            heapq.heappush(queue, _Attempt(retry, attempt.order, attempt.job, attempt.schedule_time, attempt.retry + 1))
        elif not sweep:
            tally.given_up += 1
    return tally


def _all_ran(cloud: LocalCloud, schedules: int) -> Callable[[], bool]:
    def all_ran() -> bool:
        return len(cloud.job_names("herd-")) >= schedules

    return all_ran


def _body(job: Mapping[str, Any]) -> bytes:
    return base64.b64decode(job["httpTarget"].get("body", ""))


def _headers(job: Mapping[str, Any], schedule_time: datetime, token: str) -> dict[str, str]:
    """What Cloud Scheduler sends with every attempt of the firing (as the local Scheduler does)."""
    return {
        "Content-Type": "application/octet-stream",
        **job["httpTarget"].get("headers", {}),
        "User-Agent": "Google-Cloud-Scheduler",
        "X-CloudScheduler": "true",
        "X-CloudScheduler-JobName": str(job["name"]).rsplit("/", 1)[-1],
        "X-CloudScheduler-ScheduleTime": format_rfc3339(schedule_time),
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
