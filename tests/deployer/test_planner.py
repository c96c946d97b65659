"""The planner, with plain values: what a user sees in `--dry-run` and what gets called."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from vertex_cron import desired, function_source, planner
from vertex_cron.models import (
    Action,
    Kind,
    Observed,
    ObservedFunction,
    ObservedJob,
    Pending,
    ScheduleInput,
    StoredSpec,
)

_SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.json"
NOW = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)
URL = "https://vertex-cron-trigger-abc-ew.a.run.app"
ENV = "service_config.environment_variables"
SERVICE = "projects/demo-project/locations/europe-west1/services/vertex-cron-trigger"


NIGHTLY = ScheduleInput("nightly", _SPEC, "0 3 * * *", "Europe/Paris", {"run_date": "{{schedule_time}}"})


@pytest.fixture(scope="module")
def source():
    return function_source.build()


@pytest.fixture
def make_desired(make_settings, source):
    def build(*schedules, prune=False, **setting_overrides):
        return desired.build(
            make_settings(**setting_overrides).deployment(), schedules or (NIGHTLY,), source=source, prune=prune
        )

    return build


def _converged(wanted, *, generation=7):
    """What the cloud holds right after `wanted` was applied."""
    function = ObservedFunction(wanted.function.name, desired.with_audience(wanted.function, URL).fields, URL, SERVICE)
    jobs = {
        job.name: ObservedJob(
            job.name, desired.job_fields(job, spec_uri=f"{job.body['spec_uri']}#{generation}", url=URL)
        )
        for job in wanted.jobs
    }
    return Observed(
        spec_generations={spec.object_name: generation for spec in wanted.specs},
        function=function,
        invoker_members=frozenset(wanted.invoker_members),
        jobs=jobs,
    )


def _by_kind(plan, kind):
    return [change for change in plan.changes if change.kind is kind]


def test_nothing_exists_so_everything_is_created_with_values_known_later_marked_pending(make_desired):
    wanted = make_desired()
    empty = Observed(spec_generations={wanted.specs[0].object_name: None}, function=None, invoker_members=None, jobs={})

    plan = planner.plan(wanted, empty, now=NOW)

    assert [(c.kind, c.action) for c in plan.changes] == [
        (Kind.SPEC, Action.CREATE),
        (Kind.FUNCTION, Action.CREATE),
        (Kind.FUNCTION, Action.UPDATE),  # its URL as its audience, once it has one
        (Kind.INVOKER, Action.CREATE),
        (Kind.JOB, Action.CREATE),
    ]
    job_fields = dict((d.field, d.new) for d in _by_kind(plan, Kind.JOB)[0].diffs)
    assert job_fields["http_target.uri"] == Pending("function URL")
    assert job_fields["http_target.oidc_token.audience"] == Pending("function URL")
    assert job_fields["http_target.body"]["spec_uri"] == Pending("spec generation")
    create, audience = _by_kind(plan, Kind.FUNCTION)
    assert planner.needs_build(create)
    assert "VERTEX_CRON_AUDIENCE" not in dict((d.field, d.new) for d in create.diffs)[ENV]
    assert [(d.field, d.new) for d in audience.diffs] == [(f"{ENV}.VERTEX_CRON_AUDIENCE", Pending("function URL"))]
    assert planner.update_mask(audience) == ["service_config"] and not planner.needs_build(audience)


def test_a_converged_cloud_plans_no_mutation(make_desired):
    wanted = make_desired()
    plan = planner.plan(wanted, _converged(wanted), now=NOW)
    assert plan.mutations == ()
    assert {c.action for c in plan.changes} == {Action.UNCHANGED}


def test_fields_the_service_adds_itself_do_not_count_as_drift(make_desired):
    wanted = make_desired()
    observed = _converged(wanted)
    function_fields = dict(observed.function.fields)
    function_fields["service_config.environment_variables"] = {
        **function_fields["service_config.environment_variables"],
        "LOG_EXECUTION_ID": "true",
    }
    function_fields["labels"] = {**function_fields["labels"], "goog-managed-by": "cloudfunctions"}
    function_fields["service_config.all_traffic_on_latest_revision"] = True
    observed = Observed(
        observed.spec_generations,
        ObservedFunction(observed.function.name, function_fields, URL, SERVICE),
        observed.invoker_members,
        observed.jobs,
    )
    assert planner.plan(wanted, observed, now=NOW).mutations == ()


def test_a_changed_setting_updates_only_that_field_without_a_build(make_desired):
    before = make_desired()
    after = make_desired(max_instances=3)

    plan = planner.plan(after, _converged(before), now=NOW)

    (change,) = plan.mutations
    assert change.kind is Kind.FUNCTION and change.action is Action.UPDATE
    assert [(d.field, d.old, d.new) for d in change.diffs] == [("service_config.max_instance_count", 10, 3)]
    assert planner.update_mask(change) == ["service_config"]
    assert not planner.needs_build(change)


def test_a_stale_contract_variable_is_removed(make_desired):
    wanted = make_desired()
    observed = _converged(wanted)
    env = {**observed.function.fields["service_config.environment_variables"], "VERTEX_CRON_RETIRED": "x"}
    fields = {**observed.function.fields, "service_config.environment_variables": env}
    observed = Observed(
        observed.spec_generations,
        ObservedFunction(observed.function.name, fields, URL, SERVICE),
        observed.invoker_members,
        observed.jobs,
    )

    (change,) = planner.plan(wanted, observed, now=NOW).mutations
    assert [(d.field, d.new) for d in change.diffs] == [
        ("service_config.environment_variables.VERTEX_CRON_RETIRED", None)
    ]


def test_new_source_means_a_build(make_desired):
    wanted = make_desired()
    observed = _converged(wanted)
    fields = {**observed.function.fields, "build_config.source": "0" * 32}
    observed = Observed(
        observed.spec_generations,
        ObservedFunction(observed.function.name, fields, URL, SERVICE),
        observed.invoker_members,
        observed.jobs,
    )

    (change,) = planner.plan(wanted, observed, now=NOW).mutations
    assert planner.needs_build(change)
    assert "build_config" in planner.update_mask(change)


def test_a_changed_parameter_updates_the_job_body_only(make_desired):
    before = make_desired()
    after = make_desired(
        ScheduleInput(
            "nightly", _SPEC, "0 3 * * *", "Europe/Paris", {"run_date": "{{schedule_time}}", "sample_rows": "5"}
        ),
    )

    (change,) = planner.plan(after, _converged(before), now=NOW).mutations

    assert change.kind is Kind.JOB and change.action is Action.UPDATE
    assert [(d.field, d.old, d.new) for d in change.diffs] == [
        (
            "http_target.body.parameter_values",
            {"run_date": "{{schedule_time}}"},
            {"run_date": "{{schedule_time}}", "sample_rows": 5},
        ),
    ]
    assert planner.update_mask(change) == ["http_target"]


def test_a_public_invoker_is_removed_and_the_scheduler_sa_kept(make_desired):
    wanted = make_desired()
    observed = _converged(wanted)
    observed = Observed(
        observed.spec_generations, observed.function, observed.invoker_members | {"allUsers"}, observed.jobs
    )

    (change,) = planner.plan(wanted, observed, now=NOW).mutations

    assert change.kind is Kind.INVOKER and change.action is Action.UPDATE
    assert change.diffs[0].new == list(wanted.invoker_members)


def test_prune_deletes_only_managed_jobs_missing_from_the_file(make_desired):
    wanted = make_desired(prune=True)
    observed = _converged(wanted)
    gone = desired.job_name("demo-project", "europe-west1", "weekly")
    foreign = "projects/demo-project/locations/europe-west1/jobs/someone-elses"
    observed = Observed(
        observed.spec_generations,
        observed.function,
        observed.invoker_members,
        {**observed.jobs, gone: ObservedJob(gone, {}), foreign: ObservedJob(foreign, {})},
    )

    plan = planner.plan(wanted, observed, now=NOW)

    assert [(c.name, c.action) for c in plan.mutations] == [(gone, Action.DELETE)]


def test_next_fire_times_are_in_the_schedule_time_zone_across_dst(make_desired):
    wanted = make_desired()
    empty = Observed({}, None, None, {})
    (runs,) = planner.plan(wanted, empty, now=NOW).next_runs
    # Europe/Paris springs forward on 2024-03-31: 03:00 CET, then 03:00 CEST.
    assert [t.isoformat() for t in runs.times] == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T03:00:00+02:00",
        "2024-04-02T03:00:00+02:00",
    ]
    assert runs.times[0].tzinfo == ZoneInfo("Europe/Paris")


HERE = "projects/p/locations/r"


def _stored(name, **metadata):
    return StoredSpec(name, metadata)


def _ours(name):
    return _stored(name, **{"managed-by": "vertex-cron", "vertex-cron-location": HERE})


def test_delete_takes_the_function_with_the_last_schedule_and_purges_unreferenced_specs():
    spec_a, spec_b = "vertex-cron/specs/p/r/aaa.json", "vertex-cron/specs/p/r/bbb.json"
    function = ObservedFunction("projects/p/locations/r/functions/vertex-cron-trigger", {}, URL, SERVICE)

    def job(name, spec):
        return ObservedJob(name, {"http_target.uri": URL, "http_target.body": {"spec_uri": f"gs://b/{spec}#3"}})

    jobs = {"j/one": job("j/one", spec_a), "j/two": job("j/two", spec_b)}

    one = planner.plan_delete(
        ["j/one"], jobs, function=function, spec_objects=[_ours(spec_a), _ours(spec_b)], location=HERE, purge=True
    )
    assert [(c.kind, c.name) for c in one.changes] == [(Kind.JOB, "j/one"), (Kind.SPEC, spec_a)]

    both = planner.plan_delete(
        ["j/one", "j/two"], jobs, function=function, spec_objects=[_ours(spec_a)], location=HERE, purge=False
    )
    assert [(c.kind, c.name) for c in both.changes] == [
        (Kind.JOB, "j/one"),
        (Kind.JOB, "j/two"),
        (Kind.FUNCTION, function.name),
    ]


def test_purge_deletes_only_objects_vertex_cron_uploaded_for_this_location():
    objects = [
        _ours("vertex-cron/specs/p/r/ours.json"),
        _stored("vertex-cron/specs/p/r/by-hand.json"),  # no metadata: not ours to delete
        _stored("vertex-cron/specs/p/r/other-tool.json", **{"managed-by": "terraform"}),
        _stored(
            "vertex-cron/specs/p/r/elsewhere.json",  # metadata of another region
            **{"managed-by": "vertex-cron", "vertex-cron-location": "projects/p/locations/s"},
        ),
    ]

    plan = planner.plan_delete(
        ["j/one"], {"j/one": ObservedJob("j/one", {})}, function=None, spec_objects=objects, location=HERE, purge=True
    )

    assert [c.name for c in plan.changes if c.kind is Kind.SPEC] == ["vertex-cron/specs/p/r/ours.json"]


SCHEDULER = "vc-scheduler@demo-project.iam.gserviceaccount.com"
OLD_SCHEDULER = "vc-scheduler-old@demo-project.iam.gserviceaccount.com"


def _other_job(name, *, email, url=URL):
    full = desired.job_name("demo-project", "europe-west1", name)
    return full, ObservedJob(full, {"http_target.uri": url, "http_target.oidc_token.service_account_email": email})


def _with_jobs(observed, *jobs, members=None):
    return Observed(
        observed.spec_generations,
        observed.function,
        frozenset(members) if members is not None else observed.invoker_members,
        {**observed.jobs, **dict(jobs)},
    )


def test_the_invokers_are_exactly_the_scheduler_sas_of_the_jobs_that_call_the_function(make_desired):
    wanted = make_desired()
    observed = _with_jobs(
        _converged(wanted),
        _other_job("hourly", email=OLD_SCHEDULER),  # deployed before the SA was rotated
        _other_job("elsewhere", email="vc-other@demo-project.iam.gserviceaccount.com", url="https://other.run.app"),
        members={f"serviceAccount:{SCHEDULER}", f"serviceAccount:{OLD_SCHEDULER}", "user:someone@example.com"},
    )

    resolved = planner.with_invokers(wanted, observed)
    plan = planner.plan(resolved, observed, now=NOW)

    assert [c.kind for c in plan.mutations] == [Kind.FUNCTION, Kind.INVOKER]  # the allowlist, the role
    change = _by_kind(plan, Kind.INVOKER)[0]
    wanted_members = [f"serviceAccount:{OLD_SCHEDULER}", f"serviceAccount:{SCHEDULER}"]
    assert resolved.invoker_members == tuple(wanted_members)
    assert change.kind is Kind.INVOKER and change.action is Action.UPDATE
    assert [(d.field, d.new) for d in change.diffs] == [("roles/run.invoker", wanted_members)]
    assert "user:someone@example.com" in change.diffs[0].old
    env = resolved.function.fields["service_config.environment_variables"]
    assert env["VERTEX_CRON_ALLOWED_INVOKERS"] == f"{OLD_SCHEDULER},{SCHEDULER}"


def test_a_rotated_scheduler_sa_goes_once_no_job_uses_it(make_desired):
    before = make_desired(scheduler_sa=OLD_SCHEDULER)
    observed = _converged(before)  # nightly runs as the old SA, which is the only invoker
    after = make_desired()

    resolved = planner.with_invokers(after, observed)
    plan = planner.plan(resolved, observed, now=NOW)

    assert resolved.invoker_members == (f"serviceAccount:{SCHEDULER}",)
    changes = {c.kind: c for c in plan.mutations}
    assert changes[Kind.INVOKER].diffs[0].old == [f"serviceAccount:{OLD_SCHEDULER}"]
    assert changes[Kind.INVOKER].diffs[0].new == [f"serviceAccount:{SCHEDULER}"]
    assert [(d.field, d.new) for d in changes[Kind.FUNCTION].diffs] == [
        ("service_config.environment_variables.VERTEX_CRON_ALLOWED_INVOKERS", SCHEDULER)
    ]
    assert [d.field for d in changes[Kind.JOB].diffs] == ["http_target.oidc_token.service_account_email"]


def test_jobs_that_apply_prune_deletes_do_not_keep_their_sa_an_invoker(make_desired):
    wanted = make_desired(prune=True)
    observed = _with_jobs(_converged(wanted), _other_job("legacy", email=OLD_SCHEDULER))

    assert planner.with_invokers(wanted, observed).invoker_members == (f"serviceAccount:{SCHEDULER}",)


def test_the_planned_function_sets_its_timeout_and_memory(make_desired):
    empty = Observed({}, None, None, {})
    plan = planner.plan(make_desired(), empty, now=NOW)
    function, _ = _by_kind(plan, Kind.FUNCTION)
    fields = {d.field: d.new for d in function.diffs}
    assert fields["service_config.timeout_seconds"] == desired.TIMEOUT_SECONDS == 180
    assert fields["service_config.available_memory"] == "256M"
    (job,) = _by_kind(plan, Kind.JOB)
    deadline = {d.field: d.new for d in job.diffs}["attempt_deadline"]
    assert int(deadline.removesuffix("s")) >= desired.TIMEOUT_SECONDS


def _as_a_normalizing_server_stores(observed):
    """`observed` as Cloud Scheduler, Cloud Functions and IAM return it (docs/fidelity.md):
    "/" after an empty URI path, Scheduler's own headers, LOG_EXECUTION_ID, a Duration
    printed with fractional digits."""
    jobs = {}
    for name, job in observed.jobs.items():
        fields = dict(job.fields)
        fields["http_target.uri"] += "/"
        fields["http_target.headers"] = {
            **fields.get("http_target.headers", {}),
            "User-Agent": "Google-Cloud-Scheduler",
            "X-Google-Trace": "1",
        }
        if "retry_config.min_backoff_duration" in fields:
            fields["retry_config.min_backoff_duration"] = "75.000s"
        jobs[name] = ObservedJob(name, fields)
    function_fields = {
        **observed.function.fields,
        ENV: {**observed.function.fields[ENV], "LOG_EXECUTION_ID": "true"},
    }
    return Observed(
        observed.spec_generations,
        ObservedFunction(observed.function.name, function_fields, URL, SERVICE),
        observed.invoker_members,
        jobs,
    )


def test_what_a_normalizing_server_reads_back_is_no_change(make_desired):
    wanted = make_desired()
    observed = _as_a_normalizing_server_stores(_converged(wanted))

    plan = planner.plan(planner.with_invokers(wanted, observed), observed, now=NOW)

    assert plan.mutations == ()


def test_a_job_whose_stored_uri_gained_a_slash_still_calls_the_function(make_desired):
    wanted = make_desired()
    observed = _as_a_normalizing_server_stores(
        _with_jobs(_converged(wanted), _other_job("hourly", email=OLD_SCHEDULER))
    )

    kept = planner.plan_delete([wanted.jobs[0].name], observed.jobs, function=observed.function)
    assert [c.kind for c in kept.changes] == [Kind.JOB]  # hourly still calls the function
    assert planner.with_invokers(wanted, observed).invoker_members == (
        f"serviceAccount:{OLD_SCHEDULER}",
        f"serviceAccount:{SCHEDULER}",
    )


def test_a_function_that_lost_its_audience_gets_it_back_with_no_build(make_desired):
    wanted = make_desired()
    observed = _converged(wanted)
    env = {k: v for k, v in observed.function.fields[ENV].items() if k != "VERTEX_CRON_AUDIENCE"}
    observed = Observed(
        observed.spec_generations,
        ObservedFunction(observed.function.name, {**observed.function.fields, ENV: env}, URL, SERVICE),
        observed.invoker_members,
        observed.jobs,
    )

    (change,) = planner.plan(wanted, observed, now=NOW).mutations

    assert [(d.field, d.new) for d in change.diffs] == [(f"{ENV}.VERTEX_CRON_AUDIENCE", URL)]
    assert not planner.needs_build(change)


def test_a_function_whose_build_failed_is_rebuilt_then_given_its_url_as_audience(make_desired):
    wanted = make_desired()
    converged = _converged(wanted)
    failed = ObservedFunction(wanted.function.name, {**converged.function.fields, "state": "FAILED"}, "", "")
    observed = Observed(converged.spec_generations, failed, None, converged.jobs)

    rebuild, audience = _by_kind(planner.plan(wanted, observed, now=NOW), Kind.FUNCTION)

    assert planner.needs_build(rebuild)
    assert f"{ENV}.VERTEX_CRON_AUDIENCE" not in [d.field for d in rebuild.diffs]  # kept until the URL is known
    assert [(d.field, d.new) for d in audience.diffs] == [(f"{ENV}.VERTEX_CRON_AUDIENCE", Pending("function URL"))]


# -- where runs may write their outputs ----------------------------------------------------------

ROOT_BUCKETS = "VERTEX_CRON_PIPELINE_ROOT_BUCKETS"


def _root_buckets(wanted) -> str:
    return wanted.function.fields["service_config.environment_variables"][ROOT_BUCKETS]


def test_the_function_allows_the_spec_bucket_and_the_buckets_of_the_schedules_pipeline_roots(make_desired):
    """Without --pipeline-root, a schedule writes under the spec bucket (desired.default_pipeline_root)."""
    eu = ScheduleInput("eu", _SPEC, "0 3 * * *", parameters={"run_date": "x"}, pipeline_root="gs://roots-eu/vc")
    wanted = make_desired(NIGHTLY, eu)

    assert _root_buckets(wanted) == "demo-bucket,roots-eu"


def test_deploying_one_schedule_keeps_the_buckets_of_the_others_calling_the_function(make_desired):
    """Else deploying `nightly` alone would make `hourly`'s firings 403s, lost."""
    wanted = make_desired()
    hourly, job = _other_job("hourly", email=SCHEDULER)
    job.fields["http_target.body"] = {"pipeline_root": "gs://roots-hourly/vc", "spec_uri": "gs://demo-bucket/s"}
    elsewhere, other = _other_job("elsewhere", email=SCHEDULER, url="https://other.run.app")
    other.fields["http_target.body"] = {"pipeline_root": "gs://roots-other-function/vc"}
    observed = _with_jobs(_converged(wanted), (hourly, job), (elsewhere, other))

    resolved = planner.with_pipeline_root_buckets(wanted, observed)
    pruned = planner.with_pipeline_root_buckets(make_desired(prune=True), observed)

    assert _root_buckets(resolved) == "demo-bucket,roots-hourly"
    assert _root_buckets(pruned) == "demo-bucket"  # hourly is deleted
    plan = planner.plan(resolved, observed, now=NOW)
    assert [(d.field, d.new) for d in _by_kind(plan, Kind.FUNCTION)[0].diffs] == [
        (f"service_config.environment_variables.{ROOT_BUCKETS}", "demo-bucket,roots-hourly")
    ]


