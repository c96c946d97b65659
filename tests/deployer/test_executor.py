"""The API, planner and executor against the in-memory fake of the seam (fake_cloud.py): a
plan is data that runs alone, values produced by earlier steps are resolved when a step runs,
delete goes through the same executor, and the dry run calls nothing. Fast: no emulator."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fake_cloud import FakeCloud
from vertex_cron import api, desired, errors, executor, function_source, planner
from vertex_cron.gcp import GoogleCloud
from vertex_cron.models import Action, Kind, ScheduleInput, spec_prefix
from vertex_cron.observe import observe
from vertex_cron.progress import Progress
from vertex_cron.quota import SCHEDULER_WRITES_PER_MINUTE, Pacer
from vertex_cron.seam import DeployCloud, DoctorCloud, RunsCloud

NOW = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)
AUDIENCE = "VERTEX_CRON_AUDIENCE"
ENV = "service_config.environment_variables"


class Steps(Progress):
    """The steps progress was told of, in order."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)


@pytest.fixture
def settings(make_settings):
    return make_settings()


@pytest.fixture
def nightly(example_json):
    return ScheduleInput("nightly", example_json, "0 3 * * *", "Europe/Paris", {"run_date": "{{schedule_time}}"})


def _job(cloud, settings, schedule="nightly"):
    return cloud.jobs[desired.job_name(settings.project, settings.region, schedule)]


def test_the_fake_and_google_cloud_both_implement_every_consumers_seam(settings):
    for consumer in (DeployCloud, RunsCloud, DoctorCloud):
        assert isinstance(GoogleCloud(settings), consumer)
    assert isinstance(FakeCloud(), DeployCloud) and isinstance(FakeCloud(), RunsCloud)


def test_a_first_apply_gives_the_jobs_and_the_function_the_url_and_generation_known_only_once_they_exist(
    settings, nightly
):
    cloud = FakeCloud()

    api.deploy(settings, nightly, cloud=cloud, now=NOW)

    (function,) = cloud.functions.values()
    job = _job(cloud, settings)
    assert job.fields["http_target.uri"] == function.uri
    assert job.fields["http_target.oidc_token.audience"] == function.uri
    assert function.fields[ENV][AUDIENCE] == function.uri
    (((bucket, spec), stored),) = cloud.objects.items()
    assert job.fields["http_target.body"]["spec_uri"] == f"gs://{bucket}/{spec}#{stored.generation}"
    assert cloud.invokers[function.service] == {f"serviceAccount:{settings.scheduler_sa}"}
    assert [method for method, _ in cloud.mutations] == [
        "upload_spec",
        "deploy_function",  # created without an audience: it has no URL yet
        "deploy_function",  # its URL as its audience
        "set_invokers",
        "create_job",
    ]


def test_a_reapply_makes_only_reads(settings, nightly):
    cloud = FakeCloud()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)
    cloud.calls.clear()

    plan = api.deploy(settings, nightly, cloud=cloud, now=NOW)

    assert plan.mutations == ()
    assert cloud.mutations == [] and ("write_if_generation", "") not in cloud.calls  # not even the lease


def test_a_plan_runs_alone_from_its_steps(settings, nightly):
    """execute() takes the plan and the seam only: no desired or observed state."""
    cloud = FakeCloud()
    wanted = desired.build(settings, [nightly], source=function_source.build())
    plan = planner.plan(wanted, observe(cloud, wanted), now=NOW)
    cloud.calls.clear()

    executor.execute(plan, cloud, Steps())

    assert planner.plan(wanted, observe(cloud, wanted), now=NOW).mutations == ()
    assert len(cloud.mutations) == len(plan.mutations)


def test_the_dry_run_shows_the_steps_with_values_not_known_yet_and_calls_nothing_that_writes(settings, nightly):
    cloud, progress = FakeCloud(), Steps()

    plan = api.deploy(settings, nightly, cloud=cloud, executor=executor.DRY_RUN, progress=progress, now=NOW)

    assert cloud.mutations == [] and cloud.objects == {}  # no lease either
    assert [(c.kind, c.action) for c in plan.mutations] == [
        (Kind.SPEC, Action.CREATE),
        (Kind.FUNCTION, Action.CREATE),
        (Kind.FUNCTION, Action.UPDATE),
        (Kind.INVOKER, Action.CREATE),
        (Kind.JOB, Action.CREATE),
    ]
    assert progress.steps[1:] == [
        "would be creating function vertex-cron-trigger (building)",
        "would be updating function vertex-cron-trigger",
        f"would be setting roles/run.invoker on <function service> to exactly serviceAccount:{settings.scheduler_sa}",
        "would be creating Scheduler job vertex-cron-nightly",
    ]


