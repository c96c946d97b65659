"""Which time zone names a schedule may use: the tz database's names of places, and UTC.

Cloud Scheduler takes "a time zone name from the tz database" (its REST reference, Job
`timeZone`), and the tz database keeps many more names than places: legacy names that are
links to a zone (`US/Eastern` -> `America/New_York`, `Asia/Calcutta` -> `Asia/Kolkata`),
abbreviations that are fixed offsets (`EST` is UTC-5 all year, so a job meant for New York
would fire an hour off half the year), POSIX-style rule sets (`EST5EDT`), `Etc/GMT+5` and
its inverted sign, and files that name no zone at all (`localtime`, `Factory`, `posixrules`,
`posix/...`, `right/...`, directories such as `Europe`).

Accepted: the names `zone.tab` lists (one per region of each country, the names people
choose from; some of them are links, e.g. `Europe/Amsterdam`), plus `UTC` and `Etc/UTC`.
Anything else is refused with the name to use where the tz database gives one: the target
of its link (`L TARGET NAME` lines of `tzdata.zi`), or `UTC` for the zero offsets. Both
files come from the tzdata package, the same IANA release the function's zoneinfo reads.
Shared by the function (body.py) and the deployer (validation.py).
"""

from __future__ import annotations

import functools
from datetime import datetime

UTC_NAMES = frozenset({"UTC", "Etc/UTC"})
# A zone of tzdata.zi that stands for no place nor UTC: offset 0 with the abbreviation "-00",
# for machines whose zone was never set.
_NO_PLACE = "Factory"
EXAMPLE = "a place's zone like Europe/Paris or America/New_York, or UTC"


def time_zone_problem(name: str) -> str | None:
    """Why `name` is not a zone a schedule may use (a phrase to follow the name), or None."""
    if name in UTC_NAMES or name in _place_zones():
        return None
    links, zones = _tz_database()
    target = links.get(name, name if name in zones and name != _NO_PLACE else None)
    if target is None:
        spelt = _by_lower_case().get(name.lower())
        if spelt:  # zoneinfo reads files, whose names are case-sensitive
            return f"is not spelt as in the tz database; use {spelt}"
        return f"is not a time zone of the tz database; use {EXAMPLE}"
    offset = _fixed_offset(target)
    if offset == "+00:00":
        return "is a legacy name for UTC in the tz database; use UTC"
    fixed = (
        f" ({name} is a fixed UTC{offset} offset that never changes for summer time: a place that has "
        "summer time needs its own zone, e.g. America/New_York)"
        if offset and (name.isupper() or name.startswith("Etc/"))
        else ""
    )
    if target != name and (target in _place_zones() or target in UTC_NAMES):
        return f"is a legacy name, a link to {target} in the tz database; use {target}{fixed}"
    return f"is not a place's zone in the tz database; use {EXAMPLE}{fixed}"


def place_zones() -> frozenset[str]:
    """Every name a schedule may use."""
    return _place_zones() | UTC_NAMES


@functools.cache
def _place_zones() -> frozenset[str]:
    rows = _tzdata_text("zone.tab").splitlines()
    # COUNTRY-CODE <tab> COORDINATES <tab> TZ [<tab> COMMENTS]
    return frozenset(row.split("\t")[2] for row in rows if row and not row.startswith("#"))


@functools.cache
def _by_lower_case() -> dict[str, str]:
    return {zone.lower(): zone for zone in place_zones()}


@functools.cache
def _tz_database() -> tuple[dict[str, str], frozenset[str]]:
    """({link name: target}, zone names) of tzdata.zi, zic's input: `Z NAME ...` starts a
    zone, `L TARGET NAME` makes a link."""
    links, zones = {}, set()
    for line in _tzdata_text("tzdata.zi").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "L":
            links[fields[2]] = fields[1]
        elif len(fields) >= 2 and fields[0] == "Z":
            zones.add(fields[1])
    return links, frozenset(zones)


def _tzdata_text(name: str) -> str:
    from importlib import resources

    return resources.files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")


def _fixed_offset(zone: str) -> str | None:
    """`+HH:MM` when `zone` (a name of tzdata.zi) keeps one UTC offset all of this year."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    year = datetime.now().year
    offsets = {datetime(year, month, 1, tzinfo=tz).strftime("%z") for month in range(1, 13)}
    if len(offsets) != 1:
        return None
    offset = offsets.pop()
    return f"{offset[:3]}:{offset[3:5]}"
