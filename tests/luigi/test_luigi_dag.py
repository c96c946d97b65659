"""The example DAG (examples/luigi_dag.py) run as users run it: `python -m luigi --module
luigi_dag Publish ... --local-scheduler`, against the Vertex AI and Cloud Storage emulators."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from luigi_support import DEADLINE_SECONDS, EXAMPLES, WORKLOAD_SA

DATE = "2024-05-01"
CREATE = ("POST", "/v1/projects/luigi-project/locations/us-central1/pipelineJobs")


def creations(emulator) -> list:
    return [call for call in emulator.calls if call[:2] == CREATE]


def reads_of(emulator, job_name: str) -> list:
    return [call for call in emulator.calls if call[:2] == ("GET", f"/v1/{job_name}")]


def test_dag_runs_one_pipeline_job_as_the_workload_identity_with_typed_parameters(dag, emulator):
    result = dag.run("Publish", "--date", DATE, "--TrainModel-learning-rate", "0.2")

    assert result.returncode == 0, result.stderr
    [job] = emulator.pipeline_jobs()
    assert job["state"] == "PIPELINE_STATE_SUCCEEDED"
    assert job["serviceAccount"] == WORKLOAD_SA
    assert job["runtimeConfig"]["parameterValues"] == {
        "run_date": DATE,
        "sample_rows": 500,
        "learning_rate": 0.2,
        "dry_run": False,
    }
    assert job["labels"]["managed-by"] == "vertex-cron"
    assert job["labels"]["vertex-cron-luigi-task"] == "trainmodel"
    record = json.loads((dag.workdir / f"vertex-run-{DATE}.json").read_text())
    assert record["name"] == job["name"]
    assert record["state"] == "PIPELINE_STATE_SUCCEEDED"
    assert job["name"] in (dag.workdir / f"published-{DATE}.txt").read_text()


def test_rerunning_a_finished_dag_submits_nothing(dag, emulator):
    assert dag.run("Publish", "--date", DATE).returncode == 0

    again = dag.run("Publish", "--date", DATE)

    assert again.returncode == 0, again.stderr
    assert len(emulator.pipeline_jobs()) == 1
    assert len(creations(emulator)) == 1


def test_a_retry_after_the_worker_died_attaches_to_the_running_job(dag, emulator, wait_until):
    emulator.pipeline_running_seconds = float("inf")
    first = dag.start("Publish", "--date", DATE)
    [job] = wait_until(emulator.pipeline_jobs, "the PipelineJob to be created")
    first.kill()  # no chance to cancel: the run keeps going without its worker
    first.communicate()
    assert emulator.pipeline_jobs()[0]["state"] in ("PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING")
    reads = len(reads_of(emulator, job["name"]))

    retry = dag.start("Publish", "--date", DATE)
    # Still running when the retry looks it up (a run that ended by then is not attached to),
    # then it ends while the retry waits.
    wait_until(lambda: len(reads_of(emulator, job["name"])) > reads + 1, "the retry to look up and poll the job")
    emulator.set_pipeline_job_state(job["name"], "SUCCEEDED")
    output = retry.communicate(timeout=DEADLINE_SECONDS)[0]

    assert retry.returncode == 0, output
    assert [j["name"] for j in emulator.pipeline_jobs()] == [job["name"]]
    assert len(creations(emulator)) == 1
    assert "attached to PipelineJob" in output


def test_two_workers_at_once_share_one_job(dag, emulator):
    both = [dag.start("Publish", "--date", DATE), dag.start("Publish", "--date", DATE)]

    outputs = [process.communicate(timeout=60)[0] for process in both]

    assert [process.returncode for process in both] == [0, 0], outputs
    assert len(emulator.pipeline_jobs()) == 1


def test_a_failed_run_fails_the_task_with_the_jobs_error_and_records_nothing(dag, emulator):
    emulator.fail_pipeline_jobs(".", "train step OOMKilled: out of memory")

    result = dag.run("Publish", "--date", DATE, "--retcode-task-failed", "3")

    assert result.returncode == 3
    [job] = emulator.pipeline_jobs()
    assert f"PipelineJob {job['name']} ended FAILED: train step OOMKilled: out of memory" in result.stderr
    assert not (dag.workdir / f"vertex-run-{DATE}.json").exists()
    assert not (dag.workdir / f"published-{DATE}.txt").exists()


def test_rerunning_after_a_failed_run_submits_the_next_run_of_the_sequence(dag, emulator):
    emulator.fail_pipeline_jobs(r"-[0-9a-f]{16}$", "transient quota exhaustion")  # the first id only
    assert dag.run("Publish", "--date", DATE, "--retcode-task-failed", "3").returncode == 3

    again = dag.run("Publish", "--date", DATE)

    assert again.returncode == 0, again.stderr
    first, second = emulator.pipeline_jobs()
    assert (first["state"], second["state"]) == ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_SUCCEEDED")
    assert second["name"] == first["name"] + "-2"
    record = json.loads((dag.workdir / f"vertex-run-{DATE}.json").read_text())
    assert record["name"] == second["name"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_the_worker_cancels_the_pipeline_job(dag, emulator, wait_until, signum):
    emulator.pipeline_running_seconds = float("inf")
    worker = dag.start("Publish", "--date", DATE)
    wait_until(
        lambda: [j for j in emulator.pipeline_jobs() if j["state"] == "PIPELINE_STATE_RUNNING"],
        "the PipelineJob to run",
    )

    worker.send_signal(signum)
    output = worker.communicate(timeout=60)[0]

    [job] = emulator.pipeline_jobs()
    assert job["state"] == "PIPELINE_STATE_CANCELLED", output
    assert f"cancel PipelineJob {job['name']}" in output
    assert not (dag.workdir / f"vertex-run-{DATE}.json").exists()


def test_deleting_the_record_to_recompute_submits_a_new_run(dag, emulator):
    assert dag.run("Publish", "--date", DATE).returncode == 0
    for output in (f"vertex-run-{DATE}.json", f"published-{DATE}.txt"):
        (dag.workdir / output).unlink()

    again = dag.run("Publish", "--date", DATE)

    assert again.returncode == 0, again.stderr
    first, second = emulator.pipeline_jobs()
    assert second["name"] == first["name"] + "-2"
    assert (first["state"], second["state"]) == ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_SUCCEEDED")
    assert json.loads((dag.workdir / f"vertex-run-{DATE}.json").read_text())["name"] == second["name"]


def test_killing_a_multi_worker_luigi_process_cancels_the_run_of_its_orphaned_task_process(dag, emulator, wait_until):
    emulator.pipeline_running_seconds = float("inf")
    worker = dag.start("Publish", "--date", DATE, "--workers", "2")
    wait_until(
        lambda: [j for j in emulator.pipeline_jobs() if j["state"] == "PIPELINE_STATE_RUNNING"],
        "the PipelineJob to run",
    )

    worker.terminate()  # `kill PID` of the luigi command; its task process is a child of it
    worker.communicate(timeout=DEADLINE_SECONDS)

    (job,) = wait_until(
        lambda: [j for j in emulator.pipeline_jobs() if j["state"] == "PIPELINE_STATE_CANCELLED"],
        "the orphaned task process to cancel the PipelineJob",
    )
    assert not (dag.workdir / f"vertex-run-{DATE}.json").exists()


def _vertex_pipeline_task(dag, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m luigi --module vertex_cron.luigi VertexPipelineTask ...`, docs/luigi.md's form."""
    command = [sys.executable, "-m", "luigi", "--module", "vertex_cron.luigi", "VertexPipelineTask"]
    command += ["--local-scheduler", "--spec", str(EXAMPLES / "pipeline.yaml"), *args]
    return subprocess.run(
        command, cwd=dag.workdir, env=dag.env, capture_output=True, text=True, timeout=DEADLINE_SECONDS
    )


def test_a_parameter_error_is_one_short_traceback_ending_in_the_reason(dag, emulator):
    result = _vertex_pipeline_task(
        dag,
        "--output-uri",
        str(dag.workdir / "run.json"),
        "--parameter-values",
        '{"run_date": "2024-05-01", "sample_rows": "lots"}',
        "--retcode-task-failed",
        "1",
    )

    assert result.returncode == 1, result.stderr
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert "JSONDecodeError" not in result.stderr and "direct cause" not in result.stderr
    assert "parameter_values.sample_rows must be an integer" in result.stderr
    assert emulator.pipeline_jobs() == []


def test_no_pipeline_root_and_no_output_uri_fails_the_task_so_the_exit_code_says_so(dag, emulator):
    result = _vertex_pipeline_task(
        dag, "--parameter-values", '{"run_date": "2024-05-01"}', "--retcode-task-failed", "1"
    )

    assert result.returncode == 1, result.stderr
    assert "set output_uri or pipeline_root (where the run record goes)" in result.stderr
    assert emulator.pipeline_jobs() == []
