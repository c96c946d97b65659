"""`vertex-cron run NAME` end to end on the local stack: the CLI asks (emulated) Cloud
Scheduler to run the job, the local scheduler delivers it to the function served from the
uploaded zip, and the function creates a PipelineJob in (emulated) Vertex AI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from croniter import croniter
from local_cli import local_stack, vertex_cron
from vertex_cron_local.stack import LocalStack

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"
CRON = "0 3 * * *"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with local_stack(tmp_path) as local:
        yield local


def deploy_nightly(stack: LocalStack) -> None:
    vertex_cron(
        stack,
        "deploy",
        "nightly",
        "--spec",
        str(SPEC),
        "--cron",
        CRON,
        "--param",
        "run_date={{schedule_time:%Y-%m-%d}}",
    )


def test_run_after_a_scheduled_firing_creates_a_second_pipeline_job(stack: LocalStack, wait_until):
    deploy_nightly(stack)
    (job,) = [job for job in stack.emulator.scheduler_jobs() if job["name"].endswith("/vertex-cron-nightly")]
    # The schedule's latest firing, delivered the way Cloud Scheduler does. It is also what
    # the function would fall back to for a request without a schedule time, so a forced
    # run keyed on it would be swallowed as a duplicate of this firing.
    scheduled = croniter(CRON, datetime.now(UTC)).get_prev(datetime)
    firing = stack.scheduler.deliver(job["name"], scheduled)
    assert firing.succeeded and json.loads(firing.final.body)["outcome"] == "created", firing.final.body

    fired = json.loads(vertex_cron(stack, "run", "nightly", "--format", "json").stdout)

    def two_runs() -> list[dict] | None:
        runs = json.loads(vertex_cron(stack, "history", "nightly", "--format", "json").stdout)
        return runs if len(runs) >= 2 else None

    runs = wait_until(two_runs, "the forced run's PipelineJob")
    ids = sorted(run["name"] for run in runs)
    scheduled_id = f"nightly-{scheduled:%Y%m%d-%H%M%S}"
    assert scheduled_id in ids and len(set(ids)) == len(ids) == 2, ids
    (forced_id,) = set(ids) - {scheduled_id}
    assert forced_id.startswith("nightly-") and forced_id != scheduled_id

    # What `run` said it started: not the previous attempt, but this firing and how to find it.
    assert fired["job_id"] is None and fired["follow"] == "vertex-cron history nightly"
    requested = datetime.fromisoformat(fired["requested_at"])
    assert fired["expected_job_id"] == f"nightly-{requested:%Y%m%d-%H%M%S}" + (
        f"-{requested.microsecond // 1000:03d}" if requested.microsecond // 1000 else ""
    )
    forced_time = datetime.strptime(forced_id[: len("nightly-20240101-030000")], "nightly-%Y%m%d-%H%M%S")
    assert forced_time.replace(tzinfo=UTC) >= requested.replace(microsecond=0)


def test_run_wait_follows_its_own_forced_run_to_success(stack: LocalStack, wait_until):
    deploy_nightly(stack)
    vertex_cron(stack, "run", "nightly")  # another forced run moments before: not the one to follow
    # Scheduler runs a job asynchronously: two forced runs whose executions overlap cannot be
    # told apart (jobs.run returns no execution id), so the earlier one is let through first.
    wait_until(lambda: stack.emulator.pipeline_jobs(), "the earlier forced run's PipelineJob")

    result = vertex_cron(stack, "run", "nightly", "--wait", "--format", "json")

    fired = json.loads(result.stdout)
    assert fired["run"]["state"] == "SUCCEEDED"
    assert f"about {fired['expected_job_id']}" in result.stderr  # what was asked, while it waits
    assert "--wait" not in result.stderr  # without suggesting what it is already doing
    assert fired["job_id"] == fired["run"]["name"] and fired["job_id"].startswith("nightly-")
    assert fired["job_id"] == "nightly-" + fired["logical_time"].replace("-", "").replace(":", "").replace(
        "T", "-"
    ).replace(".", "-").removesuffix("Z")
    runs = json.loads(vertex_cron(stack, "history", "nightly", "--format", "json").stdout)
    assert len(runs) == 2 and fired["job_id"] == max(run["name"] for run in runs)

    text = vertex_cron(stack, "run", "nightly", "--wait")
    assert (text.stdout + text.stderr).count("Fired schedule nightly now") == 1  # said once, while waiting
    assert re.fullmatch(r"PipelineJob nightly-[0-9-]+ SUCCEEDED, logical time .*\n", text.stdout)


def test_run_wait_exits_1_naming_the_job_when_the_forced_run_fails(stack: LocalStack):
    deploy_nightly(stack)
    stack.emulator.fail_pipeline_jobs("^nightly-", "train step OOMKilled")

    result = vertex_cron(stack, "run", "nightly", "--wait", code=1)

    (failed,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert re.fullmatch(
        r"error: PipelineJob nightly-[0-9-]+ of the forced run of nightly ended FAILED: train step OOMKilled", failed
    )
    assert "console.cloud.google.com" in result.stderr
