"""`vertex-cron doctor` in the local stack: the emulated project looks like one where
`terraform apply` of infra/ has run, so every check passes, before and after a deploy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vertex_cron.cli import cli
from vertex_cron.local.provision import LOCAL_DEPLOYER_MEMBER, infra_service_accounts, provision_project
from vertex_cron.local.stack import LocalStack

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    monkeypatch.chdir(tmp_path)  # no vertex-cron.toml of this checkout applies
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "VERTEX_CRON_PROJECT", "VERTEX_CRON_BUILD_SA"):
        monkeypatch.delenv(name, raising=False)
    with LocalStack() as local:
        provision_project(local.emulator, local.storage, project=local.project, region=local.region,
                          bucket=local.bucket, service_accounts=infra_service_accounts(local.project),
                          deployer_member=LOCAL_DEPLOYER_MEMBER)
        yield local


def vertex_cron(stack: LocalStack, *args: str) -> Result:
    env = {**stack.settings_env(), "VERTEX_CRON_POLL_SECONDS": "0.05"}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def checks(result: Result) -> list[str]:
    """The checklist's lines: a mark, then the check."""
    return [line.strip() for line in result.stdout.splitlines() if line.startswith("  ") and not line.startswith("   ")]


def test_doctor_passes_in_the_local_stack_before_and_after_a_deploy(stack: LocalStack):
    before = vertex_cron(stack, "doctor")

    assert before.exit_code == 0, before.output
    assert checks(before) and all(line[0] in "✓–" for line in checks(before)), before.output
    assert "✓ run.googleapis.com enabled" in checks(before)
    assert f"✓ on project {stack.project}" in checks(before)
    assert "– vertex-cron-trigger: not deployed yet: the first `vertex-cron deploy` creates it" in checks(before)

    deployed = vertex_cron(stack, "deploy", "nightly", "--spec", str(SPEC), "--cron", "0 3 * * *",
                           "--param", "run_date=x")
    assert deployed.exit_code == 0, deployed.output
    after = vertex_cron(stack, "doctor")

    assert after.exit_code == 0, after.output
    assert all(line[0] in "✓–" for line in checks(after)), after.output
    assert {f"✓ runs as the function SA {stack.function_sa}", "✓ environment matches the settings",
            "✓ not public (no allUsers/allAuthenticatedUsers invoker)",
            "✓ scheduler SA may invoke it (roles/run.invoker)"} <= set(checks(after))
