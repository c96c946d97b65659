"""`vertex-cron local up --state-dir`: what a restarted stack keeps, seen through a firing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from vertex_cron import api, config
from vertex_cron.local.stack import LocalStack
from vertex_cron.models import ScheduleInput

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"
JOB = "vertex-cron-nightly"


def test_a_firing_after_a_restart_reads_the_pinned_spec_without_a_redeploy(tmp_path):
    schedule = ScheduleInput("nightly", SPEC, "0 3 * * *", parameters={"run_date": "{{schedule_time:%Y-%m-%d}}"})
    with LocalStack(state_dir=tmp_path) as stack:
        settings = config.resolve({}, {**stack.settings_env(), config.POLL_SECONDS_ENV: "0.1"})
        api.deploy(settings, schedule)

    with LocalStack(state_dir=tmp_path) as stack:
        [job] = [job for job in stack.emulator.scheduler_jobs() if job["name"].endswith("/" + JOB)]
        delivery = stack.scheduler.deliver(job["name"], datetime(2030, 1, 2, 3, 0, tzinfo=UTC))

    spec_uri = json.loads(base64.b64decode(job["httpTarget"]["body"]))["spec_uri"]
    assert "#" in spec_uri, "the job pins the spec's generation"
    body = json.loads(delivery.final.body)
    assert delivery.final.status_code == 200, body
    assert body["outcome"] == "created", body
