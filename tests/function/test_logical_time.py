from datetime import UTC, datetime, timedelta

import pytest
from vertex_cron_trigger.errors import BadRequest
from vertex_cron_trigger.logical_time import FUTURE_SKEW, logical_time

NOW = datetime(2024, 5, 1, 2, 0, 0, 500_000, tzinfo=UTC)


def test_scheduler_header_wins_and_keeps_milliseconds():
    assert logical_time("2024-04-30T02:00:00.1234Z", cron="* * * * *", time_zone=None, now=NOW) == datetime(
        2024, 4, 30, 2, 0, 0, 123_000, tzinfo=UTC
    )


def test_without_header_the_latest_fire_time_at_or_before_now():
    assert logical_time(None, cron="0 2 * * *", time_zone=None, now=NOW) == datetime(2024, 5, 1, 2, tzinfo=UTC)
    earlier = NOW.replace(hour=1, minute=59)
    assert logical_time(None, cron="0 2 * * *", time_zone=None, now=earlier) == datetime(2024, 4, 30, 2, tzinfo=UTC)


def test_cron_is_read_in_its_time_zone():
    # 02:00 in Paris (CEST, UTC+2) is 00:00 UTC.
    assert logical_time(None, cron="0 2 * * *", time_zone="Europe/Paris", now=NOW) == datetime(
        2024, 5, 1, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("header", "cron", "field"),
    [(None, None, "cron"), (None, "every day", "cron"), ("yesterday", None, "X-CloudScheduler-ScheduleTime")],
)
def test_unusable_inputs_are_bad_requests(header, cron, field):
    with pytest.raises(BadRequest) as caught:
        logical_time(header, cron=cron, time_zone=None, now=NOW)
    assert caught.value.field == field


@pytest.mark.parametrize("header", ["0001-01-01T00:00:00Z", "0999-12-31T23:59:59Z", "1969-12-31T23:59:59.999Z"])
def test_a_schedule_time_before_1970_is_refused(header):
    """Year 1 made the job id `nightly-10101-000000` and a logical time that is not RFC 3339."""
    with pytest.raises(BadRequest) as caught:
        logical_time(header, cron=None, time_zone=None, now=NOW)
    assert caught.value.field == "X-CloudScheduler-ScheduleTime" and "before 1970" in caught.value.message


def test_the_first_accepted_schedule_time():
    assert logical_time("1970-01-01T00:00:00Z", cron=None, time_zone=None, now=NOW).year == 1970


@pytest.mark.parametrize("cron", ["R R * * *", "H 2 * * *", "0 0 2 * * *", "0 2 L * *", "0 2 * * 1#2", "0 2 ? * *"])
def test_only_unix_cron_is_read_so_a_firing_always_gets_the_same_id(cron):
    """croniter would take these; R and H pick a random minute on every call."""
    with pytest.raises(BadRequest, match="not unix-cron") as refused:
        logical_time(None, cron=cron, time_zone=None, now=NOW)
    assert refused.value.field == "cron"


def test_a_cron_that_never_fires_is_a_bad_request():
    with pytest.raises(BadRequest) as refused:
        logical_time(None, cron="0 2 31 2 *", time_zone=None, now=NOW)
    assert refused.value.field == "cron"


def test_a_schedule_time_up_to_the_skew_ahead_is_accepted():
    # Scheduler's and the function's clocks may disagree a little.
    ahead = NOW + FUTURE_SKEW
    assert logical_time(ahead.isoformat(), cron=None, time_zone=None, now=NOW) == ahead.replace(microsecond=500_000)


@pytest.mark.parametrize("ahead", [FUTURE_SKEW + timedelta(milliseconds=1), timedelta(days=1), timedelta(days=3650)])
def test_a_schedule_time_in_the_future_is_refused(ahead):
    # Pre-creating the job id of a future firing would make that firing a `duplicate` that never runs.
    with pytest.raises(BadRequest) as caught:
        logical_time((NOW + ahead).isoformat(), cron=None, time_zone=None, now=NOW)
    assert caught.value.field == "X-CloudScheduler-ScheduleTime"
    assert "future" in caught.value.message
