from datetime import timedelta

import pytest
from vertex_cron_trigger.cron_interval import fixed_interval


@pytest.mark.parametrize(
    ("cron", "interval"),
    [
        ("* * * * *", timedelta(minutes=1)),
        ("*/15 * * * *", timedelta(minutes=15)),
        ("5 * * * *", timedelta(hours=1)),
        ("0 */6 * * *", timedelta(hours=6)),
        ("30 2 * * *", timedelta(days=1)),
        ("0 3 * * 1", timedelta(days=7)),
        ("0 3 * * mon", timedelta(days=7)),
    ],
)
def test_a_regular_cron_has_its_interval(cron, interval):
    assert fixed_interval(cron) == interval


@pytest.mark.parametrize(
    "cron",
    ["*/7 * * * *", "0 */5 * * *", "0 3 * * 1-5", "0 2,3 * * *", "0 3 1 * *", "0 3 * 1 *", "61 3 * * *", "0 24 * * *"],
)
def test_any_other_cron_has_none_and_croniter_decides(cron):
    """Steps that do not divide the hour or day, lists, ranges, days of month, months: the
    gaps between their fire times differ."""
    assert fixed_interval(cron) is None
