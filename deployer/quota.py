"""Keeping under a per-minute request quota by pacing: the executor takes a permit before
each Cloud Scheduler write.

Cloud Scheduler allows 500 write requests per minute (CreateJob, UpdateJob, DeleteJob,
PauseJob, ResumeJob, RunJob; the default quota, cloud.google.com/scheduler/quotas); a write
over it is refused with 429 RESOURCE_EXHAUSTED. An apply of a fleet writes one job per
schedule, so it is paced to stay under the quota instead of failing half way through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SCHEDULER_WRITES_PER_MINUTE = 500


class Pacer:
    """Hands out permits no closer together than 60 s / `per_minute`, so that any 60 s window
    holds at most `per_minute` of them; the first comes at once. Thread-safe. `clock` and
    `sleep` are injectable: the tests count permits on a fake clock."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / per_minute
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a permit; the clock time it is for."""
        with self._lock:
            now = self._clock()
            at = now if self._next is None else max(now, self._next)
            self._next = at + self.interval
        if at > now:
            self._sleep(at - now)
        return at
