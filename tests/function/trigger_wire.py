"""Constants and Cloud Storage helpers shared by the wire tests and their fixtures."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import requests

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "function"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROJECT, REGION = "wire-project", "us-central1"
WORKLOAD_SA = f"vertex-cron-workload@{PROJECT}.iam.gserviceaccount.com"
INVOKER = f"vertex-cron-scheduler@{PROJECT}.iam.gserviceaccount.com"


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
