"""The fixed interval of a few common unix-cron shapes, without croniter (about 60 ms to
import) or unix_cron: the usual firing's report (run_reports.py) needs only the fire time
before its own, and for these shapes that is one interval earlier.

The shapes: every N minutes (N dividing 60), every N hours at minute M (N dividing 24), a
day at H:M, a week at H:M on one day. Any other cron, or a value out of range, is None: the
caller computes its fire times with croniter. The interval is in wall-clock time: across a
daylight-saving change the fire time one interval earlier in UTC is not the previous one,
which a caller detects (no run has that id) and falls back for.
"""

from __future__ import annotations

import re
from datetime import timedelta

_EVERY_MINUTES = re.compile(r"\*(?:/([0-9]{1,2}))? \* \* \* \*")
_HOURLY = re.compile(r"([0-9]{1,2}) \*(?:/([0-9]{1,2}))? \* \* \*")
_DAILY = re.compile(r"([0-9]{1,2}) ([0-9]{1,2}) \* \* \*")
_WEEKLY = re.compile(r"([0-9]{1,2}) ([0-9]{1,2}) \* \* ([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)", re.IGNORECASE)


def fixed_interval(cron: str) -> timedelta | None:
    """The interval between consecutive fire times of `cron` (single spaces between its five
    fields) when it has one of the shapes above, else None."""
    if found := _EVERY_MINUTES.fullmatch(cron):
        step = int(found[1] or 1)
        return timedelta(minutes=step) if 1 <= step <= 60 and 60 % step == 0 else None
    if found := _HOURLY.fullmatch(cron):
        step = int(found[2] or 1)
        return timedelta(hours=step) if int(found[1]) <= 59 and 1 <= step <= 24 and 24 % step == 0 else None
    if (found := _DAILY.fullmatch(cron)) and int(found[1]) <= 59 and int(found[2]) <= 23:
        return timedelta(days=1)
    if (found := _WEEKLY.fullmatch(cron)) and int(found[1]) <= 59 and int(found[2]) <= 23:
        return timedelta(days=7)
    return None
