"""Deploys end to end: CLI -> API -> real google-cloud-* clients -> the strict emulators.

What a user would notice: the resources that exist afterwards, the calls that were (not)
made, and how a re-run after a failure converges.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from vertex_cron.cli import cli

PROJECT, REGION = "demo-project", "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
SCHEDULER_SA = "vc-scheduler@demo-project.iam.gserviceaccount.com"
ENV = {
    "VERTEX_CRON_PROJECT": PROJECT,
    "VERTEX_CRON_REGION": REGION,
    "VERTEX_CRON_WORKLOAD_SA": "vc-workload@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_FUNCTION_SA": "vc-function@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_SCHEDULER_SA": SCHEDULER_SA,
    "VERTEX_CRON_BUILD_SA": "vc-build@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_POLL_SECONDS": "0.02",
}
FUNCTION = f"{PARENT}/functions/vertex-cron-trigger"
REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def run_cli(emulator_env, spec_bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {**ENV, "VERTEX_CRON_BUCKET": spec_bucket, **emulator_env}

    def run(*args: str, expect: int = 0):
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return run


@pytest.fixture
def clients(emulator_client, storage_emulator, spec_bucket):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import functions_v2, run_v2, scheduler_v1, storage

    class Clients:
        scheduler = emulator_client(scheduler_v1.CloudSchedulerClient)
        functions = emulator_client(functions_v2.FunctionServiceClient)
        run = emulator_client(run_v2.ServicesClient)
        bucket = storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": storage_emulator.url}
        ).bucket(spec_bucket)

        def jobs(self):
            return {job.name.rsplit("/", 1)[-1]: job for job in self.scheduler.list_jobs(parent=PARENT)}

    return Clients()


def deploy(run_cli, spec, *extra, name="nightly", expect=0):
    return run_cli(
        "deploy",
        name,
        "--spec",
        str(spec),
        "--cron",
        "0 3 * * *",
        "--time-zone",
        "Europe/Paris",
        "--param",
        "run_date={{schedule_time:%Y-%m-%d}}",
        *extra,
        expect=expect,
    )


def writes(emulator):
    return [(method, path) for method, path, _ in emulator.calls if method not in ("GET", "HEAD")]


def test_first_deploy_wires_scheduler_to_the_function_and_a_second_makes_no_mutating_call(
    run_cli, emulator, clients, example_json, spec_bucket
):
    deploy(run_cli, example_json)

    function = clients.functions.get_function(name=FUNCTION)
    url = function.service_config.uri
    env = dict(function.service_config.environment_variables)
    assert env["VERTEX_CRON_ALLOWED_INVOKERS"] == SCHEDULER_SA and env["VERTEX_CRON_SPEC_BUCKET"] == spec_bucket
    assert function.labels["managed-by"] == "vertex-cron"
    assert function.build_config.runtime == "python312" and function.build_config.entry_point == "trigger"
    # Explicit, not the platform's 60 s, and within Scheduler's attempt deadline.
    assert function.service_config.timeout_seconds == 180
    assert function.service_config.available_memory == "256M"

    job = clients.jobs()["vertex-cron-nightly"]
    assert job.http_target.uri == f"{url}/"  # as Cloud Scheduler stores it
    assert job.http_target.oidc_token.service_account_email == SCHEDULER_SA
    # One explicit audience on both sides, not Scheduler's default (the stored URI).
    assert job.http_target.oidc_token.audience == url == env["VERTEX_CRON_AUDIENCE"]
    assert job.description == "managed-by=vertex-cron"
    assert job.attempt_deadline.total_seconds() == 240 >= function.service_config.timeout_seconds
    body = json.loads(job.http_target.body)
    (blob,) = list(clients.bucket.client.list_blobs(spec_bucket))
    assert body["spec_uri"] == f"gs://{spec_bucket}/{blob.name}#{blob.generation}"
    assert re.fullmatch(rf"vertex-cron/specs/{PROJECT}/{REGION}/[0-9a-f]{{64}}\.json", blob.name)
    assert blob.metadata == {"managed-by": "vertex-cron", "vertex-cron-location": PARENT}
    assert body["parameter_values"] == {"run_date": "{{schedule_time:%Y-%m-%d}}"}

    policy = clients.run.get_iam_policy(request={"resource": function.service_config.service})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        ("roles/run.invoker", [f"serviceAccount:{SCHEDULER_SA}"])
    ]

    emulator.clear_calls()
    again = deploy(run_cli, example_json)

    assert writes(emulator) == []
    assert again.stdout.startswith("Up to date: nothing to change")


def test_adding_a_second_schedule_does_not_rebuild_or_touch_the_function(run_cli, emulator, clients, example_json):
    deploy(run_cli, example_json)
    emulator.clear_calls()

    deploy(run_cli, example_json, name="hourly")

    assert writes(emulator) == [("POST", f"/v1/{PARENT}/jobs")]
    assert sorted(clients.jobs()) == ["vertex-cron-hourly", "vertex-cron-nightly"]


def test_a_failure_half_way_then_a_rerun_converges_without_duplicates(run_cli, emulator, clients, example_json):
    emulator.faults.add(method="POST", path=rf"/v1/{PARENT}/jobs", status=503, times=1)

    failed = deploy(run_cli, example_json, expect=1)

    # Progress lines come first; the error block starts with the one-line reason.
    error = failed.stderr[failed.stderr.index("error: ") :].splitlines()
    assert error[0].startswith(
        "error: create Scheduler job projects/demo-project/locations/europe-west1/jobs/vertex-cron-nightly"
    )
    assert "re-running is safe" in error[0]
    assert "Traceback" not in failed.output
    assert clients.jobs() == {}
    assert clients.functions.get_function(name=FUNCTION).service_config.uri

    emulator.clear_calls()
    deploy(run_cli, example_json, "--format", "json")

    assert writes(emulator) == [("POST", f"/v1/{PARENT}/jobs")]
    assert list(clients.jobs()) == ["vertex-cron-nightly"]
    assert [f.name for f in clients.functions.list_functions(parent=PARENT)] == [FUNCTION]


def test_a_changed_parameter_patches_only_the_job(run_cli, emulator, clients, example_json):
    deploy(run_cli, example_json)
    emulator.clear_calls()

    result = deploy(run_cli, example_json, "--param", "sample_rows=5")

    assert [method for method, _ in writes(emulator)] == ["PATCH"]
    assert "http_target.body.parameter_values" in result.stdout
    assert json.loads(clients.jobs()["vertex-cron-nightly"].http_target.body)["parameter_values"]["sample_rows"] == 5


def test_dry_run_after_a_deploy_shows_the_differing_fields_and_changes_nothing(run_cli, emulator, example_json):
    deploy(run_cli, example_json)
    emulator.clear_calls()

    result = deploy(run_cli, example_json, "--max-instances", "3", "--dry-run")

    assert writes(emulator) == []
    assert "~ function" in result.stdout and "service_config.max_instance_count: 10 -> 3" in result.stdout
    assert "= job" in result.stdout and "Next runs:" in result.stdout


def test_lifecycle_commands(run_cli, emulator, clients, example_json, spec_bucket):
    deploy(run_cli, example_json)
    deploy(run_cli, example_json, "--param", "sample_rows=7", name="hourly")

    listed = json.loads(run_cli("list", "--format", "json").stdout)
    assert [s["name"] for s in listed] == ["hourly", "nightly"]
    assert listed[0]["cron"] == "0 3 * * *" and listed[0]["time_zone"] == "Europe/Paris"
    assert listed[0]["state"] == "ENABLED"

    assert json.loads(run_cli("pause", "nightly", "--format", "json").stdout)["state"] == "PAUSED"
    assert json.loads(run_cli("describe", "nightly", "--format", "json").stdout)["state"] == "PAUSED"
    assert json.loads(run_cli("resume", "nightly", "--format", "json").stdout)["state"] == "ENABLED"
    run_cli("run", "nightly")
    assert any(path.endswith("vertex-cron-nightly:run") for _, path in writes(emulator))

    missing = run_cli("describe", "weekly", expect=1)
    assert missing.stderr.startswith("error: no schedule named 'weekly' in demo-project/europe-west1")

    run_cli("delete", "hourly", "--purge")
    assert list(clients.jobs()) == ["vertex-cron-nightly"]
    assert len(list(clients.bucket.client.list_blobs(spec_bucket))) == 1  # nightly still uses it

    run_cli("delete", "nightly", "--purge")
    assert clients.jobs() == {}
    assert list(clients.bucket.client.list_blobs(spec_bucket)) == []
    assert list(clients.functions.list_functions(parent=PARENT)) == []


def test_apply_prune_converges_on_the_file(run_cli, emulator, clients, example_json, tmp_path):
    deploy(run_cli, example_json, name="legacy")
    (tmp_path / "pipeline.json").write_bytes(example_json.read_bytes())
    (tmp_path / "schedules.yaml").write_text(
        "defaults:\n  time_zone: Europe/Paris\n  parameters: {run_date: x}\n"
        "schedules:\n"
        "  - {name: nightly, spec: pipeline.json, cron: '0 3 * * *'}\n"
        "  - {name: hourly, spec: pipeline.json, cron: '0 * * * *'}\n"
    )

    dry = run_cli("apply", "-f", "schedules.yaml", "--prune", "--dry-run", "--format", "json")
    assert {
        (c["name"].rsplit("/", 1)[-1], c["action"]) for c in json.loads(dry.stdout)["changes"] if c["kind"] == "job"
    } == {
        ("vertex-cron-nightly", "create"),
        ("vertex-cron-hourly", "create"),
        ("vertex-cron-legacy", "delete"),
    }
    assert sorted(clients.jobs()) == ["vertex-cron-legacy"]

    run_cli("apply", "-f", "schedules.yaml", "--prune")
    assert sorted(clients.jobs()) == ["vertex-cron-hourly", "vertex-cron-nightly"]

    emulator.clear_calls()
    run_cli("apply", "-f", "schedules.yaml", "--prune")
    assert writes(emulator) == []


def test_an_etag_conflict_on_the_invoker_policy_is_retried(run_cli, emulator, clients, example_json):
    emulator.faults.add(method="POST", path=r".*:setIamPolicy", status=409, times=1)

    deploy(run_cli, example_json)

    set_calls = [status for method, path, status in emulator.calls if path.endswith(":setIamPolicy")]
    assert set_calls == [409, 200]
    service = clients.functions.get_function(name=FUNCTION).service_config.service
    policy = clients.run.get_iam_policy(request={"resource": service})
    assert [list(b.members) for b in policy.bindings] == [[f"serviceAccount:{SCHEDULER_SA}"]]


def test_a_changed_function_setting_patches_the_function_without_uploading_source(
    run_cli, emulator, clients, example_json
):
    deploy(run_cli, example_json)
    emulator.clear_calls()

    deploy(run_cli, example_json, "--max-instances", "3")

    assert [(m, p.split("?")[0]) for m, p in writes(emulator)] == [("PATCH", f"/v2/{FUNCTION}")]
    assert clients.functions.get_function(name=FUNCTION).service_config.max_instance_count == 3


def test_the_example_schedules_file_applies_and_reapplies_without_changes(run_cli, emulator, clients):
    example = str(REPO_EXAMPLES / "schedules.yaml")
    run_cli("apply", "-f", example)
    assert sorted(clients.jobs()) == ["vertex-cron-hourly-smoke", "vertex-cron-nightly-training"]
    nightly = json.loads(clients.jobs()["vertex-cron-nightly-training"].http_target.body)
    assert nightly["parameter_values"] == {"run_date": "{{schedule_time:%Y-%m-%d}}", "sample_rows": 5000}
    assert nightly["time_zone"] == "Europe/Paris"

    before = emulator.mutating_calls()
    run_cli("apply", "-f", example)
    assert emulator.mutating_calls() == before


NEW_SCHEDULER_SA = "vc-scheduler-2@demo-project.iam.gserviceaccount.com"


def _invoker_policy(clients):
    service = clients.functions.get_function(name=FUNCTION).service_config.service
    policy = clients.run.get_iam_policy(request={"resource": service})
    return service, {b.role: sorted(b.members) for b in policy.bindings}


def test_rotating_the_scheduler_sa_keeps_only_the_invokers_jobs_still_use(run_cli, emulator, clients, example_json):
    deploy(run_cli, example_json)
    deploy(run_cli, example_json, name="hourly")
    service, _ = _invoker_policy(clients)
    # Granted by hand since: another invoker, and a role vertex-cron does not manage.
    policy = clients.run.get_iam_policy(request={"resource": service})
    policy.bindings[0].members.append("user:someone@example.com")
    policy.bindings.add(role="roles/run.viewer", members=["user:viewer@example.com"])
    clients.run.set_iam_policy(request={"resource": service, "policy": policy})
    old, new = f"serviceAccount:{SCHEDULER_SA}", f"serviceAccount:{NEW_SCHEDULER_SA}"
    emulator.clear_calls()

    dry = deploy(run_cli, example_json, "--scheduler-sa", NEW_SCHEDULER_SA, "--dry-run")

    assert writes(emulator) == []
    # hourly still calls as the old SA, so it stays; the hand-granted invoker goes.
    assert f"roles/run.invoker: remove user:someone@example.com; add {new}" in dry.stdout
    both = ",".join(sorted([SCHEDULER_SA, NEW_SCHEDULER_SA]))
    assert f"VERTEX_CRON_ALLOWED_INVOKERS: {SCHEDULER_SA} -> {both}" in dry.stdout

    deploy(run_cli, example_json, "--scheduler-sa", NEW_SCHEDULER_SA)

    assert _invoker_policy(clients)[1] == {
        "roles/run.invoker": sorted([old, new]),
        "roles/run.viewer": ["user:viewer@example.com"],
    }
    jobs = clients.jobs()
    assert jobs["vertex-cron-nightly"].http_target.oidc_token.service_account_email == NEW_SCHEDULER_SA
    assert jobs["vertex-cron-hourly"].http_target.oidc_token.service_account_email == SCHEDULER_SA
    env = clients.functions.get_function(name=FUNCTION).service_config.environment_variables
    assert env["VERTEX_CRON_ALLOWED_INVOKERS"] == both

    deploy(run_cli, example_json, "--scheduler-sa", NEW_SCHEDULER_SA, name="hourly")  # the last job of the old SA

    assert _invoker_policy(clients)[1] == {"roles/run.invoker": [new], "roles/run.viewer": ["user:viewer@example.com"]}
    env = clients.functions.get_function(name=FUNCTION).service_config.environment_variables
    assert env["VERTEX_CRON_ALLOWED_INVOKERS"] == NEW_SCHEDULER_SA
    emulator.clear_calls()
    assert deploy(run_cli, example_json, "--scheduler-sa", NEW_SCHEDULER_SA).stdout.startswith("Up to date")
    assert writes(emulator) == []


def test_purge_deletes_only_this_regions_specs_from_a_bucket_regions_share(run_cli, clients, example_json, spec_bucket):
    other_region = "us-central1"
    deploy(run_cli, example_json)
    deploy(run_cli, example_json, "--region", other_region)
    # Objects vertex-cron must leave alone: one uploaded by hand under this region's folder,
    # and one written by an older vertex-cron (no metadata) that a schedule may still pin.
    clients.bucket.blob(f"vertex-cron/specs/{PROJECT}/{REGION}/by-hand.json").upload_from_string(b"{}")
    clients.bucket.blob(f"vertex-cron/specs/{'0' * 64}.json").upload_from_string(b"{}")
    ours, theirs = (
        next(
            b.name
            for b in clients.bucket.client.list_blobs(spec_bucket, prefix=f"vertex-cron/specs/{PROJECT}/{r}/")
            if b.metadata
        )
        for r in (REGION, other_region)
    )
    assert ours != theirs  # same spec, one object per region

    dry = run_cli("delete", "nightly", "--purge", "--dry-run", "--format", "json")
    assert [c["name"] for c in json.loads(dry.stdout)["changes"] if c["kind"] == "spec"] == [ours]

    run_cli("delete", "nightly", "--purge")

    left = sorted(b.name for b in clients.bucket.client.list_blobs(spec_bucket))
    assert left == sorted(
        [theirs, f"vertex-cron/specs/{PROJECT}/{REGION}/by-hand.json", f"vertex-cron/specs/{'0' * 64}.json"]
    )
    other_job = clients.scheduler.get_job(name=f"projects/{PROJECT}/locations/{other_region}/jobs/vertex-cron-nightly")
    assert json.loads(other_job.http_target.body)["spec_uri"].startswith(f"gs://{spec_bucket}/{theirs}#")


def test_a_delete_that_failed_on_the_function_can_be_rerun_and_removes_it(
    run_cli, emulator, clients, example_json, spec_bucket
):
    deploy(run_cli, example_json)
    emulator.faults.add(method="DELETE", path=rf"/v2/{FUNCTION}", status=500, times=1)

    failed = run_cli("delete", "nightly", "--purge", expect=1)
    assert "re-running is safe" in failed.stderr
    assert clients.jobs() == {}
    assert [f.name for f in clients.functions.list_functions(parent=PARENT)] == [FUNCTION]

    rerun = run_cli("delete", "nightly", "--purge", "--format", "json")

    assert [(c["kind"], c["action"]) for c in json.loads(rerun.stdout)["changes"]] == [("function", "delete")]
    assert list(clients.functions.list_functions(parent=PARENT)) == []
    assert list(clients.bucket.client.list_blobs(spec_bucket)) == []
    gone = run_cli("delete", "nightly", "--purge", expect=1)
    assert gone.stderr.startswith("error: no schedule named 'nightly' in demo-project/europe-west1")


def test_a_name_given_twice_is_deleted_once_and_a_typo_deletes_nothing(run_cli, emulator, clients, example_json):
    deploy(run_cli, example_json)
    deploy(run_cli, example_json, name="hourly")

    typo = run_cli("delete", "hourly", "hourlt", expect=1)
    assert typo.stderr.startswith("error: no schedule named 'hourlt'")
    assert sorted(clients.jobs()) == ["vertex-cron-hourly", "vertex-cron-nightly"]

    plan = json.loads(run_cli("delete", "hourly", "hourly", "--format", "json").stdout)
    assert [(c["kind"], c["name"].rsplit("/", 1)[-1]) for c in plan["changes"]] == [("job", "vertex-cron-hourly")]
    assert list(clients.jobs()) == ["vertex-cron-nightly"]


def test_pause_resume_run_and_describe_leave_a_job_vertex_cron_did_not_create_alone(run_cli, emulator, clients):
    from google.cloud import scheduler_v1

    clients.scheduler.create_job(
        parent=PARENT,
        job=scheduler_v1.Job(
            name=f"{PARENT}/jobs/vertex-cron-theirs",
            schedule="0 3 * * *",
            time_zone="UTC",
            http_target=scheduler_v1.HttpTarget(uri="https://example.com/hook"),
        ),
    )
    emulator.clear_calls()

    for command in ("pause", "resume", "run", "describe"):
        result = run_cli(command, "theirs", expect=1)
        assert result.stderr.startswith(
            "error: no schedule named 'theirs' in demo-project/europe-west1: the Scheduler job vertex-cron-theirs "
            "there is not managed by vertex-cron"
        ), command
    assert writes(emulator) == []
    assert clients.jobs()["vertex-cron-theirs"].state == scheduler_v1.Job.State.ENABLED


# -- against servers that store fields in their own normal form (docs/fidelity.md) ----------


def test_a_no_op_apply_of_50_schedules_makes_no_mutating_call(run_cli, emulator, clients, example_json, tmp_path):
    (tmp_path / "pipeline.json").write_bytes(example_json.read_bytes())
    entries = "".join(
        f"  - {{name: s{n:02d}, spec: pipeline.json, cron: '{n} 3 * * *', time_zone: Europe/Paris,"
        f" parameters: {{run_date: '{{{{schedule_time:%Y-%m-%d}}}}', sample_rows: {n}}}}}\n"
        for n in range(50)
    )
    (tmp_path / "schedules.yaml").write_text(f"schedules:\n{entries}")
    run_cli("apply", "-f", "schedules.yaml")
    assert len(clients.jobs()) == 50
    assert all(job.http_target.uri.endswith(".run.app/") for job in clients.jobs().values())  # stored with a /
    emulator.clear_calls()

    again = run_cli("apply", "-f", "schedules.yaml")

    assert emulator.mutating_calls() == 0
    assert again.stdout.startswith("Up to date: nothing to change")


def test_deleting_one_of_two_schedules_keeps_the_function_the_other_calls(run_cli, emulator, clients, example_json):
    deploy(run_cli, example_json)
    deploy(run_cli, example_json, name="weekly")
    service, before = _invoker_policy(clients)

    result = run_cli("delete", "nightly", "--format", "json")

    assert [(c["kind"], c["action"]) for c in json.loads(result.stdout)["changes"]] == [("job", "delete")]
    assert list(clients.jobs()) == ["vertex-cron-weekly"]
    assert [f.name for f in clients.functions.list_functions(parent=PARENT)] == [FUNCTION]
    assert _invoker_policy(clients) == (service, before)


def test_a_first_deploy_uploads_the_source_once_then_gives_the_function_its_url_as_audience(
    run_cli, emulator, clients, example_json
):
    deploy(run_cli, example_json)

    function_writes = [m for m, p in writes(emulator) if "/functions" in p or "gcf-v2-uploads" in p]
    # generateUploadUrl, the zip, create; then, its URL known, the environment update.
    assert function_writes == ["POST", "PUT", "POST", "PATCH"]
    function = clients.functions.get_function(name=FUNCTION)
    job = clients.jobs()["vertex-cron-nightly"]
    assert function.service_config.environment_variables["VERTEX_CRON_AUDIENCE"] == job.http_target.oidc_token.audience
    assert function.service_config.uri == job.http_target.oidc_token.audience


@pytest.fixture
def local_stack(tmp_path, monkeypatch):
    from vertex_cron_local.stack import LocalStack

    monkeypatch.chdir(tmp_path)  # no vertex-cron.toml of this checkout applies
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "VERTEX_CRON_PROJECT", "VERTEX_CRON_BUILD_SA"):
        monkeypatch.delenv(name, raising=False)
    # Retry backoffs pass 60 times faster; the jobs fire once a year, so only when delivered.
    with LocalStack(time_scale=60) as stack:
        yield stack


def test_after_a_scheduler_sa_rotation_jobs_still_on_the_old_sa_keep_firing(local_stack, example_json):
    from datetime import UTC, datetime

    stack = local_stack
    serve = stack.emulator.on_function_deployed
    # A URL of Cloud Run's form, with an empty path (the local runner's ends in "/").
    stack.emulator.on_function_deployed = lambda function, source: serve(function, source).rstrip("/")
    new_sa = f"vc-scheduler-2@{stack.project}.iam.gserviceaccount.com"
    env = {**stack.settings_env(), "VERTEX_CRON_POLL_SECONDS": "0.05"}

    def vertex_cron(*args):
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output

    for name in ("nightly", "weekly"):
        vertex_cron("deploy", name, "--spec", str(example_json), "--cron", "0 3 1 1 *", "--param", "run_date=x")
    vertex_cron("deploy", "weekly", "--spec", str(example_json), "--cron", "0 3 1 1 *", "--param", "run_date=x",
                "--scheduler-sa", new_sa)  # fmt: skip

    for name, email in (("nightly", stack.scheduler_sa), ("weekly", new_sa)):
        (job,) = [j for j in stack.emulator.scheduler_jobs() if j["name"].endswith(f"/vertex-cron-{name}")]
        assert job["httpTarget"]["oidcToken"]["serviceAccountEmail"] == email
        firing = stack.scheduler.deliver(job["name"], datetime(2026, 1, 1, 3, tzinfo=UTC))
        assert [a.status_code for a in firing.attempts] == [200], (name, firing.final.body)