def test_the_sweep_job_is_deleted_with_the_last_catch_up_schedule_and_then_the_function():
    function = ObservedFunction("projects/p/locations/r/functions/vertex-cron-trigger", {}, URL, SERVICE)
    sweep = "projects/p/locations/r/jobs/vertex-cron-catch-up"

    def job(name, **body):
        return ObservedJob(name, {"http_target.uri": URL, "http_target.body": body})

    jobs = {
        "j/plain": job("j/plain"),
        "j/hourly": job("j/hourly", catch_up="3600s"),
        sweep: job(sweep, sweep="catch_up"),
    }

    def deleted(*names):
        plan = planner.plan_delete(list(names), jobs, function=function, location=HERE)
        return [(c.kind, c.name) for c in plan.changes]

    assert deleted("j/plain") == [(Kind.JOB, "j/plain")]  # hourly still catches up
    assert deleted("j/hourly") == [(Kind.JOB, "j/hourly"), (Kind.JOB, sweep)]  # the sweep calls no pipeline
    assert deleted("j/plain", "j/hourly") == [
        (Kind.JOB, "j/plain"),
        (Kind.JOB, "j/hourly"),
        (Kind.JOB, sweep),
        (Kind.FUNCTION, function.name),
    ]


def test_a_catch_up_schedule_brings_the_sweep_job_and_keeps_its_catch_up_start(make_desired):
    hourly = ScheduleInput("hourly", _SPEC, "0 * * * *", parameters={"run_date": "x"}, catch_up="6h")
    fresh = desired.with_catch_up(make_desired(hourly), {}, now=NOW)
    [schedule, sweep] = fresh.jobs
    assert schedule.body["catch_up"] == "21600s" and schedule.body["catch_up_since"] == "2024-03-30T12:00:00Z"
    assert (sweep.name.rsplit("/", 1)[-1], sweep.schedule, sweep.cron) == ("vertex-cron-catch-up", None, "*/10 * * * *")

    deployed = {schedule.name: ObservedJob(schedule.name, {"http_target.body": {**schedule.body}})}
    later = desired.with_catch_up(make_desired(hourly), deployed, now=datetime(2024, 4, 2, tzinfo=UTC))
    assert later.jobs[0].body["catch_up_since"] == "2024-03-30T12:00:00Z"
    assert [runs.schedule for runs in planner.next_runs(later, NOW)] == ["hourly"]


