"""The one structured log line per request, in the JSON shape Cloud Logging parses
from stdout (`severity` and `message` become the entry's severity and summary)."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, NamedTuple

_write_lock = threading.Lock()


class RequestLog(NamedTuple):
    severity: str  # INFO, WARNING, ERROR
    message: str
    outcome: str  # created, duplicate, skipped, rejected, failed; swept (the catch-up sweep)
    status: int
    schedule: str | None
    logical_time: str | None
    job: str | None  # full resource name
    duration_ms: float
    sweep: dict[str, Any] | None = None  # the catch-up sweep's summary; only on its lines


def emit(entry: RequestLog) -> None:
    fields = entry._asdict()
    if entry.sweep is None:
        del fields["sweep"]
    emit_fields(fields)


def emit_fields(fields: dict[str, Any]) -> None:
    """One line of any shape (the sweep's `run_failed` and `missed` reports use this too)."""
    line = json.dumps(fields, separators=(",", ":"), default=str) + "\n"
    with _write_lock:  # one request, one unbroken line, even with threaded workers
        sys.stdout.write(line)
        sys.stdout.flush()
