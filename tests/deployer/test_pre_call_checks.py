"""Settings, identities, cron, time zones, spec files and the function zip: all decided before any call."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from vertex_cron import config, cronexpr, desired, function_source, schedules_file, validation
from vertex_cron.errors import SettingsError, ValidationError
from vertex_cron.models import ScheduleInput


def test_flags_beat_environment_beats_files():
    env = {"GOOGLE_CLOUD_PROJECT": "from-google-env", "VERTEX_CRON_REGION": "us-east1"}
    files = {"project": "from-file", "region": "europe-west4", "bucket": "file-bucket"}

    resolved = config.resolve({"project": "from-flag", "region": None}, env, files)

    assert (resolved.project, resolved.region, resolved.bucket) == ("from-flag", "us-east1", "file-bucket")


def test_vertex_cron_project_wins_over_the_generic_project_variables():
    env = {
        "CLOUDSDK_CORE_PROJECT": "gcloud-project",
        "GOOGLE_CLOUD_PROJECT": "google-project",
        "VERTEX_CRON_PROJECT": "our-project",
    }
    assert config.resolve({}, env).project == "our-project"
    assert config.resolve({}, {"CLOUDSDK_CORE_PROJECT": "gcloud-project"}).project == "gcloud-project"


def test_project_file_is_read_and_typos_are_refused(tmp_path: Path):
    (tmp_path / "vertex-cron.toml").write_text('project = "my-project"\nmax-instances = 4\n')
    assert config.load_file_values(None, cwd=tmp_path) == {"project": "my-project", "max_instances": 4}
    assert config.resolve({}, {}, config.load_file_values(None, cwd=tmp_path)).max_instances == 4

    (tmp_path / "vertex-cron.toml").write_text('projet = "p"\n')
    with pytest.raises(SettingsError, match="unknown setting 'projet'"):
        config.load_file_values(None, cwd=tmp_path)


@pytest.mark.parametrize("toml", ["max-instances = 2.5", "max-instances = true", 'max-instances = "many"'])
def test_a_max_instances_that_is_not_an_integer_is_refused_naming_the_file(tmp_path: Path, toml):
    (tmp_path / "vertex-cron.toml").write_text(toml + "\n")
    with pytest.raises(SettingsError, match=r"^max instances \(from vertex-cron.toml\) must be an integer"):
        config.resolve(
            {}, {}, config.load_file_values(None, cwd=tmp_path), file_sources={"max_instances": "vertex-cron.toml"}
        )


def test_a_blank_flag_counts_as_not_given():
    env = {"VERTEX_CRON_BUILD_SA": "vc-build@p.iam.gserviceaccount.com"}
    assert config.resolve({"build_sa": ""}, env).build_sa == env["VERTEX_CRON_BUILD_SA"]
    assert config.resolve({"build_sa": " "}, {}).build_sa is None
    assert config.resolve({}, {}, {"build_sa": ""}).build_sa is None


def test_missing_setting_names_the_flag_and_the_variables(make_settings):
    with pytest.raises(SettingsError, match="--scheduler-sa") as err:
        make_settings(scheduler_sa=None).deployment()
    assert "VERTEX_CRON_SCHEDULER_SA" in err.value.details


@pytest.mark.parametrize(
    "email",
    ["123456789012-compute@developer.gserviceaccount.com", "demo-project@appspot.gserviceaccount.com"],
)
def test_default_service_accounts_are_refused_unless_allowed(email):
    with pytest.raises(ValidationError, match="refusing the default service account"):
        validation.check_service_account("workload SA", email, allow_default=False)
    assert validation.check_service_account("workload SA", email, allow_default=True) == email


@pytest.mark.parametrize("email", ["someone@example.com", "x@p.iam.gserviceaccount.com", "vc-runner@", ""])
def test_malformed_service_accounts_are_refused(email):
    with pytest.raises(ValidationError, match="malformed workload SA"):
        validation.check_service_account("workload SA", email, allow_default=True)


@pytest.mark.parametrize("name", ["Nightly", "1st", "a" * 51, "with_underscore", ""])
def test_schedule_names_outside_the_pattern_are_refused(name):
    with pytest.raises(ValidationError, match="invalid schedule name"):
        validation.check_schedule_name(name)


@pytest.mark.parametrize(
    "expr",
    [
        "0 3 * *",
        "0 3 * * * *",
        "61 * * * *",
        "every day",
        "0 3 * * MON-FOO",
        "@daily",
        # croniter extensions Cloud Scheduler refuses
        "R 3 * * *",
        "0 3 L * *",
        "0 3 * * 1#2",
        "0 3 * * L5",
        "0 3 ? * *",
        "H 3 * * *",
        # out of bounds, backwards, zero or dangling steps
        "0 24 * * *",
        "0 3 0 * *",
        "0 3 * 13 *",
        "0 3 * * 8",
        "0 3 5-2 * *",
        "*/0 * * * *",
        "5/15 * * * *",
    ],
)
def test_cron_outside_cloud_schedulers_unix_cron_is_refused(expr):
    with pytest.raises(ValidationError, match="invalid cron"):
        cronexpr.check_cron(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "0 3 * * *",
        "*/15 0-23/2 1,15 * *",
        "0 3 * jan-Jun mon-FRI",
        "0 3 * * 7",
        "0 3 * * 0-7",
        "0 3 29 FEB *",
        "0 3 31 2 MON",  # day of month OR day of week: every Monday of February
    ],
)
def test_standard_unix_cron_is_accepted(expr):
    assert cronexpr.check_cron(f"  {expr} ") == expr


@pytest.mark.parametrize("expr", ["0 3 31 2 *", "0 3 30 feb *", "0 3 31 4,6,9,11 *"])
def test_cron_that_never_fires_is_refused(expr):
    with pytest.raises(ValidationError, match="never fires"):
        cronexpr.check_cron(expr)


def test_fire_times_stay_inside_the_start_end_window_and_never_raise():
    after = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    start, end = datetime(2024, 3, 1, 3, 0, tzinfo=UTC), datetime(2024, 3, 3, 3, 0, tzinfo=UTC)
    times = cronexpr.next_fire_times("0 3 * * *", "UTC", after, 3, start=start, end=end)
    assert [t.isoformat() for t in times] == ["2024-03-01T03:00:00+00:00", "2024-03-02T03:00:00+00:00"]
    assert cronexpr.next_fire_times("0 3 * * *", "UTC", after, 3, end=after) == []
    assert cronexpr.next_fire_times("0 3 31 2 *", "UTC", after, 3) == []


def test_cron_next_times_follow_the_time_zone():
    after = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    times = cronexpr.next_fire_times("30 9 * * 1-5", "America/New_York", after, 2)
    assert [t.isoformat() for t in times] == ["2024-01-01T09:30:00-05:00", "2024-01-02T09:30:00-05:00"]


@pytest.mark.parametrize(
    "tz",
    [
        "Mars/Olympus",
        "../etc/passwd",
        "",
        "utc+2",
        # tz database files that are no IANA zone name
        "localtime",
        "posixrules",
        "Factory",
        "right/UTC",
        "posix/Europe/Paris",
    ],
)
def test_unknown_time_zones_are_refused(tz):
    with pytest.raises(ValidationError, match="is not a time zone of the tz database"):
        validation.check_time_zone(tz)


@pytest.mark.parametrize("tz", ["UTC", "Etc/UTC", "Europe/Paris", "America/New_York"])
def test_iana_time_zones_are_accepted(tz):
    assert validation.check_time_zone(tz) == tz


def _build(make_settings, spec: Path, **schedule):
    values = {"name": "nightly", "spec": spec, "cron": "0 3 * * *", **schedule}
    return desired.build(make_settings().deployment(), [ScheduleInput(**values)], source=function_source.build())


def test_json_and_yaml_specs_of_one_pipeline_both_load(make_settings, example_json, example_yaml):
    for spec in (example_json, example_yaml):
        wanted = _build(make_settings, spec, parameters={"run_date": "2024-01-01"})
        (job,) = wanted.jobs
        assert job.body["pipeline_root"].startswith(f"gs://{make_settings().bucket}/")
        assert wanted.specs[0].object_name.startswith("vertex-cron/specs/")


def test_spec_object_name_carries_the_content_sha256(make_settings, example_json):
    import hashlib

    wanted = _build(make_settings, example_json, parameters={"run_date": "x"})
    digest = hashlib.sha256(example_json.read_bytes()).hexdigest()
    assert wanted.specs[0].object_name == f"vertex-cron/specs/demo-project/europe-west1/{digest}.json"
    assert wanted.specs[0].metadata == {
        "managed-by": "vertex-cron",
        "vertex-cron-location": "projects/demo-project/locations/europe-west1",
    }


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({}, "run_date is required"),
        ({"run_date": "x", "nope": "1"}, "has no such parameter"),
        ({"run_date": "x", "sample_rows": "many"}, "sample_rows must be an integer"),
    ],
)
def test_parameters_are_checked_against_the_spec(make_settings, example_json, parameters, message):
    with pytest.raises(ValidationError, match=message):
        _build(make_settings, example_json, parameters=parameters)


def test_parameters_are_typed_for_the_body(make_settings, example_json):
    wanted = _build(make_settings, example_json, parameters={"run_date": "x", "sample_rows": "5", "dry_run": "true"})
    assert wanted.jobs[0].body["parameter_values"] == {"run_date": "x", "sample_rows": 5, "dry_run": True}


def test_runs_write_where_infra_lets_the_workload_sa_write_unless_a_root_is_given(make_settings, example_json):
    # The spec's defaultPipelineRoot (gs://vertex-cron-demo-artifacts/...) is not used.
    settings = make_settings()
    default = _build(make_settings, example_json, parameters={"run_date": "x"})
    given = _build(make_settings, example_json, parameters={"run_date": "x"}, pipeline_root="gs://my-bucket/root")

    assert default.jobs[0].body["pipeline_root"] == (
        f"gs://{settings.bucket}/vertex-cron/pipeline-root/{settings.project}/{settings.region}/nightly"
    )
    assert given.jobs[0].body["pipeline_root"] == "gs://my-bucket/root"


def test_an_oversized_spec_is_refused_before_reading(make_settings, tmp_path):
    from vertex_cron.spec_file import SPEC_LIMIT_BYTES

    spec = tmp_path / "huge.json"
    with open(spec, "wb") as fh:
        fh.truncate(SPEC_LIMIT_BYTES + 1)
    with pytest.raises(ValidationError, match="over the"):
        _build(make_settings, spec)


def test_an_oversized_scheduler_body_is_refused(make_settings, example_json):
    with pytest.raises(ValidationError, match="Scheduler request body"):
        _build(make_settings, example_json, parameters={"run_date": "x" * validation.MAX_SCHEDULER_BODY_BYTES})


def test_the_function_zip_is_byte_identical_across_builds_and_skips_caches(tmp_path):
    root = tmp_path / "function"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "main.py").write_text("x = 1\n")
    (root / "requirements.txt").write_text("requests\n")
    (root / "pkg" / "mod.py").write_text("y = 2\n")
    (root / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    first = function_source.build(root)

    (root / "main.py").touch()  # a new mtime must not change the bytes
    (root / "pkg" / "stale.pyc").write_bytes(b"junk")
    second = function_source.build(root)

    assert first == second
    with zipfile.ZipFile(__import__("io").BytesIO(first.zip_bytes)) as archive:
        assert archive.namelist() == ["main.py", "pkg/mod.py", "requirements.txt"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_real_function_source_is_found_and_zipped():
    source = function_source.build()
    with zipfile.ZipFile(__import__("io").BytesIO(source.zip_bytes)) as archive:
        names = archive.namelist()
    assert "main.py" in names and "requirements.txt" in names
    assert "vertex_cron_trigger/handler.py" in names
    assert len(source.label) <= 63 and source.label == source.sha256[:32]


def test_schedules_file_defaults_and_relative_specs(tmp_path, example_json):
    (tmp_path / "pipeline.json").write_bytes(example_json.read_bytes())
    (tmp_path / "schedules.yaml").write_text(
        "defaults:\n  project: p\n  time_zone: Europe/Paris\n  parameters: {run_date: x}\n"
        "schedules:\n"
        "  - {name: nightly, spec: pipeline.json, cron: '0 3 * * *'}\n"
        "  - {name: hourly, spec: pipeline.json, cron: '0 * * * *', time_zone: UTC, parameters: {sample_rows: 2}}\n"
    )
    loaded = schedules_file.load(tmp_path / "schedules.yaml")
    assert loaded.settings == {"project": "p"}
    nightly, hourly = loaded.schedules
    assert nightly.spec == tmp_path / "pipeline.json" and nightly.time_zone == "Europe/Paris"
    assert hourly.time_zone == "UTC" and hourly.parameters == {"run_date": "x", "sample_rows": 2}


def test_schedules_file_typos_are_refused(tmp_path):
    (tmp_path / "s.yaml").write_text("schedules:\n  - {name: a, spec: p.json, cron: '* * * * *', timezone: UTC}\n")
    with pytest.raises(SettingsError, match="unknown key 'timezone'"):
        schedules_file.load(tmp_path / "s.yaml")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("name: 123", ": `name` must be a string, got an integer"),
        (
            "spec: [p.json]",
            "(schedule a): `spec` must be a string (a path relative to this file, or an Artifact Registry URI), got a list",
        ),
        ("cron: 5", "(schedule a): `cron` must be a string (quote it), got an integer"),
        ("time_zone: {zone: UTC}", "(schedule a): `time_zone` must be a string, got a mapping"),
        (
            "parameters: [run_date]",
            "(schedule a): `parameters` must be a mapping of parameter names to values, got a list",
        ),
        ("parameters: {1: x}", "(schedule a): `parameters` names must be strings, got an integer 1"),
        ("max_concurrent_runs: two", "(schedule a): `max_concurrent_runs` must be an integer, got a string"),
        ("max_concurrent_runs: true", "(schedule a): `max_concurrent_runs` must be an integer, got a boolean (true)"),
        ("enable_caching: 'no'", "(schedule a): `enable_caching` must be true or false, got a string"),
        (
            "start_time: 2025-01-01",
            "(schedule a): `start_time` must be an RFC 3339 time, got a date/time (2025-01-01) (quote it)",
        ),
        ("end_time: [2025]", "(schedule a): `end_time` must be an RFC 3339 time, got a list"),
        ("catch_up: 6", "(schedule a): `catch_up` must be a duration such as 6h, 90m or 1d, got an integer"),
    ],
)
def test_schedules_file_values_of_the_wrong_type_name_the_schedule_and_key(tmp_path, entry, message):
    base = {"name": "a", "spec": "p.json", "cron": "'* * * * *'"}
    key = entry.split(":", 1)[0]
    fields = [f"{k}: {v}" for k, v in base.items() if k != key] + [entry]
    (tmp_path / "s.yaml").write_text("schedules:\n  - " + "\n    ".join(fields) + "\n")

    with pytest.raises(SettingsError) as err:
        schedules_file.load(tmp_path / "s.yaml")

    where = "" if key == "name" else " "
    assert err.value.reason == f"{tmp_path / 's.yaml'}: schedules[0]{where}{message}"
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("default", "message"),
    [
        ("time_zone: [UTC]", "`time_zone` must be a string, got a list"),
        ("parameters: run_date", "`parameters` must be a mapping of parameter names to values, got a string"),
        ("enable_caching: 1", "`enable_caching` must be true or false, got an integer"),
    ],
)
def test_schedules_file_defaults_of_the_wrong_type_are_refused(tmp_path, default, message):
    (tmp_path / "s.yaml").write_text(
        f"defaults:\n  {default}\nschedules:\n  - {{name: a, spec: p.json, cron: '* * * * *'}}\n"
    )
    with pytest.raises(SettingsError) as err:
        schedules_file.load(tmp_path / "s.yaml")
    assert err.value.reason == f"{tmp_path / 's.yaml'}: defaults: {message}"


def test_schedules_file_empty_values_mean_not_given_and_unquoted_timestamps_are_kept(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "defaults:\n  time_zone: Europe/Paris\n  parameters: {run_date: x}\n"
        "schedules:\n  - name: a\n    spec: p.json\n    cron: '* * * * *'\n    time_zone:\n    parameters:\n"
        "    start_time: 2025-01-01T00:00:00Z\n"
    )
    (schedule,) = schedules_file.load(tmp_path / "s.yaml").schedules
    assert schedule.time_zone == "Europe/Paris" and schedule.parameters == {"run_date": "x"}
    assert schedule.start_time == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("project", "demo-project"),
        ("project", "a12345"),
        ("project", "p" * 30),
        ("project", "example.com:my-project"),
        ("region", "us-central1"),
        ("region", "europe-west10"),
        ("region", "northamerica-northeast1"),
        ("bucket", "my-bucket"),
        ("bucket", "a_b"),
        ("bucket", "specs.example.com"),
        ("bucket", "b" * 63),
        ("function_name", "vertex-cron-trigger"),
        ("function_name", "fn01"),
        ("function_name", "f" * 63),
    ],
)
def test_well_formed_settings_pass(setting, value):
    assert getattr(config.resolve({setting: value}, {}), setting) == value


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("project", "p" * 31),
        ("project", "my_project"),
        ("project", "example.com:1project"),
        ("project", ":my-project"),
        ("region", "us-central"),
        ("region", "us-central1-a"),
        ("region", "global"),
        ("bucket", "-bucket"),
        ("bucket", "bucket-"),
        ("bucket", "b" * 64),
        ("bucket", "my-google-bucket"),
        ("bucket", "my..bucket"),
        ("bucket", "gs://b/path"),
        ("function_name", "fn"),
        ("function_name", "1fn-name"),
        ("function_name", "fn.name"),
    ],
)
def test_malformed_settings_are_config_errors_naming_the_source(setting, value):
    with pytest.raises(SettingsError) as err:
        config.resolve({}, {}, {setting: value}, file_sources={setting: "here.toml"})
    assert err.value.reason.startswith("invalid ") and "(from here.toml)" in err.value.reason
    assert err.value.exit_code == 2


def test_settings_built_by_hand_are_format_checked_before_use(make_settings):
    from vertex_cron import api

    with pytest.raises(SettingsError, match=r"invalid region 'europe-west1-b' \(from Settings\)"):
        api.list_schedules(make_settings(region="europe-west1-b"), cloud=object())


@pytest.mark.parametrize("root", ["s3://bucket/root", "gs://UPPER/root", "gs://b/root", "gs://my-bucket/\x01x"])
def test_a_pipeline_root_the_function_would_refuse_is_refused_at_deploy(make_settings, example_json, root):
    with pytest.raises(ValidationError, match="pipeline root must be a gs://BUCKET/PATH"):
        _build(make_settings, example_json, parameters={"run_date": "x"}, pipeline_root=root)


def test_an_unset_build_sa_is_refused_unless_default_accounts_are_allowed(make_settings, example_json):
    schedule = ScheduleInput(name="nightly", spec=example_json, cron="0 3 * * *", parameters={"run_date": "x"})
    with pytest.raises(ValidationError, match="no build SA") as refused:
        desired.build(make_settings(build_sa=None).deployment(), [schedule], source=function_source.build())
    assert "--build-sa" in refused.value.details and "--allow-default-service-account" in refused.value.details

    allowed = desired.build(
        make_settings(build_sa=None, allow_default_service_account=True).deployment(),
        [schedule],
        source=function_source.build(),
    )
    assert "build_config.service_account" not in allowed.function.fields
    built_as = desired.build(make_settings().deployment(), [schedule], source=function_source.build()).function.fields
    assert built_as["build_config.service_account"].endswith(
        "/serviceAccounts/vc-build@demo-project.iam.gserviceaccount.com"
    )


def test_the_function_answers_before_its_platform_timeout_and_scheduler_waits_for_it():
    """Cut off at its timeout, a request would get no answer and no log line: the function's
    own deadline (then a 503) must come first, and Scheduler's attempt deadline after."""
    from vertex_cron_trigger.deadline import REQUEST_SECONDS

    assert REQUEST_SECONDS < desired.TIMEOUT_SECONDS < int(desired.ATTEMPT_DEADLINE.rstrip("s"))


