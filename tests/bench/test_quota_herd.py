"""The herd under a quota (bench/quota_herd.py) on a small herd: the real function, the
deployer's Scheduler jobs and the emulator's quota in virtual time, so the counts are exact
on any machine. Nothing is timed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEDULES, PER_MINUTE = 40, 5


@pytest.fixture(scope="module")
def quota_herd():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO))
        yield importlib.import_module("bench.quota_herd")


@pytest.fixture(scope="module")
def herds(quota_herd):
    return {
        scenario.name: quota_herd.run(scenario, schedules=SCHEDULES, quota_per_minute=PER_MINUTE)
        for scenario in quota_herd.scenarios()
    }


def test_every_firing_has_one_run_or_is_counted_lost(herds):
    for herd in herds.values():
        assert herd.duplicates == 0
        assert herd.runs + herd.lost == SCHEDULES
        assert herd.outcomes.get("created", 0) == herd.runs  # made by the function's own answers
        assert herd.refused == herd.outcomes.get("failed", 0)  # each 429 became a 503 Scheduler retried


def test_retries_a_minute_apart_get_a_minutes_quota_each_and_those_sharing_a_minute_get_none(herds):
    before = herds["before issue 14"]
    # Attempts at 0, 30, 90 and 210 s: the 30 s wave shares the first minute.
    assert before.retry_times == [30, 90, 210]
    assert before.runs == 3 * PER_MINUTE
    assert before.attempts == SCHEDULES + 2 * (SCHEDULES - PER_MINUTE) + (SCHEDULES - 2 * PER_MINUTE)

    deployers = herds["the deployer's (desired.RETRY)"]
    assert deployers.retry_times == [75, 150, 225, 300, 375]
    assert deployers.runs == 6 * PER_MINUTE  # six waves, six minutes
    assert deployers.gave_up_seconds == 375


def test_without_retries_a_firing_gets_one_attempt(herds):
    alone = herds["no retries"]
    assert alone.retry_times == [] and alone.attempts == alone.create_requests == SCHEDULES
    assert alone.runs == PER_MINUTE and alone.lost == SCHEDULES - PER_MINUTE
