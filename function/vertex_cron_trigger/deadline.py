"""One deadline per request for all of its calls to Google.

Each call has its own (connect, read) timeouts, but they add up (certs, the spec's metadata
and download, pages of active runs, the create), and a read timeout bounds each wait for
data, not a body that trickles in a byte at a time. Past the function's timeout (180 s, set
by the deployer) the platform cuts the request off with no answer and no log line. So the
handler opens a deadline per request; google_rest.py shrinks every call's timeouts to what
is left of it and stops a download when it passes: a 503, which Scheduler retries.

A context variable rather than a parameter: the deadline belongs to the request, while the
seam and the caches (SpecStore, CertCache) that call it are shared by every request of the
instance. Code outside a request (the Luigi task) has no deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Below the function's 180 s timeout by more than one read timeout (the most a single read
# can run past the deadline), leaving time to answer.
REQUEST_SECONDS = 150.0

# (monotonic time it passes, its length in seconds) of the current request, if any
_current: ContextVar[tuple[float, float] | None] = ContextVar("vertex_cron_request_deadline", default=None)


@contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    token = _current.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _current.reset(token)


def remaining() -> float | None:
    """Seconds left (<= 0 once passed), or None outside a request."""
    current = _current.get()
    return None if current is None else current[0] - time.monotonic()


def describe() -> str:
    current = _current.get()
    return f"the request's {current[1]:g} s deadline has passed" if current else "no deadline"
