"""A user's whole session on the local stack, every request checked against Google's
Discovery documents: deploy, redeploy with changes, pause, resume, run, history, status,
backfill, delete --purge, doctor, apply --prune, the function's firings and the example
Luigi DAG. The emulators check each
request as it arrives (emulator/discovery.py); the session must leave zero violations,
including those Google would silently ignore (output-only fields)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from croniter import croniter
from local_cli import local_stack, vertex_cron
from vertex_cron_local.stack import LocalStack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CRON = "0 3 * * *"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with local_stack(tmp_path) as local:
        yield local


def scheduler_job(stack: LocalStack, name: str) -> dict:
    (job,) = [job for job in stack.emulator.scheduler_jobs() if job["name"].endswith(f"/vertex-cron-{name}")]
    return job


def test_a_full_session_sends_only_what_googles_discovery_documents_allow(
    stack: LocalStack, tmp_path: Path, wait_until
):
    spec = str(EXAMPLES / "pipeline.yaml")
    vertex_cron(stack, "doctor")
    vertex_cron(stack, "deploy", "nightly", "--spec", spec, "--cron", CRON, "--param", "run_date={{schedule_time}}")
    # Redeploy with changes: another schedule, time zone, parameters and spec (a new upload),
    # and the function's max instances (a function update).
    vertex_cron(
        stack,
        "deploy",
        "nightly",
        "--spec",
        str(EXAMPLES / "pipeline.json"),
        "--cron",
        "30 4 * * 1-5",
        "--time-zone",
        "Europe/Paris",
        "--param",
        "run_date={{schedule_time:%Y-%m-%d}}",
        "--param",
        "sample_rows=10",
        VERTEX_CRON_MAX_INSTANCES="3",
    )
    assert scheduler_job(stack, "nightly")["schedule"] == "30 4 * * 1-5"
    vertex_cron(stack, "pause", "nightly")
    assert scheduler_job(stack, "nightly")["state"] == "PAUSED"
    vertex_cron(stack, "resume", "nightly")
    assert scheduler_job(stack, "nightly")["state"] == "ENABLED"

    # A firing of the function, as Cloud Scheduler delivers it, then a forced run.
    scheduled = croniter("30 4 * * 1-5", datetime.now(UTC)).get_prev(datetime)
    firing = stack.scheduler.deliver(scheduler_job(stack, "nightly")["name"], scheduled)
    assert firing.succeeded, firing.final.body
    vertex_cron(stack, "run", "nightly")

    def two_runs() -> list[dict] | None:
        runs = json.loads(vertex_cron(stack, "history", "nightly", "--format", "json").stdout)
        return runs if len(runs) >= 2 else None

    wait_until(two_runs, "the scheduled and the forced PipelineJob")
    vertex_cron(stack, "status", "nightly")
    week_ago, hour_ago = datetime.now(UTC) - timedelta(days=7), datetime.now(UTC) - timedelta(hours=1)
    vertex_cron(
        stack,
        "backfill",
        "nightly",
        "--from",
        f"{week_ago:%Y-%m-%dT%H:%M:%SZ}",
        "--to",
        f"{hour_ago:%Y-%m-%dT%H:%M:%SZ}",
    )
    vertex_cron(stack, "doctor")

    # apply --prune: the example file's two schedules replace `nightly`.
    shutil.copy(EXAMPLES / "schedules.yaml", tmp_path / "schedules.yaml")
    for name in ("pipeline.yaml", "pipeline.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    vertex_cron(stack, "apply", "-f", str(tmp_path / "schedules.yaml"), "--prune")
    names = sorted(job["name"].rsplit("/", 1)[1] for job in stack.emulator.scheduler_jobs())
    assert names == ["vertex-cron-hourly-smoke", "vertex-cron-nightly-training"], names
    firing = stack.scheduler.deliver(scheduler_job(stack, "hourly-smoke")["name"], datetime.now(UTC))
    assert firing.succeeded, firing.final.body

    vertex_cron(stack, "delete", "hourly-smoke", "nightly-training", "--purge")
    assert stack.emulator.scheduler_jobs() == []

    # The Luigi task: the example DAG, run the way its docstring says.
    luigi_env = {**os.environ, **stack.settings_env(), "PYTHONPATH": str(EXAMPLES)}
    dag = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "luigi_dag", "Publish", "--date", "2024-05-01"]
        + ["--local-scheduler", "--workdir", str(tmp_path / "luigi"), "--TrainModel-poll-initial-seconds", "0.05"],
        cwd=tmp_path,
        env=luigi_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dag.returncode == 0 and ":)" in dag.stdout + dag.stderr, dag.stdout + dag.stderr

    control_plane = stack.emulator.violations
    storage = stack.storage.violations
    assert [str(v) for v in control_plane] == [], "control-plane requests outside the Discovery documents"
    assert [str(v) for v in storage] == [], "Cloud Storage requests outside the storage.v1 Discovery document"
    # The check did run: every kind of call the session made reached the emulators.
    paths = {path for _method, path, _status in stack.emulator.calls}
    assert any(":pause" in p for p in paths) and any(":run" in p for p in paths), sorted(paths)
    assert any("/pipelineJobs" in p for p in paths), sorted(paths)
    assert ("PATCH", True) in {(method, "/functions/" in path) for method, path, _status in stack.emulator.calls}
    assert any(method == "POST" and "/upload/" in path for method, path in stack.storage.calls), stack.storage.calls
