"""When Cloud Scheduler has given up on a firing: the span after a fire time within which it
may still be delivering (and retrying) it, from the job's own `retryConfig` and
`attemptDeadline`. Until then a fire time without its run is not missed yet.

Sourced from the Cloud Scheduler v1 Discovery document (RetryConfig, Job.attemptDeadline):
- each attempt may run for `attemptDeadline` (HTTP targets: default 3 minutes);
- retry i (from 0) waits `minBackoffDuration` (default 5 s) doubled min(i, maxDoublings)
  times (default 5), then "increases linearly" by that last doubled interval, capped at
  `maxBackoffDuration` (default 1 hour): 10 s / 300 s / 3 doublings gives 10, 20, 40, 80,
  160, 240, 300, 300 (the retry-jobs guide the document links);
- `retryCount` retries (default 0); `maxRetryDuration` (default 0, unlimited) limits them in
  time from the first attempt, and "if specified with retry_count, the job will be retried
  until both limits are reached"; with both 0 a failed attempt is not retried.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from .errors import BadRequest

DEFAULT_ATTEMPT_DEADLINE = 180.0
DEFAULT_MIN_BACKOFF = 5.0
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_MAX_DOUBLINGS = 5
# Not sourced: room for Scheduler to start a firing's first attempt late. Waiting longer only
# delays a catch-up; a catch-up racing a late delivery makes the same job id, so one run.
DISPATCH_SLACK = timedelta(minutes=1)
_DURATION = re.compile(r"([0-9]{1,12})(\.[0-9]{1,9})?s")


def give_up_span(job: Mapping[str, Any]) -> timedelta:
    """How long after its fire time a firing of Scheduler job `job` (REST JSON) may still be
    attempted. A field that is not a duration or count is a BadRequest naming it."""
    retry = job.get("retryConfig") or {}
    deadline = _seconds(job, "attemptDeadline", DEFAULT_ATTEMPT_DEADLINE)
    count = _count(retry, "retryCount", 0)
    minimum = _seconds(retry, "minBackoffDuration", DEFAULT_MIN_BACKOFF)
    maximum = _seconds(retry, "maxBackoffDuration", DEFAULT_MAX_BACKOFF)
    doublings = _count(retry, "maxDoublings", DEFAULT_MAX_DOUBLINGS)
    limit = _seconds(retry, "maxRetryDuration", 0.0)
    by_count = (count + 1) * deadline + sum(_backoff(i, minimum, maximum, doublings) for i in range(count))
    # Past the time limit no retry starts; the last one started may still run its deadline.
    by_time = limit + maximum + deadline if limit else 0.0
    return timedelta(seconds=max(by_count, by_time, deadline)) + DISPATCH_SLACK


def _backoff(retry: int, minimum: float, maximum: float, doublings: int) -> float:
    doubled = minimum * 2 ** min(retry, doublings)
    return min(doubled * max(1, retry - doublings + 1), maximum)


def _seconds(fields: Mapping[str, Any], name: str, default: float) -> float:
    value = fields.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise BadRequest(f"the Scheduler job's {name} {value!r:.40} is not a duration like '180s'", field=name)
    return float(value[:-1])


def _count(fields: Mapping[str, Any], name: str, default: int) -> int:
    value = fields.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        raise BadRequest(f"the Scheduler job's {name} {value!r:.40} is not a small count", field=name)
    return value
