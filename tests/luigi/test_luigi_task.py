"""VertexPipelineTask used directly (luigi.build / a Worker in-process) against the emulators:
specs and run records in Cloud Storage, typing of command-line values, progress, refusals."""

from __future__ import annotations

import json
import re
import threading

import luigi
import luigi.scheduler
import luigi.worker
import pytest
import requests
from luigi_support import EXAMPLES, PROJECT, REGION, WORKLOAD_SA
from vertex_cron.luigi import VertexPipelineTask
from vertex_cron_trigger.pipeline_job import keyed_job_id

FAST = {"poll_initial_seconds": 0.05, "poll_max_seconds": 0.2}


@pytest.fixture
def vertex_env(emulator_env, monkeypatch, tmp_path):
    for name, value in {
        "VERTEX_CRON_PROJECT": PROJECT,
        "VERTEX_CRON_REGION": REGION,
        "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no vertex-cron.toml from the checkout
    return emulator_env


def upload(storage_url: str, bucket: str, name: str, data: bytes) -> None:
    response = requests.post(
        f"{storage_url}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": name},
        data=data,
        timeout=30,
    )
    response.raise_for_status()


def read_object(storage_url: str, bucket: str, name: str) -> bytes:
    response = requests.get(
        f"{storage_url}/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}", params={"alt": "media"}, timeout=30
    )
    response.raise_for_status()
    return response.content


def failure_of(task: VertexPipelineTask) -> BaseException:
    """Run `task`, which must fail, and return the error Luigi reports for it."""
    failures: list[BaseException] = []
    task.on_failure = lambda exc: failures.append(exc)

    assert not luigi.build([task], local_scheduler=True)

    return failures[0]


def example_task(tmp_path, **parameter_values: str) -> VertexPipelineTask:
    return VertexPipelineTask(
        spec=str(EXAMPLES / "pipeline.yaml"),
        output_uri=str(tmp_path / "run.json"),
        parameter_values=parameter_values,
        **FAST,
    )


def test_spec_and_run_record_in_cloud_storage_with_command_line_strings_typed(
    vertex_env, emulator, storage_emulator, spec_bucket
):
    upload(storage_emulator.url, spec_bucket, "specs/training.yaml", (EXAMPLES / "pipeline.yaml").read_bytes())
    task = VertexPipelineTask(
        spec=f"gs://{spec_bucket}/specs/training.yaml",
        # What `--parameter-values '{...}'` gives: strings for every type.
        parameter_values={"run_date": "2024-05-01", "sample_rows": "250", "learning_rate": "0.5", "dry_run": "true"},
        pipeline_root=f"gs://{spec_bucket}/root",
        **FAST,
    )

    assert luigi.build([task], local_scheduler=True)

    [job] = emulator.pipeline_jobs()
    assert job["runtimeConfig"]["parameterValues"] == {
        "run_date": "2024-05-01",
        "sample_rows": 250,
        "learning_rate": 0.5,
        "dry_run": True,
    }
    assert job["name"].endswith("/pipelineJobs/" + task.job_id)
    record_path = f"root/vertex-cron-luigi/{task.job_id}.json"
    record = json.loads(read_object(storage_emulator.url, spec_bucket, record_path))
    assert record["name"] == job["name"] and record["state"] == "PIPELINE_STATE_SUCCEEDED"
    assert task.complete()
    with task.output().open() as readback:
        assert json.load(readback) == record


def test_a_wrong_parameter_fails_the_task_naming_it_and_creates_no_job(vertex_env, emulator, tmp_path):
    error = failure_of(example_task(tmp_path, run_date="2024-05-01", sample_rows="1.5"))

    assert "parameter_values.sample_rows must be an integer" in str(error)
    assert emulator.pipeline_jobs() == []


def test_a_placeholder_is_refused_because_a_luigi_task_has_no_firing_and_no_job_is_created(
    vertex_env, emulator, tmp_path
):
    error = failure_of(example_task(tmp_path, run_date="{{schedule_time:%Y-%m-%d}}"))

    assert "parameter_values.run_date is '{{schedule_time:%Y-%m-%d}}': {{...}} placeholders are for schedules" in str(
        error
    )
    assert "from a Luigi parameter" in str(error)
    assert emulator.pipeline_jobs() == []


def test_missing_project_names_where_it_may_come_from(vertex_env, monkeypatch, emulator, tmp_path):
    monkeypatch.delenv("VERTEX_CRON_PROJECT")
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("CLOUDSDK_CORE_PROJECT", raising=False)

    error = failure_of(example_task(tmp_path, run_date="2024-05-01"))

    assert "missing project" in str(error)
    assert "VERTEX_CRON_PROJECT" in error.details
    assert emulator.pipeline_jobs() == []


