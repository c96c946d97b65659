"""The one structured log line per request, in the JSON shape Cloud Logging parses
from stdout (`severity` and `message` become the entry's severity and summary)."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict, dataclass

_write_lock = threading.Lock()


@dataclass(frozen=True)
class RequestLog:
    severity: str  # INFO, WARNING, ERROR
    message: str
    outcome: str  # created, duplicate, skipped, rejected, failed
    status: int
    schedule: str | None
    logical_time: str | None
    job: str | None  # full resource name
    duration_ms: float


def emit(entry: RequestLog) -> None:
    line = json.dumps(asdict(entry), separators=(",", ":"), default=str) + "\n"
    with _write_lock:  # one request, one unbroken line, even with threaded workers
        sys.stdout.write(line)
        sys.stdout.flush()
