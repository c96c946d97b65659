"""A schedule without catch-up is told of its failed runs by its own next run (run_reports.py):
the function served by functions-framework, firings as Cloud Scheduler sends them, runs ended
through the Vertex AI emulator."""

from __future__ import annotations

from typing import Any

from trigger_wire import PARENT, body_for, fire

FIRINGS = ["2024-05-01T02:00:00Z", "2024-05-02T02:00:00Z", "2024-05-03T02:00:00Z", "2024-05-04T02:00:00Z"]


def _job(when: str) -> str:
    return f"nightly-{when[:10].replace('-', '')}-020000"


def _lines(function: Any, outcome: str) -> list[dict[str, Any]]:
    return [line for line in function.log_lines() if line.get("outcome") == outcome]


def test_the_next_run_reports_each_run_that_failed_or_was_cancelled_before_it_once(start_function, emulator, spec):
    function = start_function()
    body = body_for(spec, cron="0 2 * * *")
    assert fire(function, body, schedule_time=FIRINGS[0]).json()["outcome"] == "created"
    assert _lines(function, "run_failed") == []  # the schedule's first run: nothing before it
    emulator.set_pipeline_job_state(_job(FIRINGS[0]), "FAILED", error_message="OOM in train")

    assert fire(function, body, schedule_time=FIRINGS[1]).json()["outcome"] == "created"
    [line] = _lines(function, "run_failed")
    assert line["severity"] == "ERROR" and line["schedule"] == "nightly"
    assert line["job"] == f"{PARENT}/pipelineJobs/{_job(FIRINGS[0])}" and line["logical_time"] == FIRINGS[0]
    assert line["state"] == "FAILED" and line["error"]["message"] == "OOM in train"

    # A second delivery of that firing creates nothing and reports nothing again.
    assert fire(function, body, schedule_time=FIRINGS[1]).json()["outcome"] == "duplicate"
    emulator.set_pipeline_job_state(_job(FIRINGS[1]), "CANCELLED")
    assert fire(function, body, schedule_time=FIRINGS[2]).json()["outcome"] == "created"
    reported = [(line["job"].rsplit("/", 1)[-1], line["state"]) for line in _lines(function, "run_failed")]
    assert reported == [(_job(FIRINGS[0]), "FAILED"), (_job(FIRINGS[1]), "CANCELLED")]


def test_a_catch_up_schedules_runs_are_left_to_the_sweep(start_function, emulator, spec):
    function = start_function()
    body = body_for(spec, cron="0 2 * * *", catch_up="21600s", catch_up_since="2024-05-01T00:00:00Z")
    fire(function, body, schedule_time=FIRINGS[0])
    emulator.set_pipeline_job_state(_job(FIRINGS[0]), "FAILED")
    assert fire(function, body, schedule_time=FIRINGS[1]).json()["outcome"] == "created"
    assert _lines(function, "run_failed") == []


def test_a_report_that_cannot_be_made_is_its_own_error_line_and_the_firing_still_succeeds(
    start_function, emulator, spec
):
    function = start_function()
    body = body_for(spec, cron="0 2 * * *")
    fire(function, body, schedule_time=FIRINGS[0])
    emulator.faults.add_json({"method": "GET", "path": "pipelineJobs", "status": 503, "times": 1})
    response = fire(function, body, schedule_time=FIRINGS[1])
    assert response.status_code == 200 and response.json()["outcome"] == "created"
    [line] = _lines(function, "report_failed")
    assert line["severity"] == "ERROR" and line["schedule"] == "nightly"
    assert line["job"] == f"{PARENT}/pipelineJobs/{_job(FIRINGS[1])}"


def _daily(spec: dict[str, Any], since: str = "2024-05-01T01:00:00Z") -> dict[str, Any]:
    """A schedule without catch-up as the deployer writes it: catch_up_since in every body."""
    return body_for(spec, cron="0 2 * * *", catch_up_since=since)


def test_the_next_run_reports_each_firing_that_made_no_run_before_it_once(start_function, emulator, spec):
    function = start_function()
    body = _daily(spec)
    fire(function, body, schedule_time=FIRINGS[0])
    fire(function, body, schedule_time=FIRINGS[1])
    assert _lines(function, "missed") == []  # the firing before made its run
    # FIRINGS[2]: every attempt failed, or Scheduler skipped it while retrying the one before.
    assert fire(function, body, schedule_time=FIRINGS[3]).json()["outcome"] == "created"

    [line] = _lines(function, "missed")
    assert line["severity"] == "ERROR" and line["logical_time"] == FIRINGS[2]
    assert line["job"] == f"{PARENT}/pipelineJobs/{_job(FIRINGS[2])}"  # the id it would have had
    assert fire(function, body, schedule_time=FIRINGS[3]).json()["outcome"] == "duplicate"
    assert len(_lines(function, "missed")) == 1


