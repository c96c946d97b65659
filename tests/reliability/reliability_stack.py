"""What the reliability tests share: the function's environment, Cloud Scheduler's request,
and the questions a user asks afterwards (which jobs exist, what did the log say)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
FUNCTION_DIR = REPO / "function"
EXAMPLES = REPO / "examples"
PROJECT, REGION = "rel-project", "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
WORKLOAD_SA = f"vertex-cron-workload@{PROJECT}.iam.gserviceaccount.com"
INVOKER = f"vertex-cron-scheduler@{PROJECT}.iam.gserviceaccount.com"
FIRING = "2024-05-01T02:00:00Z"
SPEC_OBJECT = "specs/nightly.yaml"


def function_env(emulator: Any, storage_emulator: Any, bucket: str, **overrides: str) -> dict[str, str]:
    """The environment the deployer gives the function, pointed at the emulators."""
    return {
        "VERTEX_CRON_PROJECT": PROJECT,
        "VERTEX_CRON_REGION": REGION,
        "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
        "VERTEX_CRON_SPEC_BUCKET": bucket,
        "VERTEX_CRON_EMULATOR_HOST": emulator.url,
        "STORAGE_EMULATOR_HOST": storage_emulator.url,
        "VERTEX_CRON_OIDC_CERTS_URL": emulator.url + "/oauth2/v1/certs",
        **overrides,
    }


def storage_bucket(storage_url: str, bucket: str) -> Any:
    """A bucket of the Cloud Storage emulator, through the real google-cloud-storage client."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": storage_url})
    return client.bucket(bucket)


def upload(storage_url: str, bucket: str, name: str, data: bytes) -> None:
    storage_bucket(storage_url, bucket).blob(name).upload_from_string(data)


def body_for(spec_uri: str, **fields: Any) -> dict[str, Any]:
    return {"schedule": "nightly", "spec_uri": spec_uri,
            "parameter_values": {"run_date": "{{schedule_time:%Y-%m-%d}}"}, **fields}


def scheduler_headers(*, schedule_time: str | None = FIRING, token: str | None = None) -> dict[str, str]:
    """Cloud Scheduler's request headers (its default content type, the firing, the token)."""
    headers = {"Content-Type": "application/octet-stream"}
    if schedule_time:
        headers["X-CloudScheduler-ScheduleTime"] = schedule_time
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def fire(url: str, body: Mapping[str, Any] | bytes, **header_args: Any) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(url, data=data, headers=scheduler_headers(**header_args), timeout=60)


def job_names(emulator: Any) -> list[str]:
    return sorted(job["name"] for job in emulator.pipeline_jobs())

