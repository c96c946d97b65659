"""`vertex-cron local up --state-dir`: what a restarted stack keeps, and what it lets go."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from vertex_cron import api, config
from vertex_cron.cli import cli
from vertex_cron.models import ScheduleInput
from vertex_cron_local.stack import LocalStack

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"
SCHEDULE = ScheduleInput("nightly", SPEC, "0 3 * * *", parameters={"run_date": "{{schedule_time:%Y-%m-%d}}"})
JOB = "vertex-cron-nightly"


def deployer_env(stack: LocalStack) -> dict[str, str]:
    return {**stack.settings_env(), config.POLL_SECONDS_ENV: "0.1"}


def test_a_firing_after_a_restart_reads_the_pinned_spec_without_a_redeploy(tmp_path):
    with LocalStack(state_dir=tmp_path) as stack:
        api.deploy(config.resolve({}, deployer_env(stack)), SCHEDULE)

    with LocalStack(state_dir=tmp_path) as stack:
        [job] = [job for job in stack.emulator.scheduler_jobs() if job["name"].endswith("/" + JOB)]
        delivery = stack.scheduler.deliver(
            job["name"], datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
        )  # past: see logical_time.FUTURE_SKEW

    spec_uri = json.loads(base64.b64decode(job["httpTarget"]["body"]))["spec_uri"]
    assert "#" in spec_uri, "the job pins the spec's generation"
    body = json.loads(delivery.final.body)
    assert delivery.final.status_code == 200, body
    assert body["outcome"] == "created", body


def test_deleting_the_last_schedule_stops_its_function_and_a_restart_does_not_revive_it(tmp_path):
    with LocalStack(state_dir=tmp_path) as stack:
        settings = config.resolve({}, deployer_env(stack))
        api.deploy(settings, SCHEDULE)
        function_url = api.describe(settings, "nightly").job.fields["http_target.uri"]
        deleted = CliRunner().invoke(cli, ["delete", "nightly"], env=deployer_env(stack), catch_exceptions=False)

        assert deleted.exit_code == 0, deleted.output
        assert stack.emulator.functions() == []
        with pytest.raises(requests.ConnectionError):
            requests.post(function_url, json={}, timeout=5)

    with LocalStack(state_dir=tmp_path), pytest.raises(requests.ConnectionError):
        requests.post(function_url, json={}, timeout=5)
