"""The local Cloud Scheduler fires jobs as Cloud Scheduler would: times, headers, token, retries."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.auth import jwt
from vertex_cron_local.dispatcher import LocalScheduler, backoff_intervals
from vertex_cron_local.token_issuer import LocalIssuer

JOBS_PARENT = "projects/local-project/locations/us-central1/jobs"
SCHEDULER_SA = "vertex-cron-scheduler@local-project.iam.gserviceaccount.com"
AUDIENCE = "https://vertex-cron-trigger.example.run.app"


class JobList:
    """The scheduler's view of the emulator: a list of REST job documents + attempt log."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.attempts: list[tuple[str, datetime, int]] = []
        self._lock = threading.Lock()

    def scheduler_jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(job) for job in self.jobs]

    def record_scheduler_attempt(self, job_name: str, attempt_time: datetime, status_code: int) -> None:
        with self._lock:
            self.attempts.append((job_name, attempt_time, status_code))

    def set_state(self, short_name: str, state: str) -> None:
        with self._lock:
            for job in self.jobs:
                if job["name"].endswith("/" + short_name):
                    job["state"] = state


def http_job(short_name: str, uri: str, **overrides: Any) -> dict[str, Any]:
    job = {
        "name": f"{JOBS_PARENT}/{short_name}",
        "schedule": "0 3 1 1 *",  # yearly: only explicit deliveries within a test's lifetime
        "timeZone": "UTC",
        "state": "ENABLED",
        "httpTarget": {
            "uri": uri,
            "httpMethod": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": base64.b64encode(b'{"schedule": "nightly"}').decode(),
            "oidcToken": {"serviceAccountEmail": SCHEDULER_SA, "audience": AUDIENCE},
        },
    }
    job.update(overrides)
    return job


