"""Runs at once take turns through the lease (deployer/lease.py): a second run waits for the
first and then finds nothing to do; a lease left by a killed run, or one nobody renews, is
taken over; a run whose lease was taken over says so; an unchanged deploy takes no lease.
Real `vertex-cron` processes where a run must be killed or overlap another one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from reliability_stack import storage_bucket
from test_deployer_faults import CONVERGED, ENV, deploy, resources
from test_rerun_safety import DEPLOY_ARGS, LEASE, assert_third_run_changes_nothing, lease_exists, run_cli

VERTEX_CRON = str(Path(sys.executable).parent / "vertex-cron")

__all__ = ["run_cli"]  # the fixture, shared with test_rerun_safety.py


def cli_env(emulator_env, spec_bucket) -> dict[str, str]:
    return {**os.environ, **ENV, "VERTEX_CRON_BUCKET": spec_bucket, **emulator_env}


def start_deploy(env: dict[str, str], cwd: Path, stderr: Path) -> subprocess.Popen[str]:
    with stderr.open("w") as err:
        return subprocess.Popen(
            [VERTEX_CRON, *DEPLOY_ARGS], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True
        )


def test_two_deploys_at_once_take_turns_and_both_succeed(
    emulator, emulator_env, storage_emulator, spec_bucket, tmp_path, wait_until, run_cli
):
    """The second run starts while the first is building the function from nothing: it
    waits for the first run's lease, then finds nothing left to do."""
    emulator.function_deploy_seconds = 600.0  # until the test moves the emulator's clock on
    env = cli_env(emulator_env, spec_bucket)
    first = start_deploy(env, tmp_path, tmp_path / "first.err")
    wait_until(lambda: emulator.functions(), "the first run's function create")
    second = start_deploy(env, tmp_path, tmp_path / "second.err")
    wait_until(
        lambda: "waiting for another vertex-cron run to finish" in (tmp_path / "second.err").read_text(),
        "the second run to wait for the first one's lease",
    )

    emulator.function_deploy_seconds = 0.3  # what follows the create (its audience update) is quick
    emulator.clock = lambda: time.time() + 600  # the build finishes
    first_out, _ = first.communicate(timeout=300)
    second_out, _ = second.communicate(timeout=300)

    assert (first.returncode, second.returncode) == (0, 0), (tmp_path / "second.err").read_text()
    assert second_out.startswith("Up to date: nothing to change"), second_out
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED
    assert len([p for m, p, s in emulator.calls if m == "POST" and p.endswith("/functions")]) == 1
    assert len([p for m, p, s in emulator.calls if m == "POST" and p.endswith("/jobs")]) == 1
    assert not lease_exists(storage_emulator, spec_bucket)


def test_a_run_killed_mid_build_leaves_a_lease_the_next_run_takes_over(
    emulator, emulator_env, storage_emulator, spec_bucket, tmp_path, wait_until, run_cli
):
    emulator.function_deploy_seconds = 3.0
    killed = start_deploy(cli_env(emulator_env, spec_bucket), tmp_path, tmp_path / "killed.err")
    wait_until(lambda: emulator.functions(), "the killed run's function create")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert lease_exists(storage_emulator, spec_bucket)  # nobody released it

    rerun = deploy(run_cli)

    assert rerun.exit_code == 0, rerun.output
    assert "taking over the lease of a run that is no longer running" in rerun.stderr
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED
    assert not lease_exists(storage_emulator, spec_bucket)


def test_a_lease_nobody_renews_is_taken_over_once_stale(run_cli, emulator, storage_emulator, spec_bucket):
    """A run on another machine that died: its lease says how long it may go unrenewed."""
    abandoned = {
        "holder": "ci@build-7",
        "host": f"not-{socket.gethostname()}",
        "pid": 4242,
        "command": "apply",
        "started": "2026-01-01T00:00:00+00:00",
        "stale_after_seconds": 0.5,
        "token": "abandoned",
    }
    storage_bucket(storage_emulator.url, spec_bucket).blob(LEASE).upload_from_string(json.dumps(abandoned))

    result = deploy(run_cli)

    assert result.exit_code == 0, result.output
    assert "waiting for another vertex-cron run to finish: ci@build-7" in result.stderr
    assert "taking over the lease" in result.stderr
    assert resources(emulator, storage_emulator, spec_bucket) == CONVERGED
    assert not lease_exists(storage_emulator, spec_bucket)


def test_an_unchanged_deploy_takes_no_lease_so_it_never_waits(run_cli, emulator, storage_emulator, spec_bucket):
    assert deploy(run_cli).exit_code == 0
    held = {"holder": "someone@elsewhere", "host": "elsewhere", "pid": 1, "stale_after_seconds": 3600, "token": "t"}
    storage_bucket(storage_emulator.url, spec_bucket).blob(LEASE).upload_from_string(json.dumps(held))

    assert_third_run_changes_nothing(run_cli, emulator, storage_emulator, spec_bucket)


def test_a_run_whose_lease_was_taken_over_meanwhile_says_so(
    emulator, emulator_env, storage_emulator, spec_bucket, tmp_path, wait_until, run_cli
):
    emulator.function_deploy_seconds = 600.0  # until the test moves the emulator's clock on
    run = start_deploy(cli_env(emulator_env, spec_bucket), tmp_path, tmp_path / "run.err")
    wait_until(lambda: emulator.functions(), "the run's function create")
    usurper = {"holder": "ci@build-9", "host": "elsewhere", "pid": 7, "command": "apply", "token": "usurper"}
    storage_bucket(storage_emulator.url, spec_bucket).blob(LEASE).upload_from_string(json.dumps(usurper))

    emulator.function_deploy_seconds = 0.3  # what follows the create (its audience update) is quick
    emulator.clock = lambda: time.time() + 600
    run.communicate(timeout=300)

    assert run.returncode == 1
    error = (tmp_path / "run.err").read_text()
    assert "error: another run took over this run's lease" in error and "ci@build-9" in error
    assert lease_exists(storage_emulator, spec_bucket)  # the other run's lease is left alone
