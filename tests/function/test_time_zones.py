"""The zone names a schedule may use, checked the same by the function and the deployer."""

from __future__ import annotations

import pytest
from vertex_cron_trigger.time_zones import place_zones, time_zone_problem


@pytest.mark.parametrize("name", ["UTC", "Etc/UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Europe/Kyiv"])
def test_places_and_utc_are_accepted(name):
    assert time_zone_problem(name) is None


def test_a_place_listed_by_zone_tab_is_accepted_even_when_the_tz_database_links_it():
    """tzdata.zi has `L Europe/Brussels Europe/Amsterdam`, yet Amsterdam is the place people name."""
    assert time_zone_problem("Europe/Amsterdam") is None and time_zone_problem("Europe/Busingen") is None


@pytest.mark.parametrize(
    ("name", "use"),
    [
        ("US/Eastern", "use America/New_York"),
        ("US/Pacific", "use America/Los_Angeles"),
        ("Asia/Calcutta", "use Asia/Kolkata"),
        ("Europe/Kiev", "use Europe/Kyiv"),
        ("CET", "use Europe/Brussels"),
        ("GMT", "use UTC"),
        ("Etc/GMT", "use UTC"),
        ("Zulu", "use UTC"),
        ("utc", "use UTC"),
        ("europe/paris", "use Europe/Paris"),
    ],
)
def test_legacy_names_and_links_are_refused_with_the_name_to_use(name, use):
    assert use in time_zone_problem(name)


@pytest.mark.parametrize(("name", "offset"), [("EST", "UTC-05:00"), ("MST", "UTC-07:00"), ("Etc/GMT+5", "UTC-05:00")])
def test_fixed_offsets_are_refused_saying_they_never_change(name, offset):
    """EST is UTC-5 all year: a job meant for New York would fire an hour off half the year."""
    problem = time_zone_problem(name)
    assert f"fixed {offset} offset that never changes for summer time" in problem and "America/New_York" in problem


@pytest.mark.parametrize(
    "name",
    [
        "Europe",
        "America/Argentina",
        "localtime",
        "Factory",
        "posixrules",
        "posix/Europe/Paris",
        "right/UTC",
        "../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "Europe/Paris\x00",
        "Mars/Olympus",
        "EST5EDT",
        "",
    ],
)
def test_names_of_no_place_are_refused_without_touching_the_files(name):
    """A directory name made zoneinfo raise IsADirectoryError, a 500 naming an installation path."""
    problem = time_zone_problem(name)
    assert problem and "use" in problem and "/usr" not in problem and "site-packages" not in problem


def test_every_accepted_name_loads():
    from zoneinfo import ZoneInfo

    for name in place_zones():
        ZoneInfo(name)