def schedule_time(received: Any) -> datetime:
    return datetime.strptime(received.headers["X-CloudScheduler-ScheduleTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC
    )


@pytest.fixture
def job_list() -> JobList:
    return JobList()


@pytest.fixture
def start_scheduler(job_list: JobList, oidc_issuer: LocalIssuer) -> Iterator[Any]:
    started: list[LocalScheduler] = []

    def start(time_scale: float) -> LocalScheduler:
        scheduler = LocalScheduler(job_list, oidc_issuer, time_scale=time_scale)
        scheduler.start()
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in started:
        scheduler.stop()


def test_fires_at_the_cron_times_of_the_job_time_zone_with_compressed_time(
    job_list, target, start_scheduler, wait_until
):
    # Hourly at minute 0 in India (UTC+05:30) is hh:30 UTC; 3600x makes it one per second.
    job_list.jobs.append(http_job("vertex-cron-hourly", target.url, schedule="0 * * * *", timeZone="Asia/Kolkata"))
    start_scheduler(time_scale=3600)

    wait_until(lambda: len(target.received_for("vertex-cron-hourly")) >= 3, "three hourly firings")

    times = [schedule_time(r) for r in target.received_for("vertex-cron-hourly")[:3]]
    assert all(t.minute == 30 and t.second == 0 for t in times), times
    assert times[1] - times[0] == timedelta(hours=1)
    assert times[2] - times[1] == timedelta(hours=1)


def test_each_request_is_what_cloud_scheduler_sends(job_list, target, oidc_issuer, start_scheduler):
    job_list.jobs.append(http_job("vertex-cron-nightly", target.url))
    scheduler = start_scheduler(time_scale=1)

    delivery = scheduler.deliver("vertex-cron-nightly", datetime(2024, 3, 9, 2, 0, tzinfo=UTC))

    assert delivery.succeeded
    [received] = target.received_for("vertex-cron-nightly")
    assert received.method == "POST"
    assert received.body == b'{"schedule": "nightly"}'
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-CloudScheduler"] == "true"
    assert received.headers["X-CloudScheduler-ScheduleTime"] == "2024-03-09T02:00:00Z"
    scheme, token = received.headers["Authorization"].split(" ")
    claims = jwt.decode(token, certs=oidc_issuer.certs_document(), audience=AUDIENCE)
    assert scheme == "Bearer"
    assert claims["email"] == SCHEDULER_SA
    assert [(name, status) for name, _, status in job_list.attempts] == [(f"{JOBS_PARENT}/vertex-cron-nightly", 200)]


def test_the_target_uri_is_the_audience_when_none_is_configured(job_list, target, oidc_issuer, start_scheduler):
    job = http_job("vertex-cron-nightly", target.url)
    del job["httpTarget"]["oidcToken"]["audience"]
    job_list.jobs.append(job)

    start_scheduler(time_scale=1).deliver("vertex-cron-nightly", datetime(2024, 3, 9, 2, 0, tzinfo=UTC))

    token = target.received_for("vertex-cron-nightly")[0].headers["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, certs=oidc_issuer.certs_document(), audience=target.url)["aud"] == target.url


def test_a_forced_run_carries_the_current_time_with_milliseconds(job_list, target, start_scheduler):
    job_list.jobs.append(http_job("vertex-cron-nightly", target.url))
    before = datetime.now(UTC) - timedelta(seconds=1)

    delivery = start_scheduler(time_scale=1).fire_now("vertex-cron-nightly").result(timeout=60)

    header = target.received_for("vertex-cron-nightly")[0].headers["X-CloudScheduler-ScheduleTime"]
    forced = datetime.strptime(header, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert len(header) == len("2024-03-09T02:00:00.123Z")
    assert forced >= before
    assert delivery.schedule_time.microsecond % 1000 == 0


def test_a_paused_job_is_not_fired_and_does_not_catch_up_when_resumed(job_list, target, start_scheduler, wait_until):
    job_list.jobs.append(http_job("vertex-cron-paused", target.url, schedule="* * * * *", state="PAUSED"))
    job_list.jobs.append(http_job("vertex-cron-running", target.url, schedule="* * * * *"))
    scheduler = start_scheduler(time_scale=60)  # one firing per second

    wait_until(lambda: len(target.received_for("vertex-cron-running")) >= 3, "the enabled job to fire three times")
    assert target.received_for("vertex-cron-paused") == []

    resumed_at = scheduler.clock.now()
    job_list.set_state("vertex-cron-paused", "ENABLED")
    wait_until(lambda: target.received_for("vertex-cron-paused"), "the resumed job to fire")
    assert schedule_time(target.received_for("vertex-cron-paused")[0]) > resumed_at


def test_non_2xx_answers_are_retried_with_backoff_and_every_attempt_is_recorded(job_list, target, start_scheduler):
    target.statuses = [503, 500, 200]
    retry_config = {"retryCount": 4, "minBackoffDuration": "10s", "maxBackoffDuration": "60s", "maxDoublings": 2}
    job_list.jobs.append(http_job("vertex-cron-flaky", target.url, retryConfig=retry_config))

    delivery = start_scheduler(time_scale=100).deliver("vertex-cron-flaky", datetime(2024, 3, 9, 2, 0, tzinfo=UTC))

    assert delivery.succeeded
    assert [a.status_code for a in delivery.attempts] == [503, 500, 200]
    assert {r.headers["X-CloudScheduler-ScheduleTime"] for r in target.received_for("vertex-cron-flaky")} == {
        "2024-03-09T02:00:00Z"
    }
    assert [status for _, _, status in job_list.attempts] == [503, 500, 200]
    # The second retry waited at least the doubled backoff (20 schedule seconds).
    assert job_list.attempts[2][1] - job_list.attempts[1][1] >= timedelta(seconds=20)


def test_retries_stop_after_retry_count(job_list, target, start_scheduler):
    target.statuses = [500]
    retry_config = {"retryCount": 2, "minBackoffDuration": "1s"}
    job_list.jobs.append(http_job("vertex-cron-broken", target.url, retryConfig=retry_config))

    delivery = start_scheduler(time_scale=100).deliver("vertex-cron-broken", datetime(2024, 3, 9, 2, 0, tzinfo=UTC))

    assert not delivery.succeeded
    assert len(target.received_for("vertex-cron-broken")) == 3


def test_without_retry_config_a_failure_is_not_retried(job_list, target, start_scheduler):
    target.statuses = [503]
    job_list.jobs.append(http_job("vertex-cron-once", target.url))

    start_scheduler(time_scale=100).deliver("vertex-cron-once", datetime(2024, 3, 9, 2, 0, tzinfo=UTC))

    assert len(target.received_for("vertex-cron-once")) == 1


def test_backoff_doubles_then_grows_linearly_up_to_the_maximum():
    config = {"retryCount": 8, "minBackoffDuration": "10s", "maxBackoffDuration": "300s", "maxDoublings": 3}

    assert list(backoff_intervals(config)) == [10, 20, 40, 80, 160, 240, 300, 300]