def test_a_changed_parameter_updates_only_the_jobs_body_with_its_mask(settings, nightly, example_json):
    cloud = FakeCloud()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)
    cloud.calls.clear()
    changed = ScheduleInput("nightly", example_json, "0 3 * * *", "Europe/Paris", {"run_date": "x", "sample_rows": "5"})

    api.deploy(settings, changed, cloud=cloud, now=NOW)

    assert [method for method, _ in cloud.mutations] == ["update_job"]
    assert _job(cloud, settings).fields["http_target.body"]["parameter_values"] == {"run_date": "x", "sample_rows": 5}


def test_a_failure_half_way_then_a_rerun_converges(settings, nightly):
    cloud = FakeCloud(fail_once={"create_job": errors.Unavailable("create Scheduler job: unavailable")})

    with pytest.raises(errors.Unavailable):
        api.deploy(settings, nightly, cloud=cloud, now=NOW)
    assert cloud.jobs == {} and cloud.functions  # stopped at the job
    cloud.calls.clear()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)

    assert [method for method, _ in cloud.mutations] == ["create_job"]
    assert api.deploy(settings, nightly, cloud=cloud, now=NOW).mutations == ()


def test_a_function_that_ends_without_a_service_stops_before_any_job_is_written(settings, nightly):
    cloud = FakeCloud(serving=False)

    with pytest.raises(errors.DeployError, match="no Cloud Run service or URL .its state is FAILED"):
        api.deploy(settings, nightly, cloud=cloud, now=NOW)

    assert cloud.jobs == {} and cloud.invokers == {}


def test_delete_goes_through_the_planner_and_executor_and_takes_the_function_with_the_last_schedule(
    settings, nightly, example_json
):
    cloud = FakeCloud()
    weekly = ScheduleInput("weekly", example_json, "0 4 * * 1", parameters={"run_date": "x"})
    api.apply(settings, [nightly, weekly], cloud=cloud, now=NOW)

    first = api.delete(settings, ["nightly"], cloud=cloud, progress=(progress := Steps()))
    assert [(c.kind, c.action) for c in first.changes] == [(Kind.JOB, Action.DELETE)]
    assert progress.steps == ["deleting Scheduler job vertex-cron-nightly"]
    assert cloud.functions  # weekly still calls it

    cloud.calls.clear()
    last = api.delete(settings, ["weekly"], purge=True, cloud=cloud)
    assert [c.kind for c in last.changes] == [Kind.JOB, Kind.SPEC, Kind.FUNCTION]
    assert cloud.jobs == {} and cloud.functions == {}
    assert [
        name for (_, name) in cloud.objects if name.startswith(spec_prefix(settings.project, settings.region))
    ] == []


def test_a_dry_run_delete_deletes_nothing_and_takes_no_lease(settings, nightly):
    cloud = FakeCloud()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)
    cloud.calls.clear()

    plan = api.delete(settings, ["nightly"], executor=executor.DRY_RUN, cloud=cloud)

    assert [c.kind for c in plan.changes] == [Kind.JOB, Kind.FUNCTION]
    assert cloud.mutations == [] and [m for m, _ in cloud.calls if m == "write_if_generation"] == []
    assert _job(cloud, settings)


def test_a_service_anyone_may_call_is_refused_before_anything_changes(settings, nightly):
    cloud = FakeCloud()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)
    (function,) = cloud.functions.values()
    cloud.invoker_check_off.add(function.service)
    cloud.calls.clear()

    with pytest.raises(errors.InvokerCheckDisabled):
        api.deploy(settings, nightly, cloud=cloud, now=NOW)
    assert cloud.mutations == []


