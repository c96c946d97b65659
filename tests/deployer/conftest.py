"""Plain values shared by the deployer tests, as fixtures (the test folders are not packages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vertex_cron.config import DeployerSettings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_JSON = REPO / "examples" / "pipeline.json"
EXAMPLE_YAML = REPO / "examples" / "pipeline.yaml"

IDENTITY_ENV = {
    "VERTEX_CRON_PROJECT": "demo-project",
    "VERTEX_CRON_REGION": "europe-west1",
    "VERTEX_CRON_WORKLOAD_SA": "vc-workload@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_FUNCTION_SA": "vc-function@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_SCHEDULER_SA": "vc-scheduler@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_BUILD_SA": "vc-build@demo-project.iam.gserviceaccount.com",
}


def _settings(**overrides: object) -> DeployerSettings:
    values = {
        "project": "demo-project",
        "region": "europe-west1",
        "bucket": "demo-bucket",
        "workload_sa": IDENTITY_ENV["VERTEX_CRON_WORKLOAD_SA"],
        "function_sa": IDENTITY_ENV["VERTEX_CRON_FUNCTION_SA"],
        "scheduler_sa": IDENTITY_ENV["VERTEX_CRON_SCHEDULER_SA"],
        "build_sa": IDENTITY_ENV["VERTEX_CRON_BUILD_SA"],
    }
    values.update(overrides)
    return DeployerSettings(**values)


@pytest.fixture
def make_settings():
    """`make_settings(max_instances=3)`: valid settings for demo-project, overridden."""
    return _settings


@pytest.fixture
def example_json() -> Path:
    return EXAMPLE_JSON


@pytest.fixture
def example_yaml() -> Path:
    return EXAMPLE_YAML
