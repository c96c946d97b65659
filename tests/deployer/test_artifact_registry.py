"""Schedules of pipelines published to Artifact Registry, end to end on the local stack.

Pipelines are published with kfp's own `RegistryClient` (its real upload, tag and metadata
calls), pointed at the emulator by the `kfp_registry` fixture (tests/conftest.py)."""

from __future__ import annotations

import base64
import importlib.util
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from click.testing import Result
from croniter import croniter
from kfp.registry import RegistryClient
from local_cli import local_stack, vertex_cron
from vertex_cron_local.stack import LocalStack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPEC = EXAMPLES / "pipeline.yaml"
CRON = "0 3 * * *"
LOCATION = "us-central1"  # a repository's location need not be the schedules' region
REPOSITORY = "pipelines"
PACKAGE = "nightly-training"  # the example's pipelineInfo.name: the package kfp uploads to


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with local_stack(tmp_path) as local:
        yield local


def create_repository(stack: LocalStack, repository: str = REPOSITORY, fmt: str = "KFP") -> None:
    reply = requests.post(
        f"{stack.emulator.url}/v1/projects/{stack.project}/locations/{LOCATION}/repositories",
        params={"repositoryId": repository},
        json={"format": fmt},
        timeout=30,
    )
    assert reply.status_code == 200 and reply.json()["done"], reply.text