def test_list_and_status_show_only_the_jobs_vertex_cron_manages(settings, nightly):
    cloud = FakeCloud()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)
    foreign = f"projects/{settings.project}/locations/{settings.region}/jobs/vertex-cron-by-hand"
    cloud.jobs[foreign] = _job(cloud, settings).__class__(foreign, {"description": "someone else's"})

    assert [s.name for s in api.list_schedules(settings, cloud=cloud)] == ["nightly"]
    assert [h.schedule for h in api.status(settings, cloud=cloud, now=NOW)] == ["nightly"]
    assert [m for m, _ in cloud.calls[-2:]] == ["list_jobs", "recent_pipeline_runs"]


def test_pause_and_resume_act_on_the_managed_job(settings, nightly):
    cloud = FakeCloud()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)

    assert api.pause(settings, "nightly", cloud=cloud).job.state == "PAUSED"
    assert api.resume(settings, "nightly", cloud=cloud).job.state == "ENABLED"


def test_a_backfill_delivers_each_firing_with_the_jobs_body(settings, nightly):
    cloud = FakeCloud()
    api.deploy(settings, nightly, cloud=cloud, now=NOW)

    report = api.backfill(
        settings,
        "nightly",
        start=datetime(2024, 3, 1, tzinfo=UTC),
        end=datetime(2024, 3, 3, tzinfo=UTC),
        cloud=cloud,
        now=NOW,
    )

    assert [d.outcome for d in report.delivered] == ["created", "created"]
    url, body, _ = cloud.deliveries[0]
    assert url == next(iter(cloud.functions.values())).uri
    assert json.loads(body) == _job(cloud, settings).fields["http_target.body"]


# -- a fleet: Scheduler writes paced under the quota, a few at a time ---------------------------


class FakeClock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _fleet(example_json, count):
    return [
        ScheduleInput(f"s{i:04d}", example_json, f"{i % 60} 3 * * *", parameters={"run_date": "x"})
        for i in range(count)
    ]


def _quota_held(times, per_minute):
    """No 60 s window holds more than `per_minute` of `times` (to a microsecond: sums of float intervals)."""
    times = sorted(times)
    return all(later - earlier >= 60.0 - 1e-6 for earlier, later in zip(times, times[per_minute:], strict=False))


def test_the_pacer_never_exceeds_the_quota_and_is_no_slower_than_it():
    clock = FakeClock()
    pacer = Pacer(SCHEDULER_WRITES_PER_MINUTE, clock=clock, sleep=clock.sleep)

    times = [pacer.acquire() for _ in range(1200)]

    assert _quota_held(times, 500)
    assert not _quota_held(times, 499)  # exactly the quota's pace, not slower
    assert times[-1] - times[0] == pytest.approx(1199 * 60 / 500)


def test_a_fleet_apply_paces_every_scheduler_write_under_the_quota(settings, example_json):
    clock = FakeClock()
    permits: list[float] = []

    class Counting(Pacer):
        def acquire(self) -> float:
            permits.append(super().acquire())
            return permits[-1]

    cloud = FakeCloud()
    paced = executor.Apply(pacer=Counting(SCHEDULER_WRITES_PER_MINUTE, clock=clock, sleep=clock.sleep))

    api.apply(settings, _fleet(example_json, 600), cloud=cloud, executor=paced, now=NOW)

    job_writes = [call for call in cloud.mutations if call[0] == "create_job"]
    assert len(job_writes) == len(permits) == 600
    assert _quota_held(permits, SCHEDULER_WRITES_PER_MINUTE)


def test_job_writes_run_a_few_at_a_time_and_never_more(settings, example_json):
    concurrency = 4
    together = threading.Barrier(concurrency, timeout=60)  # breaks unless `concurrency` writes are in flight at once
    calls, in_flight, most = [0], [0], [0]
    lock = threading.Lock()

    class Slow(FakeCloud):
        def create_job(self, name, fields):
            with lock:
                calls[0] += 1
                first = calls[0] <= concurrency
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            if first:
                together.wait()
            super().create_job(name, fields)
            with lock:
                in_flight[0] -= 1

    cloud = Slow()
    clock = FakeClock()
    paced = executor.Apply(concurrency=concurrency, pacer=Pacer(500, clock=clock, sleep=clock.sleep))

    api.apply(settings, _fleet(example_json, 12), cloud=cloud, executor=paced, progress=(steps := Steps()), now=NOW)

    assert most[0] == concurrency
    assert len(cloud.jobs) == 12
    jobs_shown = [step for step in steps.steps if "Scheduler job" in step]
    assert jobs_shown == [f"creating Scheduler job vertex-cron-s{i:04d}" for i in range(12)]  # in plan order


