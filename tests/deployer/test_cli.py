"""The CLI end to end through the real client libraries, against the local emulators:
refusals, dry runs and the read commands."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from vertex_cron.cli import cli

DEMO_ENV = {
    "VERTEX_CRON_PROJECT": "demo-project",
    "VERTEX_CRON_REGION": "europe-west1",
    "VERTEX_CRON_WORKLOAD_SA": "vc-workload@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_FUNCTION_SA": "vc-function@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_SCHEDULER_SA": "vc-scheduler@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_BUILD_SA": "vc-build@demo-project.iam.gserviceaccount.com",
    "VERTEX_CRON_POLL_SECONDS": "0.02",
}


@pytest.fixture
def run_cli(emulator_env, spec_bucket, tmp_path, monkeypatch):
    """Run `vertex-cron ARGS` in an empty directory against the emulators."""
    monkeypatch.chdir(tmp_path)
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    env = {**DEMO_ENV, "VERTEX_CRON_BUCKET": spec_bucket, **emulator_env}

    def run(*args: str, **extra_env: str):
        return CliRunner().invoke(cli, list(args), env={**run.env, **extra_env}, catch_exceptions=False)

    run.env = env  # tests may remove variables
    return run


def _deploy_args(spec, *extra):
    return ("deploy", "nightly", "--spec", str(spec), "--cron", "0 3 * * *", "--param", "run_date=x", *extra)


@pytest.mark.parametrize(
    ("extra", "env", "reason"),
    [
        (
            (),
            {"VERTEX_CRON_WORKLOAD_SA": "123456789-compute@developer.gserviceaccount.com"},
            "refusing the default service account 123456789-compute@developer.gserviceaccount.com as the workload SA",
        ),
        (("--scheduler-sa", "scheduler@example.com"), {}, "malformed scheduler SA email"),
        (("--time-zone", "Mars/Olympus"), {}, "time zone 'Mars/Olympus' is not a time zone of the tz database"),
        (("--cron", "0 3 * *"), {}, "invalid cron expression"),
        (("--cron", "0 3 31 2 *"), {}, "cron expression '0 3 31 2 *' never fires"),
        (("--cron", "0 3 L * *"), {}, "invalid cron expression '0 3 L * *'"),
        (("--cron", "0 3 * * 1#2"), {}, "invalid cron expression '0 3 * * 1#2'"),
        (("--time-zone", "localtime"), {}, "time zone 'localtime' is not a time zone of the tz database"),
        (("--time-zone", "right/UTC"), {}, "time zone 'right/UTC' is not a time zone of the tz database"),
        (
            ("--param", "nope=1"),
            {},
            "schedule nightly: parameter nope: pipeline 'nightly-training' has no such parameter",
        ),
        (("--param", "sample_rows=lots"), {}, "sample_rows must be an integer"),
        ((), {"VERTEX_CRON_REGION": ""}, "missing region: pass --region"),
        ((), {"VERTEX_CRON_BUILD_SA": ""}, "no build SA: the function would be built as the project's default"),
        (
            ("--build-sa", ""),
            {"VERTEX_CRON_BUILD_SA": ""},
            "no build SA: the function would be built as the project's default",
        ),
        (("--param", "run_date=y"), {}, "--param run_date given twice"),
    ],
)
def test_refusals_exit_2_with_the_reason_first_and_touch_nothing(run_cli, emulator, example_json, extra, env, reason):
    result = run_cli(*_deploy_args(example_json, *extra), **env)

    assert result.exit_code == 2, result.output
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("error: ") and reason in first_line
    assert "Traceback" not in result.output
    assert emulator.calls == []


def test_a_bad_schedule_name_is_a_usage_error(run_cli, emulator, example_json):
    result = run_cli("deploy", "Nightly_1", "--spec", str(example_json), "--cron", "0 3 * * *")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid schedule name 'Nightly_1'")
    assert emulator.calls == []


def test_click_usage_errors_also_put_the_reason_first(run_cli, emulator):
    result = run_cli("deploy", "nightly", "--cron", "0 3 * * *")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: Missing option '--spec'."


def test_default_service_account_is_accepted_when_explicitly_allowed_in_a_dry_run(run_cli, emulator, example_json):
    result = run_cli(
        *_deploy_args(example_json, "--dry-run", "--allow-default-service-account"),
        VERTEX_CRON_WORKLOAD_SA="123456789-compute@developer.gserviceaccount.com",
    )
    assert result.exit_code == 0, result.output
    assert emulator.mutating_calls() == 0


def test_dry_run_on_an_empty_project_plans_everything_and_changes_nothing(
    run_cli, emulator, example_json, storage_emulator, spec_bucket
):
    result = run_cli(*_deploy_args(example_json, "--dry-run", "--format", "json"))

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["applied"] is False
    assert [(c["kind"], c["action"]) for c in plan["changes"]] == [
        ("spec", "create"),
        ("function", "create"),
        ("function", "update"),  # its URL as its audience, once it has one
        ("invoker", "create"),
        ("job", "create"),
    ]
    assert len(plan["next_runs"]["nightly"]) == 3
    assert emulator.mutating_calls() == 0
    assert all(method == "GET" for method, _, _ in emulator.calls)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="demo-project",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": storage_emulator.url},
    )
    assert list(client.list_blobs(spec_bucket)) == []


def test_history_lists_the_schedules_pipeline_runs_newest_first_with_console_links(
    run_cli, emulator, emulator_client, example_json
):
    from google.cloud import aiplatform_v1

    pipelines = emulator_client(aiplatform_v1.PipelineServiceClient)
    parent = "projects/demo-project/locations/europe-west1"
    spec = json.loads(example_json.read_text())
    for job_id, schedule in (
        ("nightly-20240101-030000", "nightly"),
        ("other-20240101-030000", "other"),
        ("nightly-20240102-030000", "nightly"),
    ):
        pipelines.create_pipeline_job(
            parent=parent,
            pipeline_job_id=job_id,
            pipeline_job={
                "pipeline_spec": spec,
                "labels": {"vertex-cron-schedule": schedule},
                "runtime_config": {"gcs_output_directory": "gs://b/root", "parameter_values": {"run_date": "x"}},
            },
        )
        emulator.clock = (lambda t: lambda: t)(emulator.clock() + 5)

    text = run_cli("history", "nightly")
    data = run_cli("history", "nightly", "--format", "json")

    assert text.exit_code == 0 and data.exit_code == 0, text.output + data.output
    runs = json.loads(data.stdout)
    assert [r["name"] for r in runs] == ["nightly-20240102-030000", "nightly-20240101-030000"]
    assert runs[0]["console_url"] == (
        "https://console.cloud.google.com/vertex-ai/locations/europe-west1/pipelines/runs/"
        "nightly-20240102-030000?project=demo-project"
    )
    assert set(runs[0]) == {"name", "state", "create_time", "start_time", "end_time", "duration_seconds", "console_url"}
    assert text.stdout.splitlines()[0].split() == ["RUN", "STATE", "STARTED", "DURATION", "LINK"]
    assert "nightly-20240102-030000" in text.stdout.splitlines()[1]


# -- settings that end up in resource names: checked before any call, whichever source they come from --


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        (("--project", "a/b"), {}, "invalid project ID 'a/b' (from --project)"),
        ((), {"VERTEX_CRON_PROJECT": "My Project"}, "invalid project ID 'My Project' (from VERTEX_CRON_PROJECT)"),
        (("--project", "abc"), {}, "invalid project ID 'abc'"),  # 6-30 characters
        (("--project", "my-project-"), {}, "invalid project ID 'my-project-'"),
        (("--project", "123456789012"), {}, "invalid project ID '123456789012'"),  # a number, not the ID
        (("--region", "europe-west1-b"), {}, "invalid region 'europe-west1-b' (from --region)"),
        ((), {"VERTEX_CRON_REGION": "EU"}, "invalid region 'EU' (from VERTEX_CRON_REGION)"),
        (
            ("--bucket", "gs://my-bucket"),
            {},
            "invalid bucket name 'gs://my-bucket' (from --bucket): give the bucket's name only",
        ),
        (("--bucket", "My_Bucket"), {}, "invalid bucket name 'My_Bucket'"),
        (("--bucket", "ab"), {}, "invalid bucket name 'ab' (from --bucket): wrong length"),
        (("--bucket", "goog-specs"), {}, "invalid bucket name 'goog-specs'"),
        (("--bucket", "192.168.1.1"), {}, "names may not be IP addresses"),
        (("--function-name", "Trigger"), {}, "invalid function name 'Trigger' (from --function-name)"),
        (("--function-name", "trigger-"), {}, "invalid function name 'trigger-'"),
        (("--function-name", "t" * 64), {}, "invalid function name"),
        (
            (),
            {"VERTEX_CRON_FUNCTION_NAME": "my_trigger"},
            "invalid function name 'my_trigger' (from VERTEX_CRON_FUNCTION_NAME)",
        ),
    ],
)
def test_malformed_project_region_bucket_or_function_name_is_refused_before_any_call(
    run_cli, emulator, example_json, args, env, reason
):
    for command in (_deploy_args(example_json, *args), ("list", *args)):
        result = run_cli(*command, **env)

        assert result.exit_code == 2, result.output
        first_line = result.stderr.splitlines()[0]
        assert first_line.startswith("error: invalid ") and reason in first_line
        assert "Traceback" not in result.output
    assert emulator.calls == []


def test_settings_files_are_named_as_the_source_of_a_malformed_value(run_cli, emulator, example_json, tmp_path):
    for name in ("VERTEX_CRON_REGION", "VERTEX_CRON_PROJECT"):
        del run_cli.env[name]
    (tmp_path / "vertex-cron.toml").write_text('project = "demo-project"\nregion = "europe west1"\n')
    toml = run_cli(*_deploy_args(example_json))
    assert toml.exit_code == 2 and toml.stderr.startswith(
        "error: invalid region 'europe west1' (from vertex-cron.toml)"
    )

    (tmp_path / "vertex-cron.toml").write_text('region = "europe-west1"\n')
    (tmp_path / "pipeline.json").write_bytes(example_json.read_bytes())
    (tmp_path / "schedules.yaml").write_text(
        "defaults: {project: a/b}\nschedules:\n  - {name: nightly, spec: pipeline.json, cron: '0 3 * * *'}\n"
    )
    defaults = run_cli("apply", "-f", "schedules.yaml")
    assert defaults.exit_code == 2
    assert defaults.stderr.startswith("error: invalid project ID 'a/b' (from schedules.yaml: defaults)")
    assert emulator.calls == []


def test_a_legacy_domain_scoped_project_id_is_accepted(run_cli, emulator):
    result = run_cli("list", "--project", "example.com:my-project", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("schedules", "reason"),
    [
        (
            "defaults: {parameters: [run_date]}\nschedules:\n  - {name: nightly, spec: pipeline.json, cron: '0 3 * * *'}\n",
            "schedules.yaml: defaults: `parameters` must be a mapping of parameter names to values, got a list",
        ),
        (
            "schedules:\n  - {name: nightly, spec: pipeline.json, cron: '0 3 * * *', parameters: [run_date, x]}\n",
            "schedules.yaml: schedules[0] (schedule nightly): `parameters` must be a mapping of parameter names to "
            "values, got a list",
        ),
        (
            "schedules:\n  - {name: nightly, spec: pipeline.json, cron: '0 3 * * *', pipeline_root: [gs://b/r]}\n",
            "schedules.yaml: schedules[0] (schedule nightly): `pipeline_root` must be a string (a gs:// URI), got a list",
        ),
        (
            "defaults: {max_instances: 2.5}\nschedules:\n  - {name: nightly, spec: pipeline.json, cron: '0 3 * * *'}\n",
            "max instances (from schedules.yaml: defaults) must be an integer, got 2.5",
        ),
    ],
)
def test_a_schedules_file_value_of_the_wrong_type_is_a_usage_error(
    run_cli, emulator, example_json, tmp_path, schedules, reason
):
    (tmp_path / "pipeline.json").write_bytes(example_json.read_bytes())
    (tmp_path / "schedules.yaml").write_text(schedules)

    result = run_cli("apply", "-f", "schedules.yaml")

    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == f"error: {reason}"
    assert emulator.calls == []


def test_dry_run_next_runs_are_only_the_firings_inside_the_start_end_window(run_cli, emulator, example_json):
    window = run_cli(
        *_deploy_args(
            example_json,
            "--dry-run",
            "--format",
            "json",
            "--start-time",
            "2030-01-01T00:00:00Z",
            "--end-time",
            "2030-01-02T12:00:00Z",
        )
    )
    ended = run_cli(*_deploy_args(example_json, "--dry-run", "--end-time", "2020-01-01T00:00:00Z"))

    assert window.exit_code == 0 and ended.exit_code == 0, window.output + ended.output
    assert json.loads(window.stdout)["next_runs"]["nightly"] == [
        "2030-01-01T03:00:00Z",
        "2030-01-02T03:00:00Z",
    ]
    assert "  nightly: none: no firing left before the schedule's end time" in ended.stdout.splitlines()
    assert emulator.mutating_calls() == 0


def test_bare_vertex_cron_prints_the_help_and_exits_0():
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ") and "deploy" in result.stdout and result.stderr == ""


# -- the small answers: one line for a state change, the same "no such schedule" everywhere --


def test_history_of_a_name_with_no_schedule_and_no_runs_fails_like_describe(run_cli, emulator):
    history = run_cli("history", "nope")
    describe = run_cli("describe", "nope")

    assert history.exit_code == describe.exit_code == 1, history.output + describe.output
    assert history.stderr.splitlines()[0] == describe.stderr.splitlines()[0]
    assert history.stderr.startswith("error: no schedule named 'nope' in demo-project/europe-west1")


def test_list_on_an_empty_region_names_the_project_and_region(run_cli, emulator):
    result = run_cli("list")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No schedules managed by vertex-cron in project demo-project, region europe-west1."


def _deploy_paris(run_cli, spec):
    result = run_cli(*_deploy_args(spec, "--time-zone", "Europe/Paris"))
    assert result.exit_code == 0, result.output
    return result


def test_pause_and_resume_confirm_in_one_line_and_history_of_a_schedule_without_runs_is_not_an_error(
    run_cli, emulator, example_json
):
    _deploy_paris(run_cli, example_json)

    paused = run_cli("pause", "nightly")
    resumed = run_cli("resume", "nightly")
    history = run_cli("history", "nightly")

    assert paused.exit_code == resumed.exit_code == history.exit_code == 0, paused.output + resumed.output
    assert paused.stdout.splitlines() == ["Schedule nightly paused (Scheduler job vertex-cron-nightly is PAUSED)."]
    (line,) = resumed.stdout.splitlines()
    assert line.startswith("Schedule nightly resumed (Scheduler job vertex-cron-nightly is ENABLED); next run ")
    assert line.endswith((" 03:00:00 CET.", " 03:00:00 CEST."))
    assert history.stdout.strip() == "No pipeline runs of schedule nightly yet."


def test_times_read_the_same_in_deploy_list_and_describe_and_are_rfc3339_in_json(run_cli, emulator, example_json):
    deployed = _deploy_paris(run_cli, example_json)
    listed = run_cli("list")
    described = run_cli("describe", "nightly")
    as_json = json.loads(run_cli("describe", "nightly", "--format", "json").stdout)

    human = re.compile(r"20[0-9]{2}-[0-9]{2}-[0-9]{2} 03:00:00 CES?T")
    first_planned = human.search(deployed.stdout.split("Next runs:")[1])
    assert first_planned, deployed.stdout
    assert first_planned.group() in listed.stdout.splitlines()[1]
    assert f"next run: {first_planned.group()}" in described.stdout.splitlines()
    assert re.fullmatch(r"20[0-9]{2}-[0-9]{2}-[0-9]{2}T0[12]:00:00Z", as_json["next_run"])


@pytest.mark.parametrize("command", ["deploy", "apply", "list", "describe", "pause", "run", "delete", "history"])
def test_help_shows_the_command_s_own_options_before_the_shared_settings(command):
    result = CliRunner().invoke(cli, [command, "--help"])

    assert result.exit_code == 0, result.output
    own, _, settings = result.stdout.partition("\nSettings (")
    assert "--format" in own and "--project" not in own
    assert "--project" in settings and "--config" in settings and "--format" not in settings


def test_end_time_help_says_at_or_after_as_the_readme_does():
    help_text = " ".join(CliRunner().invoke(cli, ["deploy", "--help"]).stdout.split())
    assert "at or after which firings are skipped" in help_text
