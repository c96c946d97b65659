"""A fault at each step of `vertex-cron deploy`: a clear one-line error (exit 1, no
traceback), and re-running the same command converges with nothing orphaned or doubled."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from reliability_stack import EXAMPLES, storage_bucket
from vertex_cron.cli import cli

PROJECT, REGION = "deploy-project", "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
FUNCTION = f"{PARENT}/functions/vertex-cron-trigger"
SCHEDULER_SA = f"vc-scheduler@{PROJECT}.iam.gserviceaccount.com"
ENV = {
    "VERTEX_CRON_PROJECT": PROJECT,
    "VERTEX_CRON_REGION": REGION,
    "VERTEX_CRON_WORKLOAD_SA": f"vc-workload@{PROJECT}.iam.gserviceaccount.com",
    "VERTEX_CRON_FUNCTION_SA": f"vc-function@{PROJECT}.iam.gserviceaccount.com",
    "VERTEX_CRON_SCHEDULER_SA": SCHEDULER_SA,
    "VERTEX_CRON_BUILD_SA": f"vc-build@{PROJECT}.iam.gserviceaccount.com",
    "VERTEX_CRON_POLL_SECONDS": "0.02",
}

# (id, emulator, fault rule, words the error line must contain); every step of apply in order.
STEP_FAULTS = [
    ("upload-url-503", "control", {"method": "POST", "path": r":generateUploadUrl$"}, "upload URL"),
    ("source-upload-503", "control", {"method": "PUT", "path": r"\.zip$"}, "uploading the function source"),
    ("function-create-503", "control", {"method": "POST", "path": r"/functions$"}, "deploy function"),
    ("iam-read-503", "control", {"method": "GET", "path": r":getIamPolicy$"}, "roles/run.invoker"),
    ("iam-write-503", "control", {"method": "POST", "path": r":setIamPolicy$"}, "roles/run.invoker"),
    ("scheduler-create-503", "control", {"method": "POST", "path": r"/jobs$"}, "create Scheduler job"),
    (
        "scheduler-reset",
        "control",
        {"method": "POST", "path": r"/jobs$", "reset_connection": True},
        "create Scheduler job",
    ),
]


@pytest.fixture
def run_cli(emulator_env, spec_bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {**ENV, "VERTEX_CRON_BUCKET": spec_bucket, **emulator_env}

    def run(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run


DEPLOY_ARGS = (
    "deploy",
    "nightly",
    "--spec",
    str(EXAMPLES / "pipeline.json"),
    "--cron",
    "0 3 * * *",
    "--param",
    "run_date={{schedule_time:%Y-%m-%d}}",
)


def deploy(run_cli):
    return run_cli(*DEPLOY_ARGS)


def resources(emulator, storage_emulator, bucket):
    """Everything a deploy leaves behind, as a user would list it."""
    functions = emulator.functions()
    service = functions[0]["serviceConfig"].get("service") if functions else None
    return {
        "functions": [(f["name"], f["state"]) for f in functions],
        "invokers": (emulator.iam_policy(service).get("bindings") if service else None),
        "jobs": sorted(job["name"] for job in emulator.scheduler_jobs()),
        "specs": len(list(storage_bucket(storage_emulator.url, bucket).list_blobs())),
    }


CONVERGED = {
    "functions": [(FUNCTION, "ACTIVE")],
    "invokers": [{"role": "roles/run.invoker", "members": [f"serviceAccount:{SCHEDULER_SA}"]}],
    "jobs": [f"{PARENT}/jobs/vertex-cron-nightly"],
    "specs": 1,
}


# Faults the client libraries absorb by retrying (the write is conditional or read-only):
# the first deploy already succeeds, with nothing doubled.
ABSORBED_FAULTS = [
    ("spec-upload-503", "storage", {"method": "POST", "path": r"^/upload/storage/v1/b/[^/]+/o$"}),
    ("operation-poll-503", "control", {"method": "GET", "path": r"/operations/"}),
]


def assert_failed_clearly(result, says):
    assert result.exit_code == 1, result.output
    error = result.stderr[result.stderr.index("error: ") :].splitlines()[0]
    assert says in error, error
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("where", "rule", "says"), [case[1:] for case in STEP_FAULTS], ids=[case[0] for case in STEP_FAULTS]
)
def test_a_fault_at_any_step_fails_clearly_and_a_rerun_converges(
    run_cli, emulator, storage_emulator, spec_bucket, where, rule, says
):
    (emulator if where == "control" else storage_emulator).faults.add(**rule, times=1)

    assert_failed_clearly(deploy(run_cli), says)

    assert deploy(run_cli).exit_code == 0
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED
    before = emulator.mutating_calls()
    assert deploy(run_cli).stdout.startswith("Up to date: nothing to change")
    assert emulator.mutating_calls() == before


@pytest.mark.parametrize(
    ("where", "rule"), [case[1:] for case in ABSORBED_FAULTS], ids=[case[0] for case in ABSORBED_FAULTS]
)
def test_a_fault_the_client_retries_is_absorbed_without_duplicates(
    run_cli, emulator, storage_emulator, spec_bucket, where, rule
):
    fault = (emulator if where == "control" else storage_emulator).faults.add(**rule, times=1)

    assert deploy(run_cli).exit_code == 0

    assert fault.hits == 1
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED


def test_a_function_build_that_ends_in_error_fails_clearly_and_a_rerun_converges(
    run_cli, emulator, storage_emulator, spec_bucket
):
    builds = []

    def build_once_broken(function, source):
        builds.append(function["name"])
        if len(builds) == 1:
            raise RuntimeError("Step #2 - build: pip install failed")
        return None

    emulator.on_function_deployed = build_once_broken

    assert_failed_clearly(deploy(run_cli), "pip install failed")

    rerun = deploy(run_cli)
    assert rerun.exit_code == 0, rerun.output
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED


def test_an_iam_etag_conflict_is_reread_and_retried_within_one_deploy(run_cli, emulator, storage_emulator, spec_bucket):
    emulator.faults.add(method="POST", path=r":setIamPolicy$", status=409, times=2)

    assert deploy(run_cli).exit_code == 0

    assert [status for _, path, status in emulator.calls if path.endswith(":setIamPolicy")] == [409, 409, 200]
    reads = [path for method, path, _ in emulator.calls if path.endswith(":getIamPolicy")]
    assert len(reads) >= 3  # each retry starts from a fresh read of the policy and its etag
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED


def test_apply_of_two_schedules_interrupted_at_the_second_job_converges(
    run_cli, emulator, storage_emulator, spec_bucket, tmp_path
):
    (tmp_path / "schedules.yaml").write_text(
        json.dumps(
            {
                "schedules": [
                    {
                        "name": "nightly",
                        "spec": str(EXAMPLES / "pipeline.json"),
                        "cron": "0 3 * * *",
                        "parameters": {"run_date": "{{schedule_time}}"},
                    },
                    {
                        "name": "hourly",
                        "spec": str(EXAMPLES / "pipeline.yaml"),
                        "cron": "0 * * * *",
                        "parameters": {"run_date": "{{schedule_time}}"},
                    },
                ]
            }
        )
    )
    emulator.faults.add(method="POST", path=r"/jobs$", status=None, times=1)  # the first job create passes,
    emulator.faults.add(method="POST", path=r"/jobs$", status=503, times=1)  # the second one fails

    first = run_cli("apply", "-f", "schedules.yaml")
    assert first.exit_code == 1 and "re-running is safe" in first.stderr

    assert run_cli("apply", "-f", "schedules.yaml").exit_code == 0
    assert sorted(job["name"] for job in emulator.scheduler_jobs()) == [
        f"{PARENT}/jobs/vertex-cron-hourly",
        f"{PARENT}/jobs/vertex-cron-nightly",
    ]
