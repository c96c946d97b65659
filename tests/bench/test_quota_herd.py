"""The herd under a quota (bench/quota_herd.py) on a small herd: the real function, the
deployer's Scheduler jobs, the catch-up sweep and the emulator's quota in virtual time, so
the counts are exact on any machine. Nothing is timed."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEDULES, PER_MINUTE = 40, 5
CATCH_UP = timedelta(hours=2)  # the small herd is caught up within the hour; fewer sweeps to run
ATTEMPT_DEADLINE = 240  # desired.ATTEMPT_DEADLINE


@pytest.fixture(scope="module")
def quota_herd():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO))
        yield importlib.import_module("bench.quota_herd")


@pytest.fixture(scope="module")
def herds(quota_herd):
    return {
        scenario.name: quota_herd.run(scenario, schedules=SCHEDULES, quota_per_minute=PER_MINUTE, catch_up=CATCH_UP)
        for scenario in quota_herd.scenarios()
    }


def test_every_firing_ends_with_exactly_one_run_within_the_catch_up_window(herds):
    for herd in herds.values():
        assert herd.duplicates == 0 and herd.lost == 0 and herd.runs == SCHEDULES
        assert herd.outcomes.get("created", 0) == herd.on_time  # made by the firings' own answers
        assert herd.caught_up == herd.given_up  # what Scheduler gave up on, the sweep made
        assert herd.goal_met and herd.last_run_seconds <= herd.catch_up_seconds


def test_retries_a_minute_apart_get_a_minutes_quota_each_and_those_sharing_a_minute_get_none(herds):
    before = herds["before issue 14"]
    # Attempts at 0, 30, 90 and 210 s: the 30 s wave shares the first minute.
    assert before.retry_times == [30, 90, 210]
    assert before.on_time == 3 * PER_MINUTE
    assert before.attempts == SCHEDULES + 2 * (SCHEDULES - PER_MINUTE) + (SCHEDULES - 2 * PER_MINUTE)

    deployers = herds["the deployer's (desired.RETRY)"]
    assert deployers.retry_times == [75, 150, 225, 300, 375]
    assert deployers.on_time == 6 * PER_MINUTE  # six waves, six minutes
    assert deployers.given_up == SCHEDULES - 6 * PER_MINUTE and deployers.gave_up_seconds == 375


def test_the_sweep_catches_up_only_once_scheduler_has_given_up(herds):
    deployers = herds["the deployer's (desired.RETRY)"]
    give_up_span = 6 * ATTEMPT_DEADLINE + 375  # six attempts may each run their deadline
    assert deployers.last_run_seconds > give_up_span


def test_without_retries_a_firing_gets_one_attempt_and_the_sweep_does_the_rest(herds):
    alone = herds["no retries"]
    assert alone.retry_times == [] and alone.attempts == SCHEDULES
    assert alone.on_time == PER_MINUTE and alone.caught_up == SCHEDULES - PER_MINUTE
    assert alone.last_run_seconds > herds["the deployer's (desired.RETRY)"].last_run_seconds
