"""Re-running at any moment is safe: after an answer lost at each mutating step, while the
change it asked for is still under way in Google Cloud, a prompt re-run waits for it and
converges to exactly the desired state, nothing orphaned; a third run changes nothing.
(Runs at once, and the lease that makes them take turns: test_lease.py.)

Operations here last as long as each test sets (`emulator.function_deploy_seconds`), long
enough that the re-run meets the function DEPLOYING or DELETING."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from reliability_stack import storage_bucket
from test_deployer_faults import CONVERGED, DEPLOY_ARGS, ENV, assert_failed_clearly, deploy, resources
from vertex_cron.cli import cli

LEASE = "vertex-cron/specs/deploy-project/europe-west1.lease.json"
OPERATION_SECONDS = 1.0  # a build or delete that outlives the failed run, so the re-run meets it


# (id, the request whose answer is lost); the request itself is served.
LOST_ON_FIRST_DEPLOY = [
    ("upload-url", {"method": "POST", "path": r":generateUploadUrl$"}),
    ("source-upload", {"method": "PUT", "path": r"\.zip$"}),
    ("function-create", {"method": "POST", "path": r"/functions$"}),
    ("iam-write", {"method": "POST", "path": r":setIamPolicy$"}),
    ("scheduler-create", {"method": "POST", "path": r"/jobs$"}),
]


@pytest.fixture
def run_cli(emulator, emulator_env, spec_bucket, tmp_path, monkeypatch):
    """`run_cli(*args, **env_overrides)`: the CLI in this process, against emulators whose
    operations take OPERATION_SECONDS."""
    emulator.function_deploy_seconds = OPERATION_SECONDS
    monkeypatch.chdir(tmp_path)

    def run(*args: str, **env_overrides: str):
        env = {**ENV, "VERTEX_CRON_BUCKET": spec_bucket, **emulator_env, **env_overrides}
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run


def storage_writes(storage_emulator, bucket: str) -> int:
    return sum(1 for method, path in storage_emulator.calls if method != "GET" and f"/b/{bucket}/" in path)


def assert_third_run_changes_nothing(run_cli, emulator, storage_emulator, bucket):
    calls, writes = emulator.mutating_calls(), storage_writes(storage_emulator, bucket)
    third = deploy(run_cli)
    assert third.exit_code == 0 and third.stdout.startswith("Up to date: nothing to change"), third.output
    assert emulator.mutating_calls() == calls
    assert storage_writes(storage_emulator, bucket) == writes  # not even the lease


def lease_exists(storage_emulator, bucket: str) -> bool:
    return storage_bucket(storage_emulator.url, bucket).get_blob(LEASE) is not None


def test_a_deploy_shows_which_stage_the_function_operation_is_in(run_cli):
    result = deploy(run_cli)

    assert result.exit_code == 0, result.output
    assert "(building) (" in result.stderr and "build stage: Build in progress)" in result.stderr
    assert "service stage)" in result.stderr


@pytest.mark.parametrize("rule", [case[1] for case in LOST_ON_FIRST_DEPLOY], ids=[c[0] for c in LOST_ON_FIRST_DEPLOY])
def test_an_answer_lost_at_any_deploy_step_then_a_prompt_rerun_converges(
    run_cli, emulator, storage_emulator, spec_bucket, rule
):
    fault = emulator.faults.add(**rule, lose_answer=True, times=1)

    assert_failed_clearly(deploy(run_cli), "re-running is safe")
    assert fault.hits == 1

    rerun = deploy(run_cli)  # at once: a function created by the first run is still DEPLOYING
    assert rerun.exit_code == 0, rerun.output
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED
    assert len([p for m, p, s in emulator.calls if m == "POST" and p.endswith("/functions")]) == 1
    assert not lease_exists(storage_emulator, spec_bucket)
    assert_third_run_changes_nothing(run_cli, emulator, storage_emulator, spec_bucket)


def test_the_rerun_waits_for_the_build_the_lost_create_started(run_cli, emulator, storage_emulator, spec_bucket):
    emulator.faults.add(method="POST", path=r"/functions$", lose_answer=True, times=1)
    assert deploy(run_cli).exit_code == 1
    assert [f["state"] for f in emulator.functions()] == ["DEPLOYING"]

    rerun = deploy(run_cli)

    assert rerun.exit_code == 0, rerun.output
    assert "function vertex-cron-trigger is DEPLOYING" in rerun.stderr and "waiting for it" in rerun.stderr
    assert "no Cloud Run service" not in rerun.output


def test_a_build_the_rerun_waited_for_that_fails_is_rebuilt(run_cli, emulator, storage_emulator, spec_bucket):
    """The lost create's build fails mid-way while the re-run waits for it: the re-run then
    compares a FAILED function and builds it again."""
    builds = []

    def first_build_fails(function, source):
        builds.append(function["name"])
        if len(builds) == 1:
            raise RuntimeError("Step #2 - build: pip install failed")
        return None

    emulator.on_function_deployed = first_build_fails
    emulator.faults.add(method="POST", path=r"/functions$", lose_answer=True, times=1)
    assert deploy(run_cli).exit_code == 1

    rerun = deploy(run_cli)

    assert rerun.exit_code == 0, rerun.output
    assert "is DEPLOYING" in rerun.stderr and "updating function vertex-cron-trigger (building)" in rerun.stderr
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED


def test_a_lost_answer_to_a_function_update_then_a_prompt_rerun_converges(
    run_cli, emulator, storage_emulator, spec_bucket
):
    assert deploy(run_cli).exit_code == 0
    patches_before = len([p for m, p, s in emulator.calls if m == "PATCH" and "/functions/" in p])
    emulator.faults.add(method="PATCH", path=r"/functions/", lose_answer=True, times=1)
    three_instances = {"VERTEX_CRON_MAX_INSTANCES": "3"}  # one function setting changes

    assert_failed_clearly(run_cli(*DEPLOY_ARGS, **three_instances), "re-running is safe")

    rerun = run_cli(*DEPLOY_ARGS, **three_instances)
    assert rerun.exit_code == 0, rerun.output
    assert "is DEPLOYING" in rerun.stderr
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED
    assert emulator.functions()[0]["serviceConfig"]["maxInstanceCount"] == 3
    assert len([p for m, p, s in emulator.calls if m == "PATCH" and "/functions/" in p]) == patches_before + 1
    calls = emulator.mutating_calls()
    assert run_cli(*DEPLOY_ARGS, **three_instances).stdout.startswith("Up to date: nothing to change")
    assert emulator.mutating_calls() == calls


def test_a_lost_answer_to_a_job_update_then_a_prompt_rerun_converges(run_cli, emulator, storage_emulator, spec_bucket):
    assert deploy(run_cli).exit_code == 0
    emulator.faults.add(method="PATCH", path=r"/jobs/", lose_answer=True, times=1)
    changed = (*DEPLOY_ARGS[:5], "0 4 * * *", *DEPLOY_ARGS[6:])

    assert_failed_clearly(run_cli(*changed), "re-running is safe")

    rerun = run_cli(*changed)
    assert rerun.exit_code == 0 and rerun.stdout.startswith("Up to date"), rerun.output
    assert [job["schedule"] for job in emulator.scheduler_jobs()] == ["0 4 * * *"]


@pytest.mark.parametrize("lost", ["job", "function"])
def test_a_lost_answer_to_a_delete_then_a_prompt_rerun_deletes_everything(
    run_cli, emulator, storage_emulator, spec_bucket, lost
):
    assert deploy(run_cli).exit_code == 0
    path = r"/jobs/vertex-cron-nightly$" if lost == "job" else r"/functions/vertex-cron-trigger$"
    emulator.faults.add(method="DELETE", path=path, lose_answer=True, times=1)

    assert_failed_clearly(run_cli("delete", "nightly"), "re-running is safe")

    rerun = run_cli("delete", "nightly")  # the function may still be DELETING
    assert rerun.exit_code == 0, rerun.output
    assert emulator.functions() == [] and emulator.scheduler_jobs() == []
    assert len([p for m, p, s in emulator.calls if m == "DELETE" and p.endswith("/functions/vertex-cron-trigger")]) == 1
    calls = emulator.mutating_calls()
    third = run_cli("delete", "nightly")
    assert third.exit_code == 1 and "no schedule named 'nightly'" in third.stderr
    assert emulator.mutating_calls() == calls


def test_a_change_someone_else_started_meanwhile_is_explained(run_cli, emulator, storage_emulator, spec_bucket):
    """Between this run's look and its update, another tool (not holding the lease) started
    an operation on the function: Functions answers 409 ABORTED. The run cannot know what
    that operation does, says so, and the re-run converges."""
    assert deploy(run_cli).exit_code == 0
    emulator.faults.add(method="PATCH", path=r"/functions/", status=409, message="unable to queue the operation")
    four_instances = {"VERTEX_CRON_MAX_INSTANCES": "4"}

    first = run_cli(*DEPLOY_ARGS, **four_instances)

    assert_failed_clearly(first, "another change to it started after this run looked")
    assert "re-running is safe" in first.stderr
    assert run_cli(*DEPLOY_ARGS, **four_instances).exit_code == 0
    assert emulator.functions()[0]["serviceConfig"]["maxInstanceCount"] == 4


def test_lost_answers_to_the_lease_and_spec_writes_are_recognised_on_the_retry(
    run_cli, emulator, storage_emulator, spec_bucket
):
    """Both writes are conditional (ifGenerationMatch=0), so the client library retries them;
    the retry meets 412 for what the first attempt already wrote. The lease knows its own
    token, the spec its own content-addressed name: the deploy goes on."""
    uploads = storage_emulator.faults.add(
        method="POST", path=rf"^/upload/storage/v1/b/{spec_bucket}/o$", lose_answer=True, times=2
    )

    result = deploy(run_cli)

    assert result.exit_code == 0, result.output
    assert "waiting for another vertex-cron run" not in result.stderr  # its own lease is no other run's
    assert uploads.hits == 2  # the lease, then the spec
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED
    assert not lease_exists(storage_emulator, spec_bucket)