def test_catch_up_is_a_schedule_default_and_an_entry_overrides_it(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "defaults: {catch_up: 6h}\nschedules:\n"
        "  - {name: a, spec: p.json, cron: '0 3 * * *'}\n"
        "  - {name: b, spec: p.json, cron: '0 3 * * *', catch_up: 1d}\n"
    )
    a, b = schedules_file.load(tmp_path / "s.yaml").schedules
    assert (a.catch_up, b.catch_up) == ("6h", "1d")


@pytest.mark.parametrize(
    ("window", "seconds"), [("6h", 21600), ("90m", 5400), ("1d", 86400), ("1d12h", 129600), ("7d", 604800)]
)
def test_catch_up_windows_up_to_a_week(window, seconds):
    assert validation.check_catch_up(window).total_seconds() == seconds


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("8d", "catch_up 8d is longer than the maximum of 7d"),
        ("169h", "catch_up 169h is longer than the maximum of 7d"),
        ("0m", "catch_up must be a positive duration, got '0m'"),
        ("-1h", "catch_up must be a duration such as 6h, 90m or 1d, got '-1h'"),
        ("6", "catch_up must be a duration such as 6h, 90m or 1d, got '6'"),
        ("PT6H", "catch_up must be a duration such as 6h, 90m or 1d, got 'PT6H'"),
    ],
)
def test_catch_up_windows_that_are_not_positive_or_exceed_a_week_are_refused(window, message):
    with pytest.raises(ValidationError) as err:
        validation.check_catch_up(window)
    assert err.value.reason == message


