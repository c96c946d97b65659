"""The catch-up sweep end to end: Scheduler jobs with the bodies the contract fixes
(vertex_cron_trigger.catch_up) in the emulator, the function served by functions-framework,
the sweep job's request as Cloud Scheduler sends it. Fire times are relative to the real
clock: the function reads its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from trigger_wire import (
    INVOKER,
    PARENT,
    PROJECT,
    REGION,
    body_for,
    fire,
    function_env,
    jobs_of,
    scheduler_job,
    upload,
)
from vertex_cron_trigger.catch_up import SWEEP_BODY
from vertex_cron_trigger.google_rest import GoogleRest
from vertex_cron_trigger.settings import Settings
from vertex_cron_trigger.timefmt import format_rfc3339

# A catch-up window shorter than Scheduler's give-up span (QUICK_GIVE_UP: 75 s): the sweep
# catches nothing up, and calls a fire time with no run missed once Scheduler gave up on it.
TINY_WINDOW = "60s"
SWEEP_EVERY = timedelta(minutes=10)  # catch_up.SWEEP_CRON
MINUTE = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _last_sweep_time(now: datetime) -> datetime:
    return now.replace(minute=now.minute - now.minute % 10, second=0)


def _scheduler_job(emulator: Any, function: Any, name: str, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return scheduler_job(emulator, function.url, name, body, **fields)


def _catch_up_body(spec: dict[str, Any], *, since: datetime, window: str = "3600s", **fields: Any) -> dict[str, Any]:
    return body_for(spec, cron="*/5 * * * *", catch_up=window, catch_up_since=format_rfc3339(since), **fields)


def _sweep(function: Any, sweep_time: datetime | None = None, token: str | None = None) -> requests.Response:
    return fire(function, SWEEP_BODY, schedule_time=format_rfc3339(sweep_time or _last_sweep_time(_now())), token=token)


def _expected_times(now: datetime, since: datetime, window: timedelta) -> list[datetime]:
    """Every */5 time in [max(now - window, since), now - 75 s) (the quick give-up span)."""
    start, end = max(now - window, since), now - timedelta(seconds=75)
    first = start.replace(minute=start.minute - start.minute % 5, second=0)
    times = [first + timedelta(minutes=5 * i) for i in range(30)]
    return [t for t in times if start <= t < end]


def _ids(times: list[datetime]) -> list[str]:
    return [f"{PARENT}/pipelineJobs/nightly-{t:%Y%m%d-%H%M%S}" for t in times]


def test_the_sweep_creates_each_missing_firing_as_the_on_time_firing_would(start_function, emulator, spec):
    function = start_function()
    now = _now()
    since = now - timedelta(hours=3)
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=since))
    expected = _expected_times(now, since, timedelta(hours=1))
    on_time = expected[-1]
    assert fire(function, body_for(spec), schedule_time=format_rfc3339(on_time)).json()["outcome"] == "created"

    response = _sweep(function)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "swept"
    summary = answer["schedules"]["nightly"]
    assert summary["created"] in (len(expected) - 1, len(expected)), summary  # a time may pass the bound meanwhile
    assert summary["existing"] == 1 and summary["capped"] == 0 and summary["catch_up"] is True
    jobs = jobs_of(emulator)
    assert set(_ids(expected)) <= set(jobs)
    assert answer["created_jobs"] == sorted(answer["created_jobs"])  # oldest first
    oldest = jobs[_ids(expected)[0]]
    # Parameters rendered for the run's own logical time, exactly as on time.
    assert oldest["runtimeConfig"]["parameterValues"]["run_date"] == f"{expected[0]:%Y-%m-%d}"
    assert oldest["labels"]["vertex-cron-schedule"] == "nightly"
    assert oldest["displayName"] == f"nightly {format_rfc3339(expected[0])}"
    [line] = [line for line in function.log_lines() if line["outcome"] == "swept"]
    assert line["sweep"]["schedules"]["nightly"] == summary and line["severity"] == "INFO"

    again = _sweep(function).json()["schedules"]["nightly"]
    assert again["created"] == 0 and again["existing"] >= len(expected)
    assert len(jobs_of(emulator)) == len(jobs)


def test_nothing_before_catch_up_since_or_outside_start_and_end_time_is_created(start_function, emulator, spec):
    function = start_function()
    now = _now()
    since = now - timedelta(minutes=30)
    end_time = now - timedelta(minutes=12)
    _scheduler_job(
        emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=since, end_time=format_rfc3339(end_time))
    )
    answer = _sweep(function).json()
    created = {job["name"] for job in emulator.pipeline_jobs()}
    expected = set(_ids([t for t in _expected_times(now, since, timedelta(hours=1)) if t < end_time]))
    assert expected and created == expected and answer["schedules"]["nightly"]["created"] == len(expected)


def test_a_sweep_creates_at_most_the_cap_oldest_first_and_the_next_sweep_goes_on(start_function, emulator, spec):
    function = start_function(VERTEX_CRON_CATCH_UP_MAX_RUNS="3")
    now = _now()
    since = now - timedelta(hours=3)
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=since))
    expected = _expected_times(now, since, timedelta(hours=1))

    first = _sweep(function)
    assert first.status_code == 200
    summary = first.json()["schedules"]["nightly"]
    assert summary["created"] == 3 and summary["capped"] >= len(expected) - 3
    assert sorted(jobs_of(emulator)) == _ids(expected)[:3]
    [line] = [line for line in function.log_lines() if line["outcome"] == "swept"]
    assert line["severity"] == "WARNING"  # the backlog is not worked off yet

    _sweep(function)
    assert sorted(jobs_of(emulator)) == _ids(expected)[:6]


def test_paused_and_other_functions_schedules_and_those_without_catch_up_are_not_caught_up(
    start_function, emulator, spec
):
    function = start_function()
    since = _now() - timedelta(hours=3)
    paused = _scheduler_job(
        emulator, function, "vertex-cron-paused", _catch_up_body(spec, since=since, schedule="paused")
    )
    requests.post(f"{emulator.url}/v1/{paused['name']}:pause", json={}, timeout=30).raise_for_status()
    _scheduler_job(emulator, function, "vertex-cron-plain", body_for(spec, schedule="plain"))
    elsewhere = dict(_catch_up_body(spec, since=since, schedule="elsewhere"))
    job = _scheduler_job(emulator, function, "vertex-cron-elsewhere", elsewhere)
    patched = {"httpTarget": {**job["httpTarget"], "uri": "https://other-function.example/"}}
    requests.patch(
        f"{emulator.url}/v1/{job['name']}", params={"updateMask": "httpTarget"}, json=patched, timeout=30
    ).raise_for_status()

    answer = _sweep(function).json()
    assert answer["outcome"] == "swept"
    assert answer["schedules"]["paused"]["paused"] is True
    assert answer["schedules"]["plain"]["catch_up"] is False and answer["schedules"]["plain"]["created"] == 0
    assert "elsewhere" not in answer["schedules"]
    assert jobs_of(emulator) == {}


def test_a_bad_schedule_is_named_and_the_others_are_still_swept(start_function, emulator, spec):
    function = start_function()
    since = _now() - timedelta(hours=3)
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=since))
    _scheduler_job(
        emulator, function, "vertex-cron-broken", _catch_up_body(spec, since=since, schedule="broken", window="6h")
    )
    response = _sweep(function)
    # For good (a body the function refuses): no Scheduler retry, which would repeat the reports.
    assert response.status_code == 200
    answer = response.json()
    assert answer["outcome"] == "swept" and "catch_up" in answer["schedules"]["broken"]["error"]
    assert answer["schedules"]["nightly"]["created"] > 0
    [line] = [line for line in function.log_lines() if line["outcome"] == "swept"]
    assert line["severity"] == "ERROR" and "1 of them failing" in line["message"]


def test_a_transient_failure_is_a_503_scheduler_retries(start_function, emulator, spec):
    function = start_function()
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=_now() - timedelta(hours=3)))
    emulator.faults.add_json({"method": "POST", "path": "pipelineJobs", "status": 429, "times": 1})
    response = _sweep(function)
    assert response.status_code == 503 and response.json()["outcome"] == "failed"
    assert "429" in response.json()["schedules"]["nightly"]["error"]
    retried = _sweep(function)  # Scheduler's retry: the same schedule time
    assert retried.status_code == 200 and retried.json()["schedules"]["nightly"]["created"] > 0


def test_the_sweep_takes_the_same_token_checks_as_a_firing(start_function, emulator, spec, oidc_issuer):
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=_now() - timedelta(hours=3)))
    intruder = oidc_issuer.mint(audience=function.url, email="intruder@wire-project.iam.gserviceaccount.com")
    assert _sweep(function, token=intruder).status_code == 403
    assert _sweep(function).status_code == 401
    assert jobs_of(emulator) == {}
    good = oidc_issuer.mint(audience=function.url, email=INVOKER)
    assert _sweep(function, token=good).json()["schedules"]["nightly"]["created"] > 0


def test_a_sweep_body_other_than_the_contracts_is_a_400(start_function, emulator, spec):
    function = start_function()
    response = fire(function, {"sweep": "everything"})
    assert response.status_code == 400 and response.json()["field"] == "sweep"


def test_runs_of_a_catch_up_schedule_that_failed_or_were_cancelled_in_the_sweeps_slot_are_reported_once(
    start_function, emulator, spec
):
    function = start_function()
    now = _now()
    sweep_time = _last_sweep_time(now)
    # Catch-up since now: nothing to catch up, only reports (schedules without catch-up: run_reports).
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=now))
    weekly = body_for(spec, cron="0 3 * * 1") | {"schedule": "weekly"}
    _scheduler_job(emulator, function, "vertex-cron-weekly", weekly, schedule="0 3 * * 1")
    weekly_time = sweep_time - timedelta(days=7)
    fire(function, weekly, schedule_time=format_rfc3339(weekly_time))
    for hour in (1, 2, 3):
        fire(function, body_for(spec), schedule_time=format_rfc3339(sweep_time - timedelta(hours=hour)))
    real_clock = emulator.clock
    emulator.clock = lambda: (sweep_time - timedelta(minutes=5)).timestamp()  # the runs end inside the slot
    emulator.set_pipeline_job_state(_id(sweep_time - timedelta(hours=1)), "FAILED", error_message="OOM in train")
    emulator.set_pipeline_job_state(_id(sweep_time - timedelta(hours=2)), "CANCELLED")
    emulator.set_pipeline_job_state(_id(sweep_time - timedelta(hours=3)), "SUCCEEDED")
    emulator.set_pipeline_job_state(f"weekly-{weekly_time:%Y%m%d-%H%M%S}", "FAILED")
    emulator.clock = real_clock

    answer = _sweep(function, sweep_time).json()
    assert answer["schedules"]["nightly"]["run_failed"] == 2
    assert answer["schedules"]["weekly"]["run_failed"] == 0  # no catch-up: its next run reports it
    reports = sorted(
        (line for line in function.log_lines() if line["outcome"] == "run_failed"), key=lambda report: report["state"]
    )
    assert [(r["state"], r["severity"], r["schedule"]) for r in reports] == [
        ("CANCELLED", "ERROR", "nightly"),
        ("FAILED", "ERROR", "nightly"),
    ]
    failed = reports[1]
    assert failed["logical_time"] == format_rfc3339(sweep_time - timedelta(hours=1))
    assert failed["job"] == f"{PARENT}/pipelineJobs/{_id(sweep_time - timedelta(hours=1))}"
    assert failed["error"]["message"] == "OOM in train" and "OOM in train" in failed["message"]
    # A sweep of an earlier time, or of the same (Scheduler's retry, a forced run), reports nothing twice.
    for again in (sweep_time - SWEEP_EVERY, sweep_time):
        assert _sweep(function, again).json()["reported"] is None
    assert len([line for line in function.log_lines() if line["outcome"] == "run_failed"]) == 2


def test_a_firing_scheduler_gave_up_on_is_reported_missed_once(start_function, emulator, spec):
    function = start_function()
    sweep_time = _last_sweep_time(_now())
    real_clock = emulator.clock
    emulator.clock = lambda: (sweep_time - timedelta(hours=1)).timestamp()  # the job was written an hour ago
    _scheduler_job(emulator, function, "vertex-cron-nightly", body_for(spec, cron="*/5 * * * *", catch_up=TINY_WINDOW))
    emulator.clock = real_clock
    # Fire times whose give-up (75 s after) falls in [sweep_time - 10 min, sweep_time): two.
    gave_up = [sweep_time - timedelta(minutes=10), sweep_time - timedelta(minutes=5)]
    assert fire(function, body_for(spec), schedule_time=format_rfc3339(gave_up[0])).json()["outcome"] == "created"

    # The first sweep reports its own ten minutes: two times gave up in them.
    first = _sweep(function, sweep_time - SWEEP_EVERY).json()
    assert first["schedules"]["nightly"]["missed"] == 2
    assert first["reported"] == [format_rfc3339(sweep_time - 2 * SWEEP_EVERY), format_rfc3339(sweep_time - SWEEP_EVERY)]
    answer = _sweep(function, sweep_time).json()
    assert answer["schedules"]["nightly"]["missed"] == 1
    lines = [line for line in function.log_lines() if line["outcome"] == "missed"]
    assert [line["logical_time"] for line in lines] == [
        format_rfc3339(moment) for moment in (sweep_time - 2 * SWEEP_EVERY, sweep_time - 15 * MINUTE, gave_up[1])
    ]
    missed = lines[-1]
    assert missed["severity"] == "ERROR" and missed["job"] == f"{PARENT}/pipelineJobs/{_id(gave_up[1])}"
    assert "left the catch-up window" in missed["message"]


def _id(moment: datetime) -> str:
    return f"nightly-{moment:%Y%m%d-%H%M%S}"


def test_a_run_failed_through_the_emulators_control_endpoint_is_reported_with_its_error(start_function, emulator, spec):
    function = start_function()
    sweep_time = _last_sweep_time(_now())
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=sweep_time))
    rule = {"matching": "^nightly-", "message": "The DAG failed because some tasks failed.", "code": 9}
    requests.post(f"{emulator.url}/_emulator/pipelineJobs:fail", json=rule, timeout=30).raise_for_status()
    emulator.pipeline_pending_seconds = emulator.pipeline_running_seconds = 0.0
    real_clock = emulator.clock
    emulator.clock = lambda: (sweep_time - timedelta(minutes=5)).timestamp()  # created and ended in the slot
    fire(function, body_for(spec), schedule_time=format_rfc3339(sweep_time - timedelta(minutes=5)))
    [run] = emulator.pipeline_jobs()
    emulator.clock = real_clock
    assert run["state"] == "PIPELINE_STATE_FAILED"

    assert _sweep(function, sweep_time).json()["schedules"]["nightly"]["run_failed"] == 1
    [report] = [line for line in function.log_lines() if line["outcome"] == "run_failed"]
    assert report["error"] == {"code": 9, "message": rule["message"]} and report["job"] == run["name"]
    calls = requests.get(f"{emulator.url}/_emulator/calls", timeout=30).json()
    assert calls["violations"] == []  # every call the sweep made is one Google's Discovery documents allow


def test_the_local_dispatcher_fires_the_sweep_job_which_catches_up_a_firing_scheduler_gave_up_on(
    start_function, emulator, spec, oidc_issuer
):
    from vertex_cron_local.dispatcher import LocalScheduler

    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    now = _now()
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=now - timedelta(hours=3)))
    sweep = _scheduler_job(emulator, function, "vertex-cron-catch-up", SWEEP_BODY, schedule="*/10 * * * *")
    dispatcher = LocalScheduler(emulator, oidc_issuer)  # not started: deliveries on demand only
    lost_time = _expected_times(now, now - timedelta(hours=3), timedelta(hours=1))[-1]
    # Vertex AI refuses every create of that firing's only attempt (retryCount 0): Scheduler gives up.
    emulator.faults.add_json({"method": "POST", "path": "pipelineJobs", "status": 429, "times": 1})
    assert not dispatcher.deliver("vertex-cron-nightly", lost_time).succeeded
    assert jobs_of(emulator) == {}

    swept = dispatcher.deliver(sweep["name"], _last_sweep_time(_now()))

    assert swept.succeeded, swept.final.body
    assert f"{PARENT}/pipelineJobs/{_id(lost_time)}" in jobs_of(emulator)
    assert json.loads(swept.final.body)["schedules"]["nightly"]["created"] >= 1


def test_times_the_schedule_was_at_max_concurrent_runs_are_skipped_not_caught_up(start_function, emulator, spec):
    function = start_function()
    now = _now()
    since = now - timedelta(hours=3)
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=since, max_concurrent_runs=1))
    expected = _expected_times(now, since, timedelta(hours=1))
    emulator.pipeline_running_seconds = float("inf")  # the first run is still running
    real_clock = emulator.clock
    emulator.clock = lambda: expected[0].timestamp()
    assert fire(function, body_for(spec), schedule_time=format_rfc3339(expected[0])).json()["outcome"] == "created"
    emulator.clock = real_clock

    summary = _sweep(function).json()["schedules"]["nightly"]

    assert summary["created"] == 0 and summary["existing"] == 1
    assert summary["skipped"] >= len(expected) - 2  # a time may pass the bound meanwhile
    assert sorted(jobs_of(emulator)) == _ids(expected[:1])
    # Only times before the running run began (leaving the window now) can be missed.
    missed = [line["logical_time"] for line in function.log_lines() if line["outcome"] == "missed"]
    assert all(moment < format_rfc3339(expected[0]) for moment in missed), missed


def test_a_schedule_at_max_concurrent_runs_does_not_use_up_the_cap_of_the_others(start_function, emulator, spec):
    function = start_function(VERTEX_CRON_CATCH_UP_MAX_RUNS="6")
    now = _now()
    since = now - timedelta(hours=3)
    _scheduler_job(
        emulator,
        function,
        "vertex-cron-busy",
        _catch_up_body(spec, since=since, schedule="busy", max_concurrent_runs=1),
    )
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=since))
    expected = _expected_times(now, since, timedelta(hours=1))
    assert len(expected) >= 6
    emulator.pipeline_running_seconds = float("inf")  # busy's caught-up run keeps its one slot

    schedules = _sweep(function).json()["schedules"]

    # busy: its oldest time made a run, its next came back skipped, the rest wait for later
    # sweeps without taking attempts; nightly gets every other attempt of the six.
    assert schedules["busy"]["created"] == 1 and schedules["busy"]["skipped"] == 1
    assert schedules["nightly"]["created"] == 4
    assert sorted(name for name in jobs_of(emulator) if "/nightly-" in name) == _ids(expected)[:4]


def test_the_runs_listed_come_without_their_pipeline_spec_but_with_what_the_sweep_reads(
    start_function, emulator, spec, storage_emulator
):
    function = start_function()
    assert fire(function, body_for(spec)).json()["outcome"] == "created"
    rest = GoogleRest(Settings.from_env(function_env(emulator.url, storage_emulator.url, spec["bucket"])))

    [run] = rest.list_pipeline_jobs('labels.vertex-cron-schedule="nightly"', action="listing")

    # An hourly schedule's week of runs would otherwise bring every compiled pipeline along.
    assert "pipelineSpec" not in run and "runtimeConfig" not in run
    assert run["name"].endswith("/nightly-20240501-020000") and run["labels"]["vertex-cron-schedule"] == "nightly"
    assert run["state"].startswith("PIPELINE_STATE_") and run["createTime"]


def _outcomes(function: Any, outcome: str) -> list[dict[str, Any]]:
    return [line for line in function.log_lines() if line["outcome"] == outcome]


def test_the_ten_minutes_of_a_sweep_that_failed_throughout_are_reported_once_by_the_next(
    start_function, emulator, spec
):
    function = start_function()
    latest = _last_sweep_time(_now())
    first, lost = latest - 2 * SWEEP_EVERY, latest - SWEEP_EVERY
    real_clock = emulator.clock
    emulator.clock = lambda: (latest - timedelta(hours=1)).timestamp()  # written an hour ago, never fired
    _scheduler_job(emulator, function, "vertex-cron-plain", body_for(spec, schedule="plain", catch_up=TINY_WINDOW))
    emulator.clock = real_clock
    # A catch-up schedule (the sweep reports its runs) with nothing to catch up, whose run of
    # first + 5 min failed inside the lost sweep's ten minutes.
    nightly = _catch_up_body(spec, since=_now())
    _scheduler_job(emulator, function, "vertex-cron-nightly", nightly)
    failed_time = first + 5 * MINUTE
    fire(function, nightly, schedule_time=format_rfc3339(failed_time))
    emulator.clock = lambda: (lost - 2 * MINUTE).timestamp()
    emulator.set_pipeline_job_state(_id(failed_time), "FAILED", error_message="OOM in train")
    emulator.clock = real_clock
    assert _sweep(function, first).json()["reported"] == [format_rfc3339(first - SWEEP_EVERY), format_rfc3339(first)]

    # The sweep of `lost` fails throughout, Scheduler's retries included: Cloud Scheduler unreadable.
    emulator.faults.add_json({"method": "GET", "path": "/jobs$", "status": 503, "times": None})
    for _attempt in range(3):
        assert _sweep(function, lost).status_code == 503
    emulator.faults.clear()
    assert not _outcomes(function, "run_failed")

    answer = _sweep(function, latest).json()

    assert answer["reported"] == [format_rfc3339(first), format_rfc3339(latest)]
    [run_failed] = _outcomes(function, "run_failed")
    assert (
        run_failed["logical_time"] == format_rfc3339(failed_time) and run_failed["error"]["message"] == "OOM in train"
    )
    # Every fire time whose give-up came before `latest` is called missed once, in order,
    # those of the lost ten minutes included.
    expected = [first - 10 * MINUTE + i * 5 * MINUTE for i in range(6)]
    assert [(line["schedule"], line["logical_time"]) for line in _outcomes(function, "missed")] == [
        ("plain", format_rfc3339(t)) for t in expected
    ]
    # Scheduler's retry of the sweep that reported (or a forced run) writes nothing again.
    retried = _sweep(function, latest)
    assert retried.status_code == 200 and retried.json()["reported"] is None
    assert len(_outcomes(function, "missed")) == len(expected) and len(_outcomes(function, "run_failed")) == 1


def test_a_stretch_older_than_the_lookback_is_one_report_gap_line_and_the_last_day_is_reported(
    start_function, emulator, spec, storage_emulator
):
    function = start_function()
    latest = _last_sweep_time(_now())
    # A yearly catch-up job: no fire time in the day to be called missed, only the failed run to report.
    nightly = _catch_up_body(spec, since=_now())
    _scheduler_job(emulator, function, "vertex-cron-nightly", nightly, schedule="0 0 1 1 *")
    failed_time = latest - timedelta(hours=3)
    fire(function, nightly, schedule_time=format_rfc3339(failed_time))
    real_clock = emulator.clock
    emulator.clock = lambda: (failed_time + 20 * MINUTE).timestamp()
    emulator.set_pipeline_job_state(_id(failed_time), "FAILED")
    emulator.clock = real_clock
    # The last sweep that reported ran 30 hours ago (the function was down since).
    reported_through = latest - timedelta(hours=30)
    watermark_json = json.dumps({"reported_through": format_rfc3339(reported_through)}).encode()
    upload(storage_emulator.url, spec["bucket"], f"vertex-cron/sweep/{PROJECT}/{REGION}.json", watermark_json)

    answer = _sweep(function, latest).json()

    one_day_back = latest - timedelta(hours=24)
    assert answer["reported"] == [format_rfc3339(one_day_back), format_rfc3339(latest)]
    [gap] = _outcomes(function, "report_gap")
    assert gap["severity"] == "ERROR"
    assert gap["unreported"] == [format_rfc3339(reported_through), format_rfc3339(one_day_back)]
    assert format_rfc3339(reported_through) in gap["message"]
    [run_failed] = _outcomes(function, "run_failed")
    assert run_failed["logical_time"] == format_rfc3339(failed_time)
    assert _sweep(function, latest).json()["reported"] is None and len(_outcomes(function, "report_gap")) == 1


@pytest.mark.parametrize(
    ("storage_status", "answer_status", "says"), [(503, 503, "503"), (403, 500, "storage.objects.get")]
)
def test_a_watermark_that_cannot_be_read_fails_the_sweep_loudly_but_runs_are_still_caught_up(
    start_function, emulator, spec, storage_emulator, storage_status, answer_status, says
):
    function = start_function()
    latest = _last_sweep_time(_now())
    real_clock = emulator.clock
    emulator.clock = lambda: (latest - timedelta(hours=1)).timestamp()
    _scheduler_job(emulator, function, "vertex-cron-plain", body_for(spec, schedule="plain", catch_up=TINY_WINDOW))
    emulator.clock = real_clock
    assert _sweep(function, latest - 2 * SWEEP_EVERY).json()["reported"]
    _scheduler_job(emulator, function, "vertex-cron-nightly", _catch_up_body(spec, since=_now() - timedelta(hours=3)))

    rule = {"method": "GET", "path": "/vertex-cron/sweep/", "status": storage_status, "times": None}
    storage_emulator.faults.add_json(rule)
    try:
        failed = _sweep(function, latest - SWEEP_EVERY)
    finally:
        storage_emulator.faults.clear()

    assert failed.status_code == answer_status and failed.json()["outcome"] == "failed"
    assert failed.json()["reported"] is None and failed.json()["schedules"]["nightly"]["created"] > 0
    [line] = [line for line in function.log_lines() if line["outcome"] == "failed"]
    assert line["severity"] == "ERROR" and "watermark" in line["message"] and says in line["message"]
    # The next sweep reports the ten minutes the failed one could not, and its own.
    answer = _sweep(function, latest).json()
    assert answer["reported"] == [format_rfc3339(latest - 2 * SWEEP_EVERY), format_rfc3339(latest)]
    plain = [line["logical_time"] for line in _outcomes(function, "missed") if line["schedule"] == "plain"]
    assert plain == [format_rfc3339(latest - 3 * SWEEP_EVERY + i * 5 * MINUTE) for i in range(6)]
