"""`vertex-cron status`: each fire time meets the run its firing creates (or none)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from local_cli import local_stack, vertex_cron
from vertex_cron.models import ObservedJob, PipelineRun
from vertex_cron.status import DELIVERY_WINDOW, health
from vertex_cron_local.stack import LocalStack

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def run(the_id: str, state: str, error: str | None = None) -> PipelineRun:
    return PipelineRun(the_id, state, None, None, None, console_url="https://console", error=error)


def nightly_job(written: datetime) -> ObservedJob:
    body = {"cron": "0 3 * * *", "time_zone": "Europe/Paris"}
    fields = {"http_target.body": body, "user_update_time": written.isoformat().replace("+00:00", "Z")}
    return ObservedJob("projects/p/locations/r/jobs/vertex-cron-nightly", fields, state="ENABLED")


def test_each_fire_time_shows_its_run_and_a_time_without_one_shows_as_missing():
    # 03:00 Paris is 02:00Z in December. Deployed on Dec 1; looked at on Dec 6 at 02:10Z,
    # when Dec 6's firing is still inside Scheduler's delivery window.
    now = datetime(2026, 12, 6, 2, 10, tzinfo=UTC)
    runs = [  # newest first, as Vertex AI lists them
        run("nightly-20261205-020000", "RUNNING"),
        run("nightly-20261203-020000", "FAILED", "step train: out of memory"),
        run("nightly-20261202-020000", "SUCCEEDED"),
        run("nightly-20261130-020000", "SUCCEEDED"),  # backfilled: before the deploy, yet shown
    ]
    result = health("nightly", nightly_job(datetime(2026, 12, 1, 12, tzinfo=UTC)), runs, count=10, now=now)

    assert [(f.job_id, f.state) for f in result.firings] == [
        ("nightly-20261130-020000", "SUCCEEDED"),
        ("nightly-20261202-020000", "SUCCEEDED"),
        ("nightly-20261203-020000", "FAILED"),
        ("nightly-20261204-020000", "NO_RUN"),
        ("nightly-20261205-020000", "RUNNING"),
    ]
    assert result.strip == "✓✓✗·▸"
    assert result.consecutive_failures == 2  # the failed run and the missing one; running is not yet either
    assert result.last_error is not None and result.last_error.error == "step train: out of memory"

    later = health(
        "nightly", nightly_job(datetime(2026, 12, 1, 12, tzinfo=UTC)), runs, count=10, now=now + DELIVERY_WINDOW
    )
    assert later.strip == "✓✓✗·▸·"  # Dec 6 is past its delivery window and has no run


def test_a_success_resets_the_count_and_count_limits_the_strip():
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    runs = [run(f"nightly-202612{day:02d}-020000", state) for day, state in ((6, "SUCCEEDED"), (5, "FAILED"))]
    result = health("nightly", nightly_job(datetime(2026, 12, 4, 12, tzinfo=UTC)), runs, count=2, now=now)
    assert result.strip == "✗✓" and result.consecutive_failures == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("status")) as local:
        yield local


def test_status_on_the_local_stack_shows_backfilled_runs_and_the_last_error(stack: LocalStack):
    for name, cron in (("nightly", "0 3 * * *"), ("weekly", "0 4 * * 1")):
        vertex_cron(stack, "deploy", name, "--spec", str(SPEC), "--cron", cron, "--param", "run_date=x")
    day = [f"nightly-{TODAY - timedelta(days=d) + timedelta(hours=3):%Y%m%d-%H%M%S}" for d in (3, 2)]
    vertex_cron(
        stack,
        "backfill",
        "nightly",
        "--from",
        (TODAY - timedelta(days=3)).isoformat(),
        "--to",
        (TODAY - timedelta(days=1)).isoformat(),
    )
    stack.emulator.set_pipeline_job_state(day[0], "FAILED", error_message="step train: out of memory")
    stack.emulator.set_pipeline_job_state(day[1], "SUCCEEDED")

    [nightly] = json.loads(vertex_cron(stack, "status", "nightly", "--format", "json").stdout)
    assert [(f["job"], f["state"]) for f in nightly["firings"]] == [(day[0], "FAILED"), (day[1], "SUCCEEDED")]
    assert nightly["consecutive_failures"] == 0 and nightly["state"] == "ENABLED" and nightly["next_run"]
    assert nightly["last_error"] == {"job": day[0], "message": "step train: out of memory"}

    text = vertex_cron(stack, "status").stdout
    assert "✗✓" in text and f"{day[0]}: step train: out of memory" in text and "weekly" in text

    missing = vertex_cron(stack, "status", "nightly", "nope", code=1)
    assert "no schedule named 'nope'" in missing.output