def test_the_catch_up_sweep_s_name_is_reserved():
    with pytest.raises(ValidationError, match="the schedule name 'catch-up' is reserved") as err:
        validation.check_schedule_name("catch-up")
    assert "vertex-cron-catch-up" in err.value.details
    assert validation.check_schedule_name("catch-up-daily") == "catch-up-daily"


def test_every_schedule_option_is_a_deploy_flag_and_a_schedules_file_key(tmp_path):
    """The declaration on ScheduleInput is the only list: the flags and keys follow from it."""
    from click.testing import CliRunner
    from vertex_cron.cli import cli
    from vertex_cron.models import SCHEDULE_OPTIONS

    deploy_help = CliRunner().invoke(cli, ["deploy", "--help"]).stdout
    assert [
        name
        for name, option in SCHEDULE_OPTIONS.items()
        if option.flag and option.flag.split("/")[0] not in deploy_help
    ] == []
    (tmp_path / "s.yaml").write_text("schedules:\n  - {name: a, spec: p.json, cron: '* * * * *', colour: red}\n")
    with pytest.raises(SettingsError) as err:
        schedules_file.load(tmp_path / "s.yaml")
    assert err.value.details == "known: " + ", ".join(sorted(SCHEDULE_OPTIONS))


def test_the_function_knows_how_long_scheduler_may_retry_the_jobs_the_deployer_writes():
    """run_history.DEPLOYED_GIVE_UP, written out in the function (its reports wait that long
    before calling a fire time missed), is the give-up span of the deployer's jobs."""
    from vertex_cron_trigger.give_up import give_up_span
    from vertex_cron_trigger.run_history import DEPLOYED_GIVE_UP

    assert give_up_span(desired._RETRY_CONFIG) == DEPLOYED_GIVE_UP