def publish_example(host: str, tag: str, **options: object) -> tuple[str, str]:
    spec = importlib.util.spec_from_file_location("publish_pipeline", EXAMPLES / "publish_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.publish(host, tag, **options)


@pytest.fixture
def repository(stack: LocalStack, kfp_repository) -> tuple[str, dict]:
    return kfp_repository(stack.emulator.url, stack.project, LOCATION, REPOSITORY)


@pytest.fixture
def registry(repository: tuple[str, dict]) -> RegistryClient:
    host, options = repository
    return RegistryClient(host=host, **options)


def uri(stack: LocalStack, reference: str, *, repository: str = REPOSITORY, package: str = PACKAGE) -> str:
    return f"https://{LOCATION}-kfp.pkg.dev/{stack.project}/{repository}/{package}/{reference}"


def deploy(stack: LocalStack, spec: str, *extra: str, code: int | None = 0) -> Result:
    return vertex_cron(
        stack, "deploy", "nightly", "--spec", spec, "--cron", CRON, "--param", "run_date=x", *extra, code=code
    )


def job_body(stack: LocalStack) -> dict:
    (job,) = [job for job in stack.emulator.scheduler_jobs() if job["name"].endswith("/vertex-cron-nightly")]
    return json.loads(base64.b64decode(job["httpTarget"]["body"]))


def test_a_tag_is_pinned_at_deploy_and_moving_it_changes_nothing_until_the_next_deploy(
    stack: LocalStack, repository: tuple[str, dict], registry: RegistryClient, tmp_path: Path
):
    host, options = repository
    tagged, first = publish_example(host, "prod", **options)  # as examples/publish_pipeline.py does
    assert tagged == uri(stack, "prod")

    dry = deploy(stack, uri(stack, "prod"), "--dry-run").output
    assert f"{uri(stack, 'prod')} -> {first}" in dry
    deploy(stack, uri(stack, "prod"))
    assert job_body(stack)["template_uri"] == uri(stack, first)

    # A new version, published and tagged prod: the schedule keeps running the first.
    changed = tmp_path / "pipeline-v2.yaml"
    changed.write_text(SPEC.read_text().replace("defaultValue: 0.01", "defaultValue: 0.02"))
    _, second = registry.upload_pipeline(str(changed))
    registry.update_tag(PACKAGE, second, "prod")
    assert second != first
    assert job_body(stack)["template_uri"] == uri(stack, first)

    redeploy = deploy(stack, uri(stack, "prod"), "--dry-run").output
    assert f"{uri(stack, 'prod')} -> {second}" in redeploy
    assert "~ job" in redeploy and "http_target.body.template_uri: " in redeploy, redeploy
    deploy(stack, uri(stack, "prod"))
    body = job_body(stack)
    assert body["template_uri"] == uri(stack, second)

    (job,) = [job for job in stack.emulator.scheduler_jobs() if job["name"].endswith("/vertex-cron-nightly")]
    firing = stack.scheduler.deliver(job["name"], croniter(CRON, datetime.now(UTC)).get_prev(datetime))
    assert firing.succeeded and json.loads(firing.final.body)["outcome"] == "created", firing.final.body
    (run,) = stack.emulator.pipeline_jobs()
    assert run["templateUri"] == uri(stack, second)
    assert run["templateMetadata"] == {"version": second}
    assert run["labels"]["vertex-cron-template-version"] == second.removeprefix("sha256:")[:16]
    parameters = run["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert parameters["learning_rate"]["defaultValue"] == 0.02  # the second version's spec ran


def test_a_version_uri_deploys_as_given(stack: LocalStack, registry: RegistryClient):
    _, version = registry.upload_pipeline(str(SPEC))
    result = deploy(stack, uri(stack, version))
    assert "Pinned" not in result.output  # nothing to resolve
    assert job_body(stack)["template_uri"] == uri(stack, version)


def nothing_deployed(stack: LocalStack) -> bool:
    return not stack.emulator.scheduler_jobs() and not stack.emulator.functions()


def one_line_error(result: Result, uri: str, *, exit_code: int = 1) -> str:
    """Exit 1 for what the cloud answered, 2 for a spec that is itself wrong (as for a file)."""
    assert result.exit_code == exit_code, result.output
    first = result.output.strip().splitlines()[0]
    assert uri in first, result.output
    return first


def test_an_unknown_tag_or_version_is_a_one_line_error_and_nothing_is_deployed(
    stack: LocalStack, registry: RegistryClient
):
    registry.upload_pipeline(str(SPEC), tags=["prod"])
    for reference in ("staging", "sha256:" + "0" * 64):
        line = one_line_error(deploy(stack, uri(stack, reference), code=None), uri(stack, reference))
        assert "not found" in line
    assert nothing_deployed(stack)


def test_a_repository_not_in_kfp_format_is_refused(stack: LocalStack, registry: RegistryClient):
    create_repository(stack, "images", fmt="DOCKER")
    given = uri(stack, "prod", repository="images")
    line = one_line_error(deploy(stack, given, code=None), given, exit_code=2)
    assert "DOCKER" in line and "KFP" in line
    assert nothing_deployed(stack)


def test_a_package_that_is_not_a_pipeline_is_refused(stack: LocalStack, registry: RegistryClient, tmp_path: Path):
    not_a_pipeline = tmp_path / "notes.yaml"
    not_a_pipeline.write_text("pipelineInfo:\n  name: release-notes\nnotes: [a, b]\n")
    package, _ = registry.upload_pipeline(str(not_a_pipeline), tags=["latest"])
    given = uri(stack, "latest", package=package)
    one_line_error(deploy(stack, given, code=None), given, exit_code=2)
    assert nothing_deployed(stack)


def test_permission_denied_on_the_repository_is_refused(stack: LocalStack, registry: RegistryClient):
    registry.upload_pipeline(str(SPEC), tags=["prod"])
    stack.emulator.faults.add(path=f"/repositories/{REPOSITORY}$", status=403, times=10)
    line = one_line_error(deploy(stack, uri(stack, "prod"), code=None), uri(stack, "prod"))
    assert "permission denied" in line
    assert nothing_deployed(stack)


def test_a_malformed_registry_uri_is_a_usage_error(stack: LocalStack):
    result = deploy(stack, f"https://{LOCATION}-kfp.pkg.dev/{stack.project}/{REPOSITORY}/{PACKAGE}", code=None)
    assert result.exit_code == 2 and "Artifact Registry KFP URI" in result.output, result.output
    assert nothing_deployed(stack)


def test_a_bad_argument_is_refused_before_the_registry_is_read(stack: LocalStack, registry: RegistryClient):
    registry.upload_pipeline(str(SPEC), tags=["prod"])
    stack.emulator.clear_calls()
    result = vertex_cron(stack, "deploy", "nightly", "--spec", uri(stack, "prod"), "--cron", "0 3 31 2 *", code=None)
    assert result.exit_code == 2, result.output
    assert stack.emulator.calls == []
