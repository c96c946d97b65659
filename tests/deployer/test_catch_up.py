"""Catch-up on the deployer's side, end to end on the local stack: `--catch-up` / `catch_up`
writes the window and its start into the schedule's job body, the sweep's Scheduler job
lives exactly while a schedule of the region uses catch-up, and `resume` decides whether
the fire times of a pause are caught up (vertex_cron_trigger/catch_up.py is the contract)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from local_cli import local_stack, vertex_cron
from vertex_cron_local.stack import LocalStack
from vertex_cron_trigger.catch_up import SWEEP_BODY, SWEEP_CRON, SWEEP_JOB
from vertex_cron_trigger.timefmt import parse_rfc3339

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with local_stack(tmp_path) as local:
        yield local


def deploy(stack: LocalStack, name: str, *flags: str, code: int = 0) -> str:
    args = ("deploy", name, "--spec", str(SPEC), "--cron", "0 3 * * *", "--param", "run_date=x", *flags)
    return vertex_cron(stack, *args, code=code).output


def jobs(stack: LocalStack) -> dict[str, dict[str, Any]]:
    """The Scheduler jobs as the emulator stores them, by short name, with their body decoded."""
    found = {}
    for job in stack.emulator.scheduler_jobs():
        target = job["httpTarget"]
        found[job["name"].rsplit("/", 1)[-1]] = {**job, "body": json.loads(base64.b64decode(target["body"]))}
    return found


def body(stack: LocalStack, name: str) -> dict[str, Any]:
    return json.loads(vertex_cron(stack, "describe", name, "--format", "json").stdout)["body"]


def test_the_sweep_job_comes_with_the_first_catch_up_schedule_and_goes_with_the_last(stack: LocalStack):
    deploy(stack, "plain")
    assert SWEEP_JOB not in jobs(stack)

    before = datetime.now(UTC).replace(microsecond=0)
    deploy(stack, "hourly", "--catch-up", "6h")
    deploy(stack, "daily", "--catch-up", "1d")
    hourly = body(stack, "hourly")
    assert hourly["catch_up"] == "21600s" and body(stack, "daily")["catch_up"] == "86400s"
    assert parse_rfc3339(hourly["catch_up_since"]) >= before
    assert "catch_up" not in body(stack, "plain")

    sweep, schedule = jobs(stack)[SWEEP_JOB], jobs(stack)["vertex-cron-hourly"]
    assert sweep["body"] == SWEEP_BODY and sweep["schedule"] == SWEEP_CRON and sweep["timeZone"] == "UTC"
    assert sweep["httpTarget"]["uri"] == schedule["httpTarget"]["uri"]
    assert sweep["httpTarget"]["oidcToken"] == schedule["httpTarget"]["oidcToken"]
    assert sweep["description"] == schedule["description"]

    # It is no schedule: not listed, not in status, and its name is not one a schedule may have.
    listed = [s["name"] for s in json.loads(vertex_cron(stack, "list", "--format", "json").stdout)]
    assert listed == ["daily", "hourly", "plain"]
    assert [s["schedule"] for s in json.loads(vertex_cron(stack, "status", "--format", "json").stdout)] == listed
    described = vertex_cron(stack, "describe", "catch-up", code=2).output
    assert "no schedule can have it" in described and "choose another name" not in described

    # A redeploy keeps when catch-up started, and changes nothing.
    assert "Up to date" in deploy(stack, "hourly", "--catch-up", "6h")
    assert body(stack, "hourly")["catch_up_since"] == hourly["catch_up_since"]

    vertex_cron(stack, "delete", "hourly")
    assert SWEEP_JOB in jobs(stack)  # `daily` still catches up
    deploy(stack, "daily")  # catch-up turned off: the last schedule using it
    assert SWEEP_JOB not in jobs(stack)
    daily = body(stack, "daily")
    # Still where its fire times are answered for from: it reports its missed ones itself now.
    assert "catch_up" not in daily and "catch_up_since" in daily

    deploy(stack, "daily", "--catch-up", "90m")
    assert SWEEP_JOB in jobs(stack)
    vertex_cron(stack, "delete", "daily")
    assert SWEEP_JOB not in jobs(stack) and set(jobs(stack)) == {"vertex-cron-plain"}


def test_apply_keeps_the_sweep_for_a_deployed_catch_up_schedule_and_prune_takes_it(stack: LocalStack, tmp_path: Path):
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(
        f"defaults: {{catch_up: 2h}}\nschedules:\n"
        f"  - {{name: nightly, spec: {SPEC}, cron: '0 3 * * *', parameters: {{run_date: x}}}}\n"
    )
    vertex_cron(stack, "apply", "-f", str(schedules))
    assert body(stack, "nightly")["catch_up"] == "7200s" and SWEEP_JOB in jobs(stack)

    other = tmp_path / "other.yaml"
    other.write_text(
        f"schedules:\n  - {{name: weekly, spec: {SPEC}, cron: '0 4 * * 1', parameters: {{run_date: x}}}}\n"
    )
    vertex_cron(stack, "apply", "-f", str(other))
    assert SWEEP_JOB in jobs(stack)  # nightly, deployed and left alone, still uses catch-up

    pruned = vertex_cron(stack, "apply", "-f", str(other), "--prune", "--format", "json").stdout
    deleted = {c["name"].rsplit("/", 1)[-1] for c in json.loads(pruned)["changes"] if c["action"] == "delete"}
    assert deleted == {"vertex-cron-nightly", SWEEP_JOB}
    assert set(jobs(stack)) == {"vertex-cron-weekly"}


def test_resume_moves_the_catch_up_start_past_the_pause_unless_asked_to_catch_up(stack: LocalStack):
    deploy(stack, "nightly", "--catch-up", "1d")
    deployed = body(stack, "nightly")["catch_up_since"]

    vertex_cron(stack, "pause", "nightly")
    resumed = vertex_cron(stack, "resume", "nightly", "--catch-up").output
    assert "resumed" in resumed and "caught up" in resumed
    assert body(stack, "nightly")["catch_up_since"] == deployed  # the sweep reaches back into the pause

    vertex_cron(stack, "pause", "nightly")
    before = datetime.now(UTC).replace(microsecond=0)
    vertex_cron(stack, "resume", "nightly")
    moved = body(stack, "nightly")
    assert parse_rfc3339(moved["catch_up_since"]) >= before  # the paused times are not caught up
    assert jobs(stack)["vertex-cron-nightly"]["state"] == "ENABLED"
    assert "Up to date" in deploy(stack, "nightly", "--catch-up", "1d")  # a redeploy keeps the moved start

    again = body(stack, "nightly")["catch_up_since"]
    vertex_cron(stack, "resume", "nightly")  # not paused: nothing was missed, nothing moves
    assert body(stack, "nightly")["catch_up_since"] == again
    not_paused = vertex_cron(stack, "resume", "nightly", "--catch-up").output
    assert "It was not paused" in not_paused and "caught up by" not in not_paused


def test_every_schedule_answers_for_its_fire_times_from_its_deploy_and_from_a_plain_resume(stack: LocalStack):
    """catch_up_since in a body without catch-up: its own next run reports the fire times
    since then that made no run (run_reports.py), never the times of a pause."""
    before = datetime.now(UTC).replace(microsecond=0)
    deploy(stack, "nightly")
    deployed = body(stack, "nightly")
    assert "catch_up" not in deployed and parse_rfc3339(deployed["catch_up_since"]) >= before
    assert "Up to date" in deploy(stack, "nightly")  # a redeploy keeps it
    changed_at = datetime.now(UTC).replace(microsecond=0)
    deploy(stack, "nightly", "--cron", "0 4 * * *")  # other fire times: they start now
    assert parse_rfc3339(body(stack, "nightly")["catch_up_since"]) >= changed_at

    vertex_cron(stack, "pause", "nightly")
    resumed_at = datetime.now(UTC).replace(microsecond=0)
    vertex_cron(stack, "resume", "nightly")
    assert parse_rfc3339(body(stack, "nightly")["catch_up_since"]) >= resumed_at


def test_resume_catch_up_of_a_schedule_without_catch_up_is_refused_and_leaves_it_paused(stack: LocalStack):
    deploy(stack, "nightly")
    vertex_cron(stack, "pause", "nightly")

    refused = vertex_cron(stack, "resume", "nightly", "--catch-up", code=2)

    assert "has no catch_up window" in refused.output and "vertex-cron backfill nightly" in refused.output
    assert jobs(stack)["vertex-cron-nightly"]["state"] == "PAUSED"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("8d", "catch_up 8d is longer than the maximum of 7d"),
        ("1m", "catch_up 1m is shorter than the minimum of 41m15s"),
        ("0h", "catch_up must be a positive duration"),
        ("6 hours", "catch_up must be a duration such as 6h, 90m or 1d"),
    ],
)
def test_a_bad_catch_up_window_is_refused_before_any_call(stack: LocalStack, flag: str, message: str):
    calls = stack.emulator.mutating_calls()

    refused = deploy(stack, "nightly", "--catch-up", flag, code=2)

    assert refused.splitlines()[0].startswith(f"error: schedule nightly: {message}")
    assert stack.emulator.mutating_calls() == calls and jobs(stack) == {}


def test_a_catch_up_schedule_on_another_function_is_refused_naming_the_regions_sweep_function(stack: LocalStack):
    deploy(stack, "hourly", "--catch-up", "6h")
    calls = stack.emulator.mutating_calls()

    refused = deploy(stack, "other", "--catch-up", "6h", "--function-name", "fn-b", code=2)

    assert refused.splitlines()[0].startswith("error: schedule other: the catch-up schedules of ")
    # The local stack serves functions at 127.0.0.1, which names none (test_executor.py checks the name).
    assert "use another function (at http://127.0.0.1:" in refused and "or without catch-up" in refused
    assert stack.emulator.mutating_calls() == calls