def test_a_catch_up_window_shorter_than_schedulers_retries_plus_one_sweep_period_is_refused(make_settings):
    minimum = desired.min_catch_up()
    # Six attempts of 240 s, five 75 s backoffs, a minute's dispatch slack, then a 10-minute sweep.
    assert minimum == timedelta(seconds=6 * 240 + 5 * 75 + 60 + 600)
    shortest = validation.format_duration(minimum)
    assert shortest == validation.MIN_CATCH_UP_TEXT  # what `deploy --help` states

    def check(window: str) -> None:
        schedule = ScheduleInput("nightly", Path("p.json"), "0 3 * * *", catch_up=window)
        desired.check_inputs(make_settings().deployment(), [schedule])

    with pytest.raises(ValidationError) as refused:
        check("1m")
    assert refused.value.reason.startswith(f"schedule nightly: catch_up 1m is shorter than the minimum of {shortest} ")
    assert refused.value.exit_code == 2
    with pytest.raises(ValidationError):
        check(validation.format_duration(minimum - timedelta(seconds=1)))
    check(shortest)


@pytest.mark.parametrize(
    ("window", "message"),
    [("8d", "catch_up 8d is longer than the maximum of 7d"), ("1m", "catch_up 1m is shorter than the minimum of ")],
)
def test_a_catch_up_window_out_of_range_in_a_schedules_file_names_the_file_and_entry(tmp_path, window, message):
    (tmp_path / "s.yaml").write_text(
        f"defaults: {{catch_up: 6h}}\nschedules:\n"
        "  - {name: a, spec: p.json, cron: '* * * * *'}\n"
        f"  - {{name: b, spec: p.json, cron: '* * * * *', catch_up: {window}}}\n"
    )

    with pytest.raises(SettingsError) as err:
        schedules_file.load(tmp_path / "s.yaml")

    assert err.value.reason.startswith(f"{tmp_path / 's.yaml'}: schedules[1] (schedule b): {message}")
    assert err.value.exit_code == 2