def test_a_permission_error_names_the_task_s_credentials_not_the_function_s_service_account(
    vertex_env, emulator, tmp_path
):
    emulator.faults.add(method="GET", path="/pipelineJobs/", status=403, message="permission denied")

    error = failure_of(example_task(tmp_path, run_date="2024-05-01"))

    assert "grant the account of your credentials roles/aiplatform.user" in str(error)
    assert "function" not in str(error)


def test_transient_errors_on_the_lookup_and_the_create_are_retried_with_the_same_job_id(vertex_env, emulator, tmp_path):
    task = example_task(tmp_path, run_date="2024-05-01")
    lookup = emulator.faults.add(method="GET", path="/pipelineJobs/", status=429, times=2)
    create = emulator.faults.add(method="POST", path="/pipelineJobs$", status=503, times=2)

    assert luigi.build([task], local_scheduler=True)

    assert lookup.hits == 2 and create.hits == 2
    (job,) = emulator.pipeline_jobs()
    assert job["name"].endswith(f"/pipelineJobs/{task.job_id}")
    assert json.loads((tmp_path / "run.json").read_text())["name"] == job["name"]


def test_a_retry_while_the_last_run_is_cancelling_submits_the_next_run(vertex_env, emulator, tmp_path):
    emulator.pipeline_running_seconds = float("inf")
    task = example_task(tmp_path, run_date="2024-05-01")
    parent = f"projects/{PROJECT}/locations/{REGION}"
    requests.post(  # the first run, as an interrupted attempt left it: being cancelled
        f"{vertex_env['VERTEX_CRON_EMULATOR_HOST']}/v1/{parent}/pipelineJobs",
        params={"pipelineJobId": task.job_id},
        json=task._job_body(task._load_spec()),
        timeout=30,
    ).raise_for_status()
    emulator.set_pipeline_job_state(task.job_id, "CANCELLING")
    emulator.pipeline_running_seconds = 0.2

    assert luigi.build([task], local_scheduler=True)

    record = json.loads((tmp_path / "run.json").read_text())
    assert record["name"] == f"{parent}/pipelineJobs/{task.job_id}-2"
    assert record["state"] == "PIPELINE_STATE_SUCCEEDED"


def test_without_a_place_for_the_record_the_task_fails_instead_of_erroring_while_scheduling(
    vertex_env, emulator, tmp_path
):
    task = VertexPipelineTask(spec=str(EXAMPLES / "pipeline.yaml"), parameter_values={"run_date": "x"}, **FAST)

    error = failure_of(task)

    assert "set output_uri or pipeline_root (where the run record goes)" in str(error)
    assert emulator.pipeline_jobs() == []


def test_progress_is_shown_in_the_scheduler_while_waiting_and_polling_survives_a_503(
    vertex_env, emulator, tmp_path, wait_until
):
    emulator.pipeline_running_seconds = float("inf")
    task = example_task(tmp_path, run_date="2024-05-01")
    scheduler = luigi.scheduler.Scheduler()
    with luigi.worker.Worker(scheduler=scheduler, no_install_shutdown_handler=True) as worker:
        assert worker.add(task)
        running = threading.Thread(target=worker.run, daemon=True)  # daemon: a failed assert must not hang pytest
        running.start()
        wait_until(emulator.pipeline_jobs, "the PipelineJob to be created")
        outage = emulator.faults.add(method="GET", path="/pipelineJobs/", status=503, times=2)

        def status() -> str:
            return scheduler.get_task_status_message(task.task_id)["statusMessage"] or ""

        message = wait_until(lambda: "RUNNING" in status() and status(), "a RUNNING status message")
        assert re.match(
            rf"PipelineJob {task.job_id}: RUNNING\n"
            rf"https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/"
            rf"{task.job_id}\?project={PROJECT}$",
            message,
        )
        emulator.set_pipeline_job_state(task.job_id, "SUCCEEDED")
        running.join(timeout=60)
    assert outage.hits == 2
    assert scheduler.get_task_progress_percentage(task.task_id)["progressPercentage"] == 100
    assert "SUCCEEDED" in scheduler.get_task_status_message(task.task_id)["statusMessage"]
    assert json.loads((tmp_path / "run.json").read_text())["state"] == "PIPELINE_STATE_SUCCEEDED"


@pytest.mark.parametrize(
    "task_id",
    [
        "TrainModel_2024_05_01_False__951c835b22",
        "X" * 500,
        "___",
        "Ünïcødé task (with) spaces & symbols",
    ],
)
def test_job_ids_from_task_ids_are_valid_for_vertex_and_stable(task_id):
    the_id = keyed_job_id(task_id)

    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", the_id)
    assert keyed_job_id(task_id) == the_id
    # room for the "-N" suffix of later runs
    assert len(the_id) <= 120


def test_task_ids_that_read_the_same_once_sanitised_get_different_job_ids():
    assert keyed_job_id("Train_a.b") != keyed_job_id("Train_a_b")
    assert keyed_job_id("Train_a_b").startswith("train-a-b-")
