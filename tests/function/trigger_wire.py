"""Constants and Cloud Storage helpers shared by the wire tests and their fixtures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "function"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROJECT, REGION = "wire-project", "us-central1"
WORKLOAD_SA = f"vertex-cron-workload@{PROJECT}.iam.gserviceaccount.com"
INVOKER = f"vertex-cron-scheduler@{PROJECT}.iam.gserviceaccount.com"
FIRING = "2024-05-01T02:00:00Z"
EXAMPLE_ROOT_BUCKET = "vertex-cron-demo-artifacts"  # of the examples' defaultPipelineRoot
PARENT = f"projects/{PROJECT}/locations/{REGION}"


def function_env(emulator_url: str, storage_url: str, spec_bucket: str) -> dict[str, str]:
    """The contract's environment for a function on the emulators."""
    return {
        "VERTEX_CRON_PROJECT": PROJECT,
        "VERTEX_CRON_REGION": REGION,
        "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
        "VERTEX_CRON_SPEC_BUCKET": spec_bucket,
        # The tests' bodies mostly leave pipeline_root out, so runs write to the example's
        # defaultPipelineRoot: allowed here as a deployment with a schedule there would allow it.
        "VERTEX_CRON_PIPELINE_ROOT_BUCKETS": f"{spec_bucket},{EXAMPLE_ROOT_BUCKET}",
        "VERTEX_CRON_EMULATOR_HOST": emulator_url,
        "STORAGE_EMULATOR_HOST": storage_url,
    }


def upload(storage_url: str, bucket: str, name: str, data: bytes) -> int:
    """Upload through the Cloud Storage JSON API, as the deployer does; returns the generation."""
    response = requests.post(
        f"{storage_url}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": name},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["generation"])


def delete(storage_url: str, bucket: str, name: str) -> None:
    response = requests.delete(f"{storage_url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}", timeout=30)
    response.raise_for_status()


def fire(
    function: Any, body: Any, *, schedule_time: str | None = FIRING, token: str | None = None
) -> requests.Response:
    """POST as Cloud Scheduler does; `body` is JSON-encoded unless it is already bytes."""
    headers = {"Content-Type": "application/octet-stream"}  # Cloud Scheduler's default
    if schedule_time:
        headers["X-CloudScheduler-ScheduleTime"] = schedule_time
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(function.url, data=data, headers=headers, timeout=60)


def body_for(spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "schedule": "nightly",
        "spec_uri": spec["uri"],
        "parameter_values": {"run_date": "{{schedule_time:%Y-%m-%d}}"},
        **fields,
    }


def jobs_of(emulator: Any) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for job in emulator.pipeline_jobs()}


# Retries off and the shortest deadline Scheduler allows: Scheduler gives up on a firing
# 15 s + the sweep's 60 s dispatch slack (75 s) after its time.
QUICK_GIVE_UP = {"retryConfig": {"retryCount": 0}, "attemptDeadline": "15s"}


def scheduler_job(emulator: Any, uri: str, name: str, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Create the Cloud Scheduler job `name` calling `uri` with `body` (every 5 minutes in UTC,
    QUICK_GIVE_UP, unless `fields` say otherwise) in the emulator; returns it as stored."""
    job = {
        "name": f"{PARENT}/jobs/{name}",
        "schedule": "*/5 * * * *",
        "timeZone": "Etc/UTC",
        "httpTarget": {
            "uri": uri,
            "httpMethod": "POST",
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "oidcToken": {"serviceAccountEmail": INVOKER, "audience": uri},
        },
        **QUICK_GIVE_UP,
        **fields,
    }
    response = requests.post(f"{emulator.url}/v1/{PARENT}/jobs", json=job, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()