def test_times_before_catch_up_since_are_not_missed(start_function, emulator, spec):
    """What the deployer's plain `resume` writes: the paused days are not reported."""
    function = start_function()
    fire(function, _daily(spec), schedule_time=FIRINGS[0])
    resumed = _daily(spec, since="2024-05-03T03:00:00Z")  # paused over FIRINGS[1] and FIRINGS[2]
    assert fire(function, resumed, schedule_time=FIRINGS[3]).json()["outcome"] == "created"
    assert _lines(function, "missed") == []


def test_a_body_without_catch_up_since_reports_no_missed_firing(start_function, emulator, spec):
    """Written before the deployer put it in every body: nothing tells a pause from a miss."""
    function = start_function()
    body = body_for(spec, cron="0 2 * * *")
    fire(function, body, schedule_time=FIRINGS[0])
    fire(function, body, schedule_time=FIRINGS[3])
    assert _lines(function, "missed") == []


def test_a_run_after_longer_than_a_report_looks_back_names_the_rest_in_one_line(start_function, emulator, spec):
    function = start_function()
    body = _daily(spec, since="2024-04-01T01:00:00Z")
    fire(function, body, schedule_time="2024-04-01T02:00:00Z")
    assert fire(function, body, schedule_time=FIRINGS[3]).json()["outcome"] == "created"
    # A daily schedule's report looks back a week: those seven nights are missed, the rest named.
    week = [f"2024-{month:02d}-{day:02d}T02:00:00Z" for month, day in ((4, 27), (4, 28), (4, 29), (4, 30))]
    assert [line["logical_time"] for line in _lines(function, "missed")] == week + FIRINGS[:3]
    [gap] = _lines(function, "report_gap")
    assert gap["severity"] == "ERROR" and gap["schedule"] == "nightly"
    # From where the report before it ended (its run's time less Scheduler's give-up span).
    assert gap["unreported"] == ["2024-04-01T01:28:45Z", "2024-04-27T02:00:00Z"]


def test_two_nights_missed_in_a_row_are_two_lines_and_no_gap(start_function, emulator, spec):
    function = start_function()
    body = _daily(spec)
    fire(function, body, schedule_time=FIRINGS[0])
    fire(function, body, schedule_time=FIRINGS[3])
    assert [line["logical_time"] for line in _lines(function, "missed")] == FIRINGS[1:3]
    assert _lines(function, "report_gap") == []


def test_a_forced_run_during_the_retries_of_a_firing_does_not_call_it_missed(start_function, emulator, spec):
    """Scheduler may still be retrying the morning's firing (a 503) when `vertex-cron run`
    fires: that firing is not missed yet; the next report looks at it once it is settled."""
    function = start_function()
    body = _daily(spec)
    fire(function, body, schedule_time=FIRINGS[0])
    assert fire(function, body, schedule_time="2024-05-02T02:00:40.123Z").json()["outcome"] == "created"
    assert _lines(function, "missed") == []
    # Scheduler's retry at 02:10 made the run after all: nothing is ever called missed.
    fire(function, body, schedule_time=FIRINGS[1])
    fire(function, body, schedule_time=FIRINGS[2])
    assert _lines(function, "missed") == []


def test_a_time_in_an_hour_a_clock_change_repeats_is_never_called_missed(start_function, emulator, spec):
    """Which 02:30 Scheduler fires on the night Paris repeats it is not documented (the sweep
    leaves such times alone too); the ordinary nights around it are missed as usual."""
    function = start_function()
    body = body_for(spec, cron="30 2 * * *", time_zone="Europe/Paris", catch_up_since="2026-10-22T12:00:00Z")
    fire(function, body, schedule_time="2026-10-23T00:30:00Z")  # 02:30 CEST
    # Nothing made on the 24th (02:30 CEST, missed) nor on the 25th (02:30 twice); the 26th is CET.
    assert fire(function, body, schedule_time="2026-10-26T01:30:00Z").json()["outcome"] == "created"
    assert [line["logical_time"] for line in _lines(function, "missed")] == ["2026-10-24T00:30:00Z"]


def test_a_forced_run_reports_the_missed_firing_before_it_and_the_next_run_does_not_again(
    start_function, emulator, spec
):
    function = start_function()
    body = _daily(spec)
    fire(function, body, schedule_time=FIRINGS[0])
    fire(function, body, schedule_time=FIRINGS[1])
    # FIRINGS[2] made no run; `vertex-cron run` fires that morning (Scheduler stamps milliseconds).
    assert fire(function, body, schedule_time="2024-05-03T10:17:03.123Z").json()["outcome"] == "created"
    assert [line["logical_time"] for line in _lines(function, "missed")] == [FIRINGS[2]]

    assert fire(function, body, schedule_time=FIRINGS[3]).json()["outcome"] == "created"
    assert len(_lines(function, "missed")) == 1
