"""Fault injection shared by the control-plane emulator and the storage emulator.

A `FaultRule` matches requests by HTTP method and a regular expression searched in the
URL path (no query string). The next `times` matching requests are spoiled, then service
is normal again:

- `status` set: the request gets an error with that HTTP status (Google-shaped JSON);
- `delay_seconds` > 0: the answer is delayed (before the error, or before normal service
  when no status is given: "slow responses");
- `reset_connection`: the TCP connection is reset without any answer;
- `lose_answer`: the request is served (its effect stands: a create creates, a delete
  starts deleting), then the connection is reset without the answer: a reply lost on its
  way back, which the caller cannot tell from a request that never arrived.

`status` defaults to 503, except that a rule with only a delay, a reset or a lost answer
and no explicit status means "delay / reset / lose only". `times=None` (or -1) means
forever, until cleared.

The same JSON object is accepted over HTTP (POST /_emulator/faults on either emulator):
`{"method": "POST", "path": "pipelineJobs", "status": 503, "times": 1,
"delay_seconds": 0.0, "reset_connection": false, "lose_answer": false, "message": "optional text"}`.

`RateLimit` is a quota rather than a rule: at most `limit` requests are admitted in any
`window_seconds` of the emulator's own clock (so a test or a simulation with a virtual clock
decides what time it is; no wall-clock threshold), and the rest are refused with Google's
429 RESOURCE_EXHAUSTED (`quota_exceeded`; docs/fidelity.md, "Rate quotas").
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import ApiError

_UNSET: Any = object()

_RULE_KEYS = {"method", "path", "status", "times", "delay_seconds", "reset_connection", "lose_answer", "message"}


@dataclass
class FaultRule:
    method: str | None
    path: str
    status: int | None
    times: int | None
    delay_seconds: float = 0.0
    reset_connection: bool = False
    lose_answer: bool = False
    message: str | None = None
    #: how many matching requests this rule has spoiled so far
    hits: int = 0
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._regex = re.compile(self.path)
        if self.method is not None:
            self.method = self.method.upper()
            if self.method == "*":
                self.method = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self._regex.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "times": self.times,
            "delay_seconds": self.delay_seconds,
            "reset_connection": self.reset_connection,
            "lose_answer": self.lose_answer,
            "message": self.message,
            "hits": self.hits,
        }


class FaultInjector:
    """Thread-safe list of fault rules; `take()` consumes one use of the first match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(
        self,
        method: str | None = None,
        path: str = ".*",
        status: int | None = _UNSET,
        times: int | None = 1,
        delay_seconds: float = 0.0,
        reset_connection: bool = False,
        lose_answer: bool = False,
        message: str | None = None,
    ) -> FaultRule:
        if status is _UNSET:
            status = None if (delay_seconds > 0 or reset_connection or lose_answer) else 503
        if lose_answer and (status is not None or reset_connection):
            raise ValueError("lose_answer serves the request: it takes no status and no reset_connection")
        if status is not None and not (400 <= int(status) <= 599):
            raise ValueError(f"fault status must be an HTTP error status (4xx/5xx), got {status!r}")
        if times is not None and times < 0:
            times = None
        if times == 0:
            raise ValueError("times must be >= 1 (or None for forever)")
        if delay_seconds < 0:
            raise ValueError("delay_seconds must be >= 0")
        rule = FaultRule(
            method=method,
            path=path,
            status=None if status is None else int(status),
            times=times,
            delay_seconds=float(delay_seconds),
            reset_connection=bool(reset_connection),
            lose_answer=bool(lose_answer),
            message=message,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_json(self, data: Any) -> FaultRule:
        """Add a rule from its JSON form (the HTTP control API); raises ValueError if bad."""
        if not isinstance(data, dict):
            raise ValueError("a fault rule is a JSON object")
        unknown = set(data) - _RULE_KEYS
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        try:
            re.compile(kwargs.get("path", ".*"))
        except re.error as exc:
            raise ValueError(f"bad path regex: {exc}") from exc
        return self.add(**kwargs)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first live rule matching this request, with one use consumed; else None."""
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def pending(self) -> list[FaultRule]:
        """Rules that still have uses left."""
        with self._lock:
            return [r for r in self._rules if not r.exhausted]


class RateLimit:
    """At most `limit` admitted requests in any window of `window_seconds` ending now (a
    rolling window: never more than the quota in any minute, whatever its start), on the
    caller's clock. Only admitted requests count: a refused one consumes no quota. Times
    must not go backwards by more than the window (the caller's clock is monotonic)."""

    def __init__(self, limit: int, *, window_seconds: float = 60.0, clock: Callable[[], float]) -> None:
        if limit < 1:
            raise ValueError("a rate limit admits at least 1 request per window")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: list[float] = []  # admission times, oldest first
        self.refused = 0

    def admit(self) -> bool:
        """True (and counted) when the request is within the quota, False when refused."""
        now = self._clock()
        with self._lock:
            # An admission exactly one window ago still counts: the stricter reading.
            del self._admitted[: bisect.bisect_left(self._admitted, now - self.window_seconds)]
            if len(self._admitted) >= self.limit:
                self.refused += 1
                return False
            bisect.insort(self._admitted, now)
            return True


def quota_exceeded(
    *, service: str, project_number: str, metric: str, limit_id: str, limit_title: str, limit: int
) -> ApiError:
    """Google's 429 for a refused rate quota: a google.rpc.Status with an ErrorInfo of reason
    RATE_LIMIT_EXCEEDED and the keys of google/api/error_reason.proto's examples; the message
    is Service Control's wording as users quote it (docs/fidelity.md, "Rate quotas")."""
    return _Refused(
        {
            "error": {
                "code": 429,
                "message": (
                    f"Quota exceeded for quota metric '{metric}' and limit '{limit_title}' of service "
                    f"'{service}' for consumer 'project_number:{project_number}'."
                ),
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com",
                        "metadata": {
                            "consumer": f"projects/{project_number}",
                            "service": service,
                            "quota_metric": metric,
                            "quota_limit": limit_id,
                            "quota_limit_value": str(limit),
                        },
                    }
                ],
            }
        }
    )


class _Refused(ApiError):
    """An ApiError answered with a whole Google error body (its `details` included)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["status"], body["error"]["message"])
        self._body = body

    def body(self) -> dict[str, Any]:
        return self._body