def test_after_a_failed_job_write_no_more_start_and_a_rerun_converges(settings, example_json):
    fleet = _fleet(example_json, 20)
    cloud = FakeCloud(fail_once={"create_job": errors.Unavailable("create Scheduler job: unavailable")})

    with pytest.raises(errors.Unavailable):
        api.apply(settings, fleet, cloud=cloud, now=NOW)
    assert len(cloud.jobs) < 20
    api.apply(settings, fleet, cloud=cloud, now=NOW)

    assert len(cloud.jobs) == 20
    assert api.apply(settings, fleet, cloud=cloud, now=NOW).mutations == ()


def test_the_catch_up_sweeps_job_is_written_like_any_job_with_the_url_known_only_once_the_function_exists(
    settings, example_json
):
    cloud = FakeCloud()
    catching_up = ScheduleInput("hourly", example_json, "0 * * * *", parameters={"run_date": "x"}, catch_up="6h")

    api.deploy(settings, catching_up, cloud=cloud, now=NOW)
    sweep = cloud.jobs[desired.sweep_job_name(settings.project, settings.region)]
    (function,) = cloud.functions.values()
    assert sweep.fields["http_target.uri"] == sweep.fields["http_target.oidc_token.audience"] == function.uri

    api.delete(settings, ["hourly"], cloud=cloud)
    assert cloud.jobs == {} and cloud.functions == {}  # the sweep goes with the last catch-up schedule


def test_a_catch_up_schedule_on_another_function_than_the_regions_catch_up_schedules_is_refused(
    make_settings, example_json
):
    cloud = FakeCloud()
    hourly = ScheduleInput("hourly", example_json, "0 * * * *", parameters={"run_date": "x"}, catch_up="6h")
    api.deploy(make_settings(), hourly, cloud=cloud, now=NOW)
    sweep = desired.sweep_job_name("demo-project", "europe-west1")
    swept_by = cloud.jobs[sweep].fields["http_target.uri"]
    before = list(cloud.mutations)

    other = ScheduleInput("other", example_json, "0 4 * * *", parameters={"run_date": "x"}, catch_up="6h")
    with pytest.raises(errors.ValidationError) as refused:
        api.deploy(make_settings(function_name="fn-b"), other, cloud=cloud, now=NOW)

    assert refused.value.exit_code == 2
    assert "use the function vertex-cron-trigger" in refused.value.reason
    assert "--function-name vertex-cron-trigger" in refused.value.reason
    assert cloud.mutations == before

    # Without catch-up it may use fn-b, and the sweep stays with the function of hourly.
    api.deploy(make_settings(function_name="fn-b"), replace(other, catch_up=None), cloud=cloud, now=NOW)
    assert cloud.jobs[sweep].fields["http_target.uri"] == swept_by


def test_resume_says_whether_the_schedule_was_paused(settings, example_json):
    cloud = FakeCloud()
    hourly = ScheduleInput("hourly", example_json, "0 * * * *", parameters={"run_date": "x"}, catch_up="6h")
    api.deploy(settings, hourly, cloud=cloud, now=NOW)

    assert api.resume(settings, "hourly", catch_up=True, cloud=cloud).was_paused is False
    api.pause(settings, "hourly", cloud=cloud)
    assert api.resume(settings, "hourly", catch_up=True, cloud=cloud).was_paused is True


def test_a_catch_up_schedule_redeployed_while_its_function_serves_nothing_is_not_refused(settings, example_json):
    cloud = FakeCloud()
    hourly = ScheduleInput("hourly", example_json, "0 * * * *", parameters={"run_date": "x"}, catch_up="6h")
    daily = ScheduleInput("daily", example_json, "0 3 * * *", parameters={"run_date": "x"}, catch_up="6h")
    api.apply(settings, [hourly, daily], cloud=cloud, now=NOW)
    (function,) = cloud.functions.values()
    failed = {**function.fields, "state": "FAILED"}
    cloud.functions[function.name] = replace(function, fields=failed, uri="", service="")  # a failed build: no URL

    api.deploy(settings, hourly, cloud=cloud, now=NOW)  # repairs it; daily still calls it

    assert cloud.functions[function.name].uri
