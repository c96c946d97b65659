"""`vertex-cron backfill` end to end on the local stack: each past fire time is delivered to
the function served from the uploaded zip, with an ID token minted through (emulated) IAM
Credentials, and the function creates the PipelineJob the firing has or would have had."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from local_cli import local_stack, vertex_cron
from vertex_cron import api, config
from vertex_cron.backfill import firings
from vertex_cron.errors import ValidationError
from vertex_cron_local.stack import LocalStack

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
MONTH_AGO = TODAY - timedelta(days=30)


def days_ago(days: int) -> datetime:
    return TODAY - timedelta(days=days)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack with schedule `nightly` (03:00 UTC daily) deployed; each test backfills its
    own days, so what one test creates never meets another's."""
    with local_stack(tmp_path_factory.mktemp("backfill")) as local:
        vertex_cron(
            local,
            "deploy",
            "nightly",
            "--spec",
            str(SPEC),
            "--cron",
            "0 3 * * *",
            "--param",
            "run_date={{schedule_time:%Y-%m-%d}}",
        )
        yield local


def backfill_json(stack: LocalStack, *args: str, code: int = 0) -> dict:
    return json.loads(vertex_cron(stack, "backfill", "nightly", *args, "--format", "json", code=code).stdout)


def pipeline_jobs(stack: LocalStack) -> dict[str, dict]:
    return {job["name"].rsplit("/", 1)[-1]: job for job in stack.emulator.pipeline_jobs()}


def test_a_month_of_a_daily_schedule_creates_thirty_runs_once(stack: LocalStack):
    window = ("--from", days_ago(90).isoformat(), "--to", days_ago(60).isoformat())
    expected = [f"nightly-{days_ago(90 - d) + timedelta(hours=3):%Y%m%d-%H%M%S}" for d in range(30)]

    dry = backfill_json(stack, *window, "--dry-run")
    assert dry["dry_run"] is True and [f["job"] for f in dry["firings"]] == expected
    assert not set(expected) & set(pipeline_jobs(stack))

    first = backfill_json(stack, *window)
    assert first["counts"] == {"created": 30, "existing": 0, "skipped": 0, "failed": 0}
    jobs = pipeline_jobs(stack)
    assert set(expected) <= set(jobs)
    # The run a firing would have had: its own logical time rendered into the parameters.
    first_day = jobs[expected[0]]["runtimeConfig"]["parameterValues"]["run_date"]
    assert first_day == f"{days_ago(90):%Y-%m-%d}"

    again = backfill_json(stack, *window)
    assert again["counts"] == {"created": 0, "existing": 30, "skipped": 0, "failed": 0}
    assert len(pipeline_jobs(stack)) == len(jobs)


def test_a_time_that_ran_on_schedule_is_reported_existing(stack: LocalStack):
    (job,) = [job for job in stack.emulator.scheduler_jobs() if job["name"].endswith("/vertex-cron-nightly")]
    fired = TODAY - timedelta(days=1) + timedelta(hours=3)
    assert stack.scheduler.deliver(job["name"], fired).succeeded

    report = backfill_json(stack, "--from", (TODAY - timedelta(days=2)).isoformat(), "--to", TODAY.isoformat())

    outcomes = {f["job"]: f["outcome"] for f in report["firings"]}
    assert outcomes == {
        f"nightly-{fired - timedelta(days=1):%Y%m%d-%H%M%S}": "created",
        f"nightly-{fired:%Y%m%d-%H%M%S}": "existing",
    }


def test_a_transient_failure_is_retried_and_a_persistent_one_is_reported(stack: LocalStack):
    settings = config.resolve({}, stack.settings_env())
    start, end = days_ago(19), days_ago(17)
    stack.emulator.faults.add(method="POST", path="pipelineJobs", status=503, times=1)

    report = api.backfill(settings, "nightly", start=start, end=end, retry_seconds=0)
    assert report.counts() == {"created": 2, "existing": 0, "skipped": 0, "failed": 0}

    stack.emulator.faults.add(method="POST", path="pipelineJobs", status=503, times=None)
    report = api.backfill(settings, "nightly", start=days_ago(20), end=end, retry_seconds=0)
    assert report.counts() == {"created": 0, "existing": 0, "skipped": 0, "failed": 3}
    assert all("HTTP 503" in result.message for result in report.delivered)
    stack.emulator.faults.clear()

    result = vertex_cron(stack, "backfill", "nightly", "--from", days_ago(20).isoformat(), "--to", end.isoformat())
    assert "1 created, 2 existing, 0 skipped, 0 failed" in result.output


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--from", TODAY.isoformat(), "--to", MONTH_AGO.isoformat()), 2, "empty or reversed"),
        (("--from", TODAY.isoformat(), "--to", (TODAY + timedelta(days=2)).isoformat()), 2, "in the future"),
        (("--from", "yesterday", "--to", TODAY.isoformat()), 2, "is not an RFC 3339 time"),
        (("--from", MONTH_AGO.isoformat(), "--to", TODAY.isoformat(), "--max-runs", "10"), 2, "more than 10"),
        (("--from", MONTH_AGO.isoformat(), "--to", TODAY.isoformat(), "--max-runs", "1001"), 2, "1<=x<=1000"),
        (
            (
                "--from",
                (days_ago(1) + timedelta(hours=4)).isoformat(),
                "--to",
                (days_ago(1) + timedelta(hours=5)).isoformat(),
            ),
            2,
            "no fire time",
        ),
    ],
)
def test_bad_ranges_are_refused_and_nothing_is_created(stack: LocalStack, args, code, words):
    before = len(pipeline_jobs(stack))
    result = vertex_cron(stack, "backfill", "nightly", *args, code=code)
    assert words in result.output
    assert len(pipeline_jobs(stack)) == before


def test_an_unknown_schedule_is_exit_1(stack: LocalStack):
    result = vertex_cron(
        stack, "backfill", "weekly", "--from", MONTH_AGO.isoformat(), "--to", TODAY.isoformat(), code=1
    )
    assert "no schedule named 'weekly'" in result.output


def test_fire_times_honour_the_schedules_own_window_and_zone():
    body = {
        "cron": "30 2 * * *",  # 02:30 Paris does not exist on the spring-forward day
        "time_zone": "Europe/Paris",
        "start_time": "2026-03-28T00:00:00Z",
        "end_time": "2026-04-01T00:00:00Z",
    }
    now = datetime(2026, 6, 1, tzinfo=UTC)
    found = firings(
        "nightly",
        body,
        start=datetime(2026, 3, 1, tzinfo=UTC),
        end=datetime(2026, 5, 1, tzinfo=UTC),
        max_runs=100,
        now=now,
    )
    # Only the window's days; 02:30 Paris is 01:30Z in winter and 00:30Z in summer. On the
    # spring-forward day 02:30 does not exist and the fire time is the next that does (03:00),
    # as the deployer's dry run computes it too.
    assert [f.job_id for f in found] == [
        "nightly-20260328-013000",
        "nightly-20260329-010000",
        "nightly-20260330-003000",
        "nightly-20260331-003000",
    ]
    with pytest.raises(ValidationError, match="more than 2"):
        firings("nightly", body, start=datetime(2026, 3, 1, tzinfo=UTC), end=now, max_runs=2, now=now)