@pytest.mark.parametrize(
    "changed",
    [{"cron": "0 * * * *"}, {"time_zone": "Europe/Paris"}, {"start_time": "2024-04-01T00:00:00Z"}],
)
def test_changing_a_catch_up_schedules_fire_times_restarts_its_catch_up(make_desired, changed):
    daily = ScheduleInput("daily", _SPEC, "0 3 * * *", parameters={"run_date": "x"}, catch_up="6h")
    first = desired.with_catch_up(make_desired(daily), {}, now=NOW).jobs[0]
    deployed = {first.name: ObservedJob(first.name, {"http_target.body": first.body})}
    later = datetime(2024, 4, 2, tzinfo=UTC)

    redeployed = desired.with_catch_up(make_desired(replace(daily, **changed)), deployed, now=later)

    # Never the fire times of the new cron back to the old start: they were never scheduled.
    assert redeployed.jobs[0].body["catch_up_since"] == "2024-04-02T00:00:00Z"


def test_deleting_the_function_the_sweep_job_calls_deletes_the_sweep_job_too():
    fn_b = ObservedFunction("projects/p/locations/r/functions/fn-b", {}, "https://fn-b-abc-ew.a.run.app", SERVICE)
    sweep = "projects/p/locations/r/jobs/vertex-cron-catch-up"

    def job(name, url, **body):
        return ObservedJob(name, {"http_target.uri": url, "http_target.body": body})

    jobs = {
        "j/hourly": job("j/hourly", URL, catch_up="3600s"),  # on the default function
        "j/b": job("j/b", fn_b.uri, catch_up="3600s"),
        sweep: job(sweep, fn_b.uri, sweep="catch_up"),
    }

    plan = planner.plan_delete(["j/b"], jobs, function=fn_b, location=HERE)

    assert [(c.kind, c.name) for c in plan.changes] == [
        (Kind.JOB, "j/b"),
        (Kind.JOB, sweep),  # it would call a function that is gone
        (Kind.FUNCTION, fn_b.name),
    ]


def test_the_function_named_by_a_cloud_run_url():
    assert planner.function_at("https://vertex-cron-trigger-abcdefghij-ew.a.run.app") == "vertex-cron-trigger"
    assert planner.function_at("https://fn-b-123456789012.europe-west1.run.app") == "fn-b"
    assert planner.function_at("http://127.0.0.1:8080/") is None
