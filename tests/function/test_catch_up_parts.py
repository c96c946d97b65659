"""The pieces the catch-up sweep is built from: the body's two fields, Scheduler's give-up
span, fire times, a job id read back, the per-sweep cap setting."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from vertex_cron_trigger.body import parse_body, parse_request
from vertex_cron_trigger.errors import BadRequest, ConfigError
from vertex_cron_trigger.give_up import DISPATCH_SLACK, give_up_span
from vertex_cron_trigger.logical_time import fire_times, in_clock_change
from vertex_cron_trigger.pipeline_job import job_id, logical_time_of
from vertex_cron_trigger.settings import DEFAULT_CATCH_UP_MAX_RUNS, Settings
from vertex_cron_trigger.sweep import LOOKBACK, report_range, sweep_slot

MINIMAL = {"schedule": "nightly", "spec_uri": "gs://bucket/specs/p.json"}


def parse(**fields):
    return parse_body(json.dumps({**MINIMAL, **fields}).encode())


def test_catch_up_fields_are_typed():
    body = parse(catch_up="21600s", catch_up_since="2024-05-01T00:00:00Z")
    assert body.catch_up == timedelta(hours=6)
    assert body.catch_up_since == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse().catch_up is None and parse().catch_up_since is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"catch_up": "6h"}, "catch_up"),
        ({"catch_up": 21600}, "catch_up"),
        ({"catch_up": "0s"}, "catch_up"),
        ({"catch_up": "1.5s"}, "catch_up"),
        ({"catch_up": f"{40 * 86400}s"}, "catch_up"),
        ({"catch_up_since": "yesterday"}, "catch_up_since"),
        ({"catch_up_since": 0}, "catch_up_since"),
    ],
)
def test_bad_catch_up_fields_are_400s_naming_them(fields, field):
    with pytest.raises(BadRequest) as caught:
        parse(**fields)
    assert caught.value.field == field and field in caught.value.message


def test_the_sweep_body_is_told_apart_and_nothing_else_with_sweep_passes():
    assert parse_request(b'{"sweep": "catch_up"}') is None
    assert parse_request(json.dumps(MINIMAL).encode()).schedule == "nightly"
    for raw in (b'{"sweep": "all"}', b'{"sweep": "catch_up", "schedule": "x"}'):
        with pytest.raises(BadRequest) as caught:
            parse_request(raw)
        assert caught.value.field == "sweep"


def test_give_up_follows_schedulers_documented_backoff():
    # The retry-jobs guide's example: 10 s / 300 s / 3 doublings waits 10, 20, 40, 80, 160, 240, 300, 300.
    retry = {"retryCount": 5, "minBackoffDuration": "10s", "maxBackoffDuration": "300s", "maxDoublings": 3}
    span = give_up_span({"retryConfig": retry, "attemptDeadline": "15s"})
    assert span == timedelta(seconds=6 * 15 + 10 + 20 + 40 + 80 + 160) + DISPATCH_SLACK


def test_give_up_with_defaults_and_with_a_time_limit():
    # No retries: one attempt of the default 3-minute deadline.
    assert give_up_span({}) == timedelta(minutes=3) + DISPATCH_SLACK
    # Retried until both limits are reached: the time limit, a last backoff and an attempt.
    limited = {"retryCount": 1, "maxRetryDuration": "3600s", "maxBackoffDuration": "60s"}
    assert (
        give_up_span({"retryConfig": limited, "attemptDeadline": "30s"})
        == timedelta(seconds=3600 + 60 + 30) + DISPATCH_SLACK
    )


def test_a_retry_config_that_is_not_one_is_a_400():
    with pytest.raises(BadRequest):
        give_up_span({"attemptDeadline": "three minutes"})
    with pytest.raises(BadRequest):
        give_up_span({"retryConfig": {"retryCount": "3"}})


def test_fire_times_are_those_scheduler_gives_in_the_zone_oldest_first():
    start, end = datetime(2024, 5, 1, 22, 0, tzinfo=UTC), datetime(2024, 5, 3, 22, 0, tzinfo=UTC)
    # 02:30 in Paris is 00:30 UTC in summer time.
    assert fire_times("30 2 * * *", "Europe/Paris", start, end) == [
        datetime(2024, 5, 2, 0, 30, tzinfo=UTC),
        datetime(2024, 5, 3, 0, 30, tzinfo=UTC),
    ]
    assert fire_times("0 * * * *", None, start, start + timedelta(hours=3)) == [
        start,
        start + timedelta(hours=1),
        start + timedelta(hours=2),
    ]
    with pytest.raises(BadRequest):
        fire_times("H * * * *", None, start, end)


def test_fire_times_in_a_skipped_or_repeated_hour_are_told_apart():
    def flagged(cron, day):
        start = datetime(*day, 20, tzinfo=UTC)
        times = fire_times(cron, "Europe/Paris", start, start + timedelta(hours=8))
        return [f"{t:%H:%M}" for t in times if in_clock_change(cron, "Europe/Paris", t)]

    assert flagged("30 2 * * *", (2026, 3, 28)) == ["01:00"]  # 02:30 skipped: croniter moves it to 03:00 CEST
    assert flagged("30 2 * * *", (2026, 10, 24)) == ["00:30", "01:30"]  # 02:30 CEST, then 02:30 CET
    assert flagged("*/30 * * * *", (2026, 10, 24)) == ["00:00", "00:30", "01:00", "01:30"]
    assert flagged("*/30 * * * *", (2026, 3, 28)) == []  # no time it names is moved
    assert flagged("0 3 * * *", (2026, 3, 28)) == flagged("30 2 * * *", (2026, 5, 2)) == []
    assert not in_clock_change("30 2 * * *", None, datetime(2026, 10, 25, 2, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    "moment", [datetime(2024, 5, 1, 2, 0, tzinfo=UTC), datetime(2024, 5, 1, 2, 0, 0, 123000, tzinfo=UTC)]
)
def test_a_job_id_gives_back_its_logical_time(moment):
    assert logical_time_of("nightly", job_id("nightly", moment)) == moment
    assert logical_time_of("night", job_id("nightly", moment)) is None
    assert logical_time_of("nightly", "nightly-luigi-abc") is None


def test_the_sweep_reports_the_slot_since_the_previous_sweep_time():
    at = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert sweep_slot(at) == (at - timedelta(minutes=10), at)


def test_the_report_range_starts_at_the_watermark_and_looks_back_one_day_at_most():
    at = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert report_range(None, at) == (sweep_slot(at), None)  # no sweep reported yet
    assert report_range(at, at) == (None, None)  # a retry or forced run of a sweep that reported
    assert report_range(at + timedelta(minutes=10), at) == (None, None)
    assert report_range(at - timedelta(hours=5), at) == ((at - timedelta(hours=5), at), None)
    day_before = at - LOOKBACK
    assert day_before == datetime(2024, 4, 30, 2, 0, tzinfo=UTC)  # the documented 24 h
    assert report_range(day_before - timedelta(hours=6), at) == (
        (day_before, at),
        (day_before - timedelta(hours=6), day_before),
    )


ENV = {
    "VERTEX_CRON_PROJECT": "p",
    "VERTEX_CRON_REGION": "us-central1",
    "VERTEX_CRON_WORKLOAD_SA": "w@p.iam.gserviceaccount.com",
    "VERTEX_CRON_SPEC_BUCKET": "b",
}


def test_the_per_sweep_cap_has_a_safe_default_and_refuses_nonsense():
    assert Settings.from_env(ENV).catch_up_max_runs == DEFAULT_CATCH_UP_MAX_RUNS
    assert Settings.from_env({**ENV, "VERTEX_CRON_CATCH_UP_MAX_RUNS": "5"}).catch_up_max_runs == 5
    for bad in ("0", "-1", "ten", "100000"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({**ENV, "VERTEX_CRON_CATCH_UP_MAX_RUNS": bad})
        assert "VERTEX_CRON_CATCH_UP_MAX_RUNS" in caught.value.message


def test_a_firing_is_taken_as_skipped_if_the_limit_was_reached_before_its_last_delivery_could_come():
    """The function counts active runs when a delivery reaches it, which retries can make
    later than the fire time: a run created in between (a forced run) may have caused a skip."""
    from vertex_cron_trigger.run_history import at_limit

    fire_time = datetime(2024, 5, 1, 2, tzinfo=UTC)
    forced = {"createTime": "2024-05-01T02:10:00Z"}  # still running
    ended_before = {"createTime": "2024-05-01T01:00:00Z", "endTime": "2024-05-01T01:59:00Z"}
    assert not at_limit([forced, ended_before], fire_time, 1)
    assert at_limit([forced, ended_before], fire_time, 1, within=timedelta(minutes=31))
    assert not at_limit([forced, ended_before], fire_time, 1, within=timedelta(minutes=5))
    assert not at_limit([forced], fire_time, 2, within=timedelta(minutes=31))
    assert not at_limit([forced], fire_time, None, within=timedelta(minutes=31))
