"""`vertex-cron doctor` in the local stack: `local up` provisions the emulated project as
`terraform apply` of infra/ would, so every check passes, before and after a deploy; take
a grant away and doctor names it, with its fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from vertex_cron.cli import cli
from vertex_cron.permissions import GRANTS, Scope, grant
from vertex_cron_local.provision import LOCAL_DEPLOYER_MEMBER, infra_state, write
from vertex_cron_local.stack import LocalStack

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    monkeypatch.chdir(tmp_path)  # no vertex-cron.toml of this checkout applies
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "VERTEX_CRON_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with LocalStack() as local:
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
    assert f"✓ build SA {stack.build_sa} exists" in checks(before)
    assert "– vertex-cron-trigger: not deployed yet: the first `vertex-cron deploy` creates it" in checks(before)

    deployed = vertex_cron(
        stack, "deploy", "nightly", "--spec", str(SPEC), "--cron", "0 3 * * *", "--param", "run_date=x"
    )
    assert deployed.exit_code == 0, deployed.output
    after = vertex_cron(stack, "doctor")

    assert after.exit_code == 0, after.output
    assert all(line[0] in "✓–" for line in checks(after)), after.output
    assert {
        f"✓ runs as the function SA {stack.function_sa}",
        "✓ environment matches the settings",
        "✓ not public (no allUsers/allAuthenticatedUsers invoker)",
        "✓ scheduler SA may invoke it (roles/run.invoker)",
    } <= set(checks(after))


def test_doctor_in_the_local_stack_names_a_removed_grant_and_its_fix(stack: LocalStack):
    removed = grant("function", Scope.PROJECT)
    write(
        infra_state(
            project=stack.project,
            region=stack.region,
            bucket=stack.bucket,
            service_accounts=stack.service_accounts,
            deployer_member=LOCAL_DEPLOYER_MEMBER,
            grants=[g for g in GRANTS if g != removed],
        ),
        stack.emulator,
        stack.storage,
    )
    result = vertex_cron(stack, "doctor")

    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("  ✗") or line.startswith("      fix:")]
    assert failed == [
        f"  ✗ on project {stack.project}: missing aiplatform.metadataStores.get, aiplatform.pipelineJobs.create, "
        "aiplatform.pipelineJobs.get, aiplatform.pipelineJobs.list, cloudscheduler.jobs.fullView, "
        "cloudscheduler.jobs.list",
        f"      fix: gcloud projects add-iam-policy-binding {stack.project} "
        f"--member=serviceAccount:{stack.function_sa} --role=projects/{stack.project}/roles/vertexCron_trigger",
        "      fix: terraform: google_project_iam_member.function (infra/iam.tf)",
    ]
    assert result.stderr.strip() == f"error: 1 of {len(checks(result))} checks failed"


QUICKSTART_SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.json"


def test_the_quickstart_gives_runs_the_workload_sa_can_write_and_doctor_flags_a_root_it_cannot(
    stack: LocalStack, wait_until
):
    # README's quickstart, as written: no --pipeline-root. The spec's own defaultPipelineRoot
    # (gs://vertex-cron-demo-artifacts/...) is a bucket this project does not have.
    quickstart = ("--spec", str(QUICKSTART_SPEC), "--cron", "0 3 * * *", "--time-zone", "Europe/Paris")
    deployed = vertex_cron(stack, "deploy", "nightly", *quickstart, "--param", "run_date={{schedule_time:%Y-%m-%d}}")
    assert deployed.exit_code == 0, deployed.output
    assert vertex_cron(stack, "run", "nightly").exit_code == 0

    (job,) = wait_until(stack.emulator.pipeline_jobs, "the run `vertex-cron run nightly` starts")
    root = job["runtimeConfig"]["gcsOutputDirectory"]
    assert job["serviceAccount"] == stack.workload_sa
    assert root == f"gs://{stack.bucket}/vertex-cron/pipeline-root/{stack.project}/{stack.region}/nightly"
    healthy = vertex_cron(stack, "doctor")
    assert healthy.exit_code == 0, healthy.output
    assert f"✓ nightly: {root}" in checks(healthy)

    elsewhere = "gs://vertex-cron-demo-artifacts/pipeline-root"
    adhoc = vertex_cron(stack, "deploy", "adhoc", *quickstart, "--param", "run_date=x", "--pipeline-root", elsewhere)
    assert adhoc.exit_code == 0, adhoc.output
    stack.storage.create_bucket("vertex-cron-demo-artifacts")  # exists, but grants the workload SA nothing
    broken = vertex_cron(stack, "doctor")

    assert broken.exit_code == 1
    failed = [line for line in broken.stdout.splitlines() if line.startswith("  ✗") or line.startswith("      fix:")]
    assert failed == [
        f"  ✗ adhoc: {elsewhere}: the workload SA lacks storage.buckets.get, storage.objects.create, "
        "storage.objects.delete, storage.objects.get, storage.objects.list there: runs would fail to write",
        "      fix: gcloud storage buckets add-iam-policy-binding gs://vertex-cron-demo-artifacts "
        f"--member=serviceAccount:{stack.workload_sa} --role=projects/{stack.project}/roles/vertexCron_bucket_reader",
        "      fix: gcloud storage buckets add-iam-policy-binding gs://vertex-cron-demo-artifacts "
        f"--member=serviceAccount:{stack.workload_sa} "
        f"--role=projects/{stack.project}/roles/vertexCron_pipeline_root_user --condition='^;^title=pipeline-root;"
        'expression=resource.name.startsWith("projects/_/buckets/vertex-cron-demo-artifacts/objects/pipeline-root/")'
        ' || api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("pipeline-root/")\'',
        "      fix: or redeploy the schedule without --pipeline-root: its runs then write under "
        f"gs://{stack.bucket}/vertex-cron/pipeline-root/{stack.project}/{stack.region}/NAME",
    ]
