"""`vertex-cron doctor` against the emulators: a project set up as infra/ sets it up passes;
each way of breaking it gives one exact ✗ line with its fix, and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from doctor_project import PROJECT, REGION, SA, member
from vertex_cron.permissions import Scope

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline.json"


def failures(result) -> list[str]:
    """The ✗ lines with the fix lines under each."""
    lines, keep = [], False
    for line in result.stdout.splitlines():
        if line.startswith("  "):
            keep = line.startswith("  ✗") or (keep and line.startswith("      "))
            if keep:
                lines.append(line)
    return lines


def test_a_project_set_up_like_infra_passes_and_says_what_it_could_not_evaluate(setup_project, doctor_cli, spec_bucket):
    setup_project()
    result = doctor_cli("doctor")

    assert result.exit_code == 0, result.output
    assert "✗" not in result.stdout
    assert "  ✓ run.googleapis.com enabled" in result.stdout
    assert f"  ✓ workload SA {SA['workload']} exists" in result.stdout
    assert (
        f"  – on gs://{spec_bucket}/vertex-cron/specs/: storage.objects.create, storage.objects.delete, "
        "storage.objects.get, storage.objects.list not confirmed: testIamPermissions cannot evaluate "
        "grants conditioned on an object prefix (infra grants them that way)"
    ) in result.stdout
    assert f"  ✓ on gs://{spec_bucket}/vertex-cron/specs/: conditional (not evaluated): spec-prefix" in result.stdout
    assert "  – vertex-cron-trigger: not deployed yet: the first `vertex-cron deploy` creates it" in result.stdout


def test_json_lists_every_check_with_its_status(setup_project, doctor_cli):
    setup_project(disabled_apis=["cloudscheduler.googleapis.com"])
    result = doctor_cli("doctor", "--format", "json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["failed"] == 1
    (failed,) = [c for c in report["checks"] if c["status"] == "fail"]
    assert failed == {
        "section": "APIs",
        "check": "cloudscheduler.googleapis.com enabled",
        "status": "fail",
        "detail": "disabled; needed because the schedules are Cloud Scheduler jobs",
        "fix": [
            "gcloud services enable cloudscheduler.googleapis.com --project=demo-project",
            "terraform: google_project_service.required (infra/apis.tf)",
        ],
    }
    assert result.stderr.strip().startswith("error: 1 of ")


def test_a_disabled_api(setup_project, doctor_cli):
    setup_project(disabled_apis=["run.googleapis.com"])
    result = doctor_cli("doctor")

    assert result.exit_code == 1
    assert failures(result) == [
        "  ✗ run.googleapis.com enabled: disabled; needed because the function runs on Cloud Run; "
        "its invoker IAM lives there",
        "      fix: gcloud services enable run.googleapis.com --project=demo-project",
        "      fix: terraform: google_project_service.required (infra/apis.tf)",
    ]


def test_a_missing_service_account(setup_project, doctor_cli):
    setup_project(missing_sas=["workload"])
    result = doctor_cli("doctor")

    assert result.exit_code == 1
    assert failures(result) == [
        f"  ✗ workload SA {SA['workload']} exists: no such service account",
        "      fix: gcloud iam service-accounts create vertex-cron-workload --project=demo-project",
        '      fix: terraform: google_service_account.vertex_cron["workload"] (infra/service_accounts.tf)',
    ]


def test_a_misspelt_service_account_is_pointed_at_the_existing_one_not_created(setup_project, doctor_cli):
    setup_project()
    misspelt = SA["workload"].replace("vertex-cron-workload", "vertex-cron-wrkload")
    result = doctor_cli("doctor", VERTEX_CRON_WORKLOAD_SA=misspelt)

    assert result.exit_code == 1
    assert failures(result) == [
        f"  ✗ workload SA {misspelt} exists: does not exist; did you mean {SA['workload']}?",
        f"      fix: set workload_sa to {SA['workload']}",
    ]
    assert "service-accounts create" not in result.stdout
    # Nor granted anything: its grants are not checked, so no fix names the typo.
    assert f"serviceAccount:{misspelt}" not in result.stdout
    assert f"  – {misspelt}: not checked: no such service account; did you mean {SA['workload']}?" in result.stdout


def test_a_missing_binding_of_the_function_sa(setup_project, doctor_cli):
    setup_project(missing_grants=[("function", Scope.PROJECT)])
    result = doctor_cli("doctor")

    assert result.exit_code == 1
    assert failures(result) == [
        "  ✗ on project demo-project: missing aiplatform.metadataStores.get, aiplatform.pipelineJobs.create, "
        "aiplatform.pipelineJobs.get, aiplatform.pipelineJobs.list, cloudscheduler.jobs.fullView, "
        "cloudscheduler.jobs.list",
        f"      fix: gcloud projects add-iam-policy-binding demo-project --member={member('function')} "
        "--role=projects/demo-project/roles/vertexCron_trigger",
        "      fix: terraform: google_project_iam_member.function (infra/iam.tf)",
    ]


def test_a_missing_act_as_of_the_function_sa_on_the_workload_sa(setup_project, doctor_cli):
    setup_project(missing_grants=[("function", Scope.WORKLOAD_SA)])
    result = doctor_cli("doctor")

    assert failures(result) == [
        "  ✗ act as the workload SA: missing iam.serviceAccounts.actAs",
        f"      fix: gcloud iam service-accounts add-iam-policy-binding {SA['workload']} --project=demo-project "
        f"--member={member('function')} --role=projects/demo-project/roles/vertexCron_act_as",
        "      fix: terraform: google_service_account_iam_member.function_acts_as_workload (infra/iam.tf)",
    ]


def test_a_missing_prefix_grant_names_its_condition(setup_project, doctor_cli, spec_bucket):
    setup_project(missing_grants=[("workload", Scope.PIPELINE_ROOT)])
    result = doctor_cli("doctor")

    prefix = "vertex-cron/pipeline-root/"
    assert failures(result) == [
        f"  ✗ on gs://{spec_bucket}/{prefix}: missing storage.objects.create, storage.objects.delete, "
        "storage.objects.get, storage.objects.list",
        f"      fix: gcloud storage buckets add-iam-policy-binding gs://{spec_bucket} --member={member('workload')} "
        "--role=projects/demo-project/roles/vertexCron_pipeline_root_user "
        f"--condition='^;^title=pipeline-root;expression=resource.name.startsWith(\"projects/_/buckets/{spec_bucket}"
        f'/objects/{prefix}") || api.getAttribute("storage.googleapis.com/objectListPrefix", "")'
        f'.startsWith("{prefix}")\'',
        "      fix: terraform: google_storage_bucket_iam_member.workload_pipeline_root (infra/iam.tf)",
    ]


def test_a_missing_sweep_watermark_grant_of_the_function_sa(setup_project, doctor_cli, spec_bucket):
    setup_project(missing_grants=[("function", Scope.SWEEP_PREFIX)])
    result = doctor_cli("doctor")

    prefix = "vertex-cron/sweep/"
    assert result.exit_code == 1
    assert failures(result) == [
        f"  ✗ on gs://{spec_bucket}/{prefix}: missing storage.objects.create, storage.objects.delete, "
        "storage.objects.get",
        f"      fix: gcloud storage buckets add-iam-policy-binding gs://{spec_bucket} --member={member('function')} "
        "--role=projects/demo-project/roles/vertexCron_object_writer "
        f"--condition='^;^title=sweep-prefix;expression=resource.name.startsWith(\"projects/_/buckets/{spec_bucket}"
        f"/objects/{prefix}\")'",
        "      fix: terraform: google_storage_bucket_iam_member.function_sweep (infra/iam.tf)",
    ]


def test_the_caller_cannot_act_as_the_scheduler_sa(setup_project, doctor_cli):
    setup_project(caller_lacks=[(Scope.SCHEDULER_SA, "iam.serviceAccounts.actAs")])
    result = doctor_cli("doctor")

    assert result.exit_code == 1
    assert failures(result) == [
        "  ✗ act as the scheduler SA: missing iam.serviceAccounts.actAs",
        f"      fix: gcloud iam service-accounts add-iam-policy-binding {SA['scheduler']} --project=demo-project "
        "--member=DEPLOYER --role=projects/demo-project/roles/vertexCron_scheduler_caller",
        "      fix: terraform: google_service_account_iam_member.deployer_calls_as_scheduler (infra/iam.tf)",
    ]
    assert "DEPLOYER = you: user:EMAIL, group:EMAIL or serviceAccount:EMAIL" in result.stdout


def test_the_compute_default_service_account_as_an_identity(setup_project, doctor_cli):
    setup_project()
    default = "123456789012-compute@developer.gserviceaccount.com"
    result = doctor_cli("doctor", "--workload-sa", default)

    assert result.exit_code == 1
    assert failures(result)[:3] == [
        f"  ✗ workload SA {default}: refusing the default service account {default} as the workload SA",
        "      fix: set workload_sa to vertex-cron's own (`terraform output -raw workload_sa`)",
        '      fix: terraform: google_service_account.vertex_cron["workload"] (infra/service_accounts.tf)',
    ]


def test_an_unset_build_sa_fails_unless_the_default_build_sa_is_allowed(setup_project, doctor_cli):
    setup_project()
    unset = doctor_cli("doctor", VERTEX_CRON_BUILD_SA="")
    allowed = doctor_cli("doctor", "--allow-default-service-account", VERTEX_CRON_BUILD_SA="")

    assert unset.exit_code == 1
    assert failures(unset) == [
        "  ✗ build SA: not set: Cloud Build runs as the project's default build service account (usually the "
        "Compute Engine default, with broad grants); --allow-default-service-account would accept that",
        "      fix: set build_sa to vertex-cron's own (`terraform output -raw build_sa`)",
        '      fix: terraform: google_service_account.vertex_cron["build"] (infra/service_accounts.tf)',
    ]
    assert allowed.exit_code == 0, allowed.output
    assert (
        "  – build SA: not set: Cloud Build runs as the project's default build service account (usually the "
        "Compute Engine default, with broad grants); accepted by --allow-default-service-account"
    ) in allowed.stdout


def test_a_basic_role_is_excess(setup_project, doctor_cli):
    setup_project(extra_project_bindings=[{"role": "roles/editor", "members": [member("scheduler")]}])
    result = doctor_cli("doctor")

    assert result.exit_code == 1
    assert failures(result) == [
        "  ✗ no basic role on project demo-project: holds roles/editor: far more than vertex-cron needs",
        f"      fix: gcloud projects remove-iam-policy-binding demo-project --member={member('scheduler')} "
        "--role=roles/editor",
    ]


def test_an_unreadable_policy_is_a_failure_not_a_traceback(setup_project, doctor_cli, emulator):
    setup_project()
    rule = emulator.faults.add_json(
        {
            "method": "POST",
            "path": f"/v3/projects/{PROJECT}:getIamPolicy",
            "status": 403,
            "message": "Permission 'resourcemanager.projects.getIamPolicy' denied",
            "times": 10,
        }
    )
    result = doctor_cli("doctor")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert failures(result)[:3] == [
        f"  ✗ IAM policies readable: could not check: read the IAM policy of project {PROJECT}: permission denied",
        f"      fix: gcloud projects add-iam-policy-binding {PROJECT} --member=DEPLOYER "
        f"--role=projects/{PROJECT}/roles/vertexCron_deployer",
        "      fix: terraform: google_project_iam_member.deployer (infra/iam.tf)",
    ]
    assert rule.hits == 1, "the failed read is not repeated for each identity"


@pytest.fixture
def deployed(setup_project, doctor_cli):
    setup_project()
    result = doctor_cli("deploy", "nightly", "--spec", str(EXAMPLE), "--cron", "0 3 * * *", "--param", "run_date=x")
    assert result.exit_code == 0, result.output


def test_a_deployed_function_runs_as_the_function_sa_and_only_the_scheduler_may_invoke_it(
    deployed, doctor_cli, monkeypatch
):
    from vertex_cron import function_source

    def no_zip() -> None:
        raise AssertionError("doctor must not build the function zip to learn the function's environment")

    monkeypatch.setattr(function_source, "build", no_zip)
    result = doctor_cli("doctor")

    assert result.exit_code == 0, result.output
    assert f"  ✓ runs as the function SA {SA['function']}" in result.stdout
    assert "  ✓ environment matches the settings" in result.stdout
    assert "  ✓ not public (no allUsers/allAuthenticatedUsers invoker)" in result.stdout
    assert "  ✓ scheduler SA may invoke it (roles/run.invoker)" in result.stdout


def test_a_public_function_and_a_changed_setting(deployed, doctor_cli, emulator_client):
    from google.cloud import run_v2

    run = emulator_client(run_v2.ServicesClient)
    service = f"projects/{PROJECT}/locations/{REGION}/services/vertex-cron-trigger"
    policy = run.get_iam_policy(request={"resource": service})
    policy.bindings.add(role="roles/run.invoker", members=["allUsers"])
    run.set_iam_policy(request={"resource": service, "policy": policy})

    result = doctor_cli("doctor", "--workload-sa", f"other-workload@{PROJECT}.iam.gserviceaccount.com")

    assert result.exit_code == 1
    lines = failures(result)
    assert [
        "  ✗ environment matches the settings: differs: VERTEX_CRON_WORKLOAD_SA",
        "      fix: vertex-cron deploy NAME ... (any schedule) converges the function on the settings",
        "  ✗ not public (no allUsers/allAuthenticatedUsers invoker): allUsers may invoke it",
        f"      fix: gcloud run services remove-iam-policy-binding vertex-cron-trigger --region={REGION} "
        f"--project={PROJECT} --member=allUsers --role=roles/run.invoker",
    ] == lines[-4:]


def test_the_emulator_is_strict_about_the_new_apis(emulator):
    import requests

    typo = requests.post(
        f"{emulator.url}/v3/projects/{PROJECT}:testIamPermissions",
        json={"permission": ["run.services.get"]},
        timeout=10,
    )
    assert typo.status_code == 400 and typo.json()["error"]["status"] == "INVALID_ARGUMENT"
    filtered = requests.get(f"{emulator.url}/v1/projects/{PROJECT}/services", params={"filter": "state:ON"}, timeout=10)
    assert filtered.status_code == 400
    missing = requests.get(f"{emulator.url}/v1/projects/{PROJECT}/serviceAccounts/{SA['build']}", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_a_scheduler_sa_rotation_in_progress_is_not_a_differing_environment(setup_project, doctor_cli):
    """A job still on the old scheduler SA keeps it on the function's allowlist next to the
    configured one until that job is redeployed; doctor must not call that drift."""
    setup_project()
    old_sa = f"old-scheduler@{PROJECT}.iam.gserviceaccount.com"
    spec_args = ("--spec", str(EXAMPLE), "--cron", "0 3 * * *", "--param", "run_date=x")
    assert doctor_cli("deploy", "nightly", *spec_args, "--scheduler-sa", old_sa).exit_code == 0
    assert doctor_cli("deploy", "hourly", *spec_args).exit_code == 0

    result = doctor_cli("doctor")

    assert "  ✓ environment matches the settings" in result.stdout, result.output


def test_a_service_that_checks_no_invoker_is_flagged_by_doctor_and_refused_by_deploy(deployed, doctor_cli, emulator):
    # What `gcloud run services update vertex-cron-trigger --no-invoker-iam-check` leaves.
    emulator.set_invoker_iam_disabled(f"projects/{PROJECT}/locations/{REGION}/services/vertex-cron-trigger", True)
    doctor = doctor_cli("doctor")
    before = emulator.mutating_calls()  # doctor's reads include POSTs (testIamPermissions)
    deploy = doctor_cli("deploy", "nightly", "--spec", str(EXAMPLE), "--cron", "0 4 * * *", "--param", "run_date=x")

    fix = f"gcloud run services update vertex-cron-trigger --invoker-iam-check --region={REGION} --project={PROJECT}"
    assert failures(doctor) == [
        "  ✗ Cloud Run checks who invokes it (invoker IAM check on): disabled: anyone can send a token and start "
        "runs as the workload SA",
        f"      fix: {fix}",
    ]
    assert deploy.exit_code == 1
    assert deploy.stderr.splitlines() == [
        "error: Cloud Run does not check who may invoke vertex-cron-trigger (invoker IAM check disabled): anyone "
        "could start pipeline runs through it",
        f"turn the check back on, then re-run: {fix}",
    ]
    assert emulator.mutating_calls() == before, "the refused deploy changed nothing"

    emulator.set_invoker_iam_disabled(f"projects/{PROJECT}/locations/{REGION}/services/vertex-cron-trigger", False)
    assert doctor_cli("doctor").exit_code == 0


def test_a_pipeline_root_granted_by_a_predefined_role_on_its_bucket_passes(
    setup_project, doctor_cli, emulator, storage_emulator
):
    """Google's setup for a pipeline bucket (roles/storage.objectUser on the bucket) lacks
    storage.buckets.get, which the documented minimum includes; with a bucket reader too it passes."""
    setup_project()
    storage_emulator.create_bucket("team-artifacts")
    emulator.put_role(
        "roles/storage.objectUser",
        ["storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list"],
    )
    workload = member("workload")
    storage_emulator.bucket_policies["team-artifacts"] = [{"role": "roles/storage.objectUser", "members": [workload]}]
    spec_args = ("--spec", str(EXAMPLE), "--cron", "0 3 * * *", "--param", "run_date=x")
    assert doctor_cli("deploy", "nightly", *spec_args, "--pipeline-root", "gs://team-artifacts/runs").exit_code == 0

    lacking = doctor_cli("doctor")
    storage_emulator.bucket_policies["team-artifacts"].append(
        {"role": f"projects/{PROJECT}/roles/vertexCron_bucket_reader", "members": [workload]}
    )
    granted = doctor_cli("doctor")

    assert failures(lacking)[0] == (
        "  ✗ nightly: gs://team-artifacts/runs: the workload SA lacks storage.buckets.get there: runs would fail to write"
    )
    assert granted.exit_code == 0, granted.output
    assert "  ✓ nightly: gs://team-artifacts/runs" in granted.stdout


def test_the_next_deploy_closes_a_public_function_that_doctor_flagged(deployed, doctor_cli, emulator_client):
    from google.cloud import run_v2

    run = emulator_client(run_v2.ServicesClient)
    service = f"projects/{PROJECT}/locations/{REGION}/services/vertex-cron-trigger"
    policy = run.get_iam_policy(request={"resource": service})
    policy.bindings.add(role="roles/run.invoker", members=["allUsers", "allAuthenticatedUsers"])
    run.set_iam_policy(request={"resource": service, "policy": policy})
    flagged = doctor_cli("doctor")

    redeployed = doctor_cli("deploy", "nightly", "--spec", str(EXAMPLE), "--cron", "0 3 * * *", "--param", "run_date=x")

    assert (
        "  ✗ not public (no allUsers/allAuthenticatedUsers invoker): allAuthenticatedUsers, allUsers may invoke it"
        in (flagged.stdout)
    )
    assert redeployed.exit_code == 0, redeployed.output
    invokers = {m for b in run.get_iam_policy(request={"resource": service}).bindings for m in b.members}
    assert invokers == {f"serviceAccount:{SA['scheduler']}"}
    assert doctor_cli("doctor").exit_code == 0


def test_the_repositories_specs_are_published_to_are_a_note_with_their_grant(setup_project, doctor_cli):
    # Only the schedules' --spec URIs name them: doctor says what to grant, deploy checks it.
    setup_project()
    report = json.loads(doctor_cli("doctor", "--format", "json").stdout)
    notes = [c for c in report["checks"] if c["check"].startswith("on the Artifact Registry repositories")]
    assert {c["section"].split(" ")[0] for c in notes} == {"Your", "workload"}
    for note in notes:
        assert note["status"] == "note" and "--spec URIs" in note["detail"]
        command, terraform = note["fix"]
        assert command.startswith("gcloud artifacts repositories add-iam-policy-binding REPOSITORY --location=")
        assert command.endswith("--role=projects/demo-project/roles/vertexCron_template_reader")
        assert terraform.endswith("_templates (infra/iam.tf)")
