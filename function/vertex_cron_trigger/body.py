"""The request body the deployer writes into each Scheduler job, parsed and checked.

Unknown fields are rejected: the deployer writes the body, so a typo must fail loudly
instead of silently dropping, say, `max_concurent_runs`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

from . import strict_json
from .catch_up import SWEEP_BODY
from .errors import BadRequest
from .spec_uri import gcs_directory_problem
from .time_zones import time_zone_problem
from .timefmt import parse_rfc3339

MAX_BODY_BYTES = 64 * 1024
MAX_CONCURRENT_RUNS = 1000
SCHEDULE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,49}$")
_MAX_CRON_CHARS = 200
# A Google Duration as the REST API writes it: whole seconds here, since fire times are.
_DURATION_RE = re.compile(r"^([0-9]{1,10})s$")
# Longer windows would make a sweep walk years of fire times of a frequent cron.
MAX_CATCH_UP = timedelta(days=31)


class TriggerBody(NamedTuple):
    schedule: str
    spec_uri: str
    parameter_values: Mapping[str, Any] = MappingProxyType({})  # read-only: the default is shared
    pipeline_root: str | None = None
    cron: str | None = None
    time_zone: str | None = None
    max_concurrent_runs: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    enable_caching: bool | None = None
    template_uri: str | None = None  # where spec_uri's spec was published, pinned to its version
    # Read only by the catch-up sweep (catch_up.py); an on-time firing ignores them.
    catch_up: timedelta | None = None
    catch_up_since: datetime | None = None


def parse_request(raw: bytes) -> TriggerBody | None:
    """A schedule's firing, or None for the catch-up sweep job's body (catch_up.SWEEP_BODY)."""
    data = _json_object(raw)
    if "sweep" not in data:
        return _trigger_body(data)
    if data != SWEEP_BODY:
        raise BadRequest(f"a sweep request's body is exactly {json.dumps(SWEEP_BODY)}", field="sweep")
    return None


def parse_body(raw: bytes) -> TriggerBody:
    return _trigger_body(_json_object(raw))


def _json_object(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", field="body")
    try:
        data = strict_json.loads(raw)
    except strict_json.NotUnicode as exc:
        top = exc.path[0] if exc.path and isinstance(exc.path[0], str) else "body"
        raise BadRequest(str(exc), field=top) from exc
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"body must be a JSON object ({exc})", field="body") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"body must be a JSON object, got {strict_json.type_name(data)}", field="body")
    return data


def _trigger_body(data: dict[str, Any]) -> TriggerBody:
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; expected only: {', '.join(_FIELDS)}", field=unknown[0])
    for required in ("schedule", "spec_uri"):
        if data.get(required) is None:
            raise BadRequest(f"field {required!r} is required", field=required)
    values = {name: check(name, data[name]) for name, check in _FIELDS.items() if data.get(name) is not None}
    body = TriggerBody(**values)
    if body.start_time and body.end_time and body.end_time <= body.start_time:
        raise BadRequest("end_time must be later than start_time", field="end_time")
    return body


def _schedule(name: str, value: Any) -> str:
    if not isinstance(value, str) or not SCHEDULE_NAME_RE.fullmatch(value):
        raise BadRequest(f"{name} must be a string matching {SCHEDULE_NAME_RE.pattern}, got {value!r:.80}", field=name)
    return value


def _string(prefix: str = "", limit: int = 1024) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.startswith(prefix) or not 0 < len(value) <= limit:
            expected = f"a string starting with {prefix!r}" if prefix else "a non-empty string"
            raise BadRequest(f"{name} must be {expected} of at most {limit} characters", field=name)
        return value

    return check


def _pipeline_root(name: str, value: Any) -> str:
    problem = gcs_directory_problem(value)
    if problem:
        raise BadRequest(f"{name} {problem}", field=name)
    return value


def _object(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object, got {strict_json.type_name(value)}", field=name)
    return value


def _time_zone(name: str, value: Any) -> str:
    _string()(name, value)
    problem = time_zone_problem(value)
    if problem:
        raise BadRequest(f"{name} {value!r:.80} {problem}", field=name)
    return value


def _run_limit(name: str, value: Any) -> int:
    # Counted by listing runs page by page: a bound keeps a firing to a few list calls.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENT_RUNS:
        raise BadRequest(f"{name} must be an integer from 1 to {MAX_CONCURRENT_RUNS}, got {value!r:.80}", field=name)
    return value


def _timestamp(name: str, value: Any) -> datetime:
    _string()(name, value)
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}", field=name) from exc


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false, got {value!r:.80}", field=name)
    return value


def _template_uri(name: str, value: Any) -> str:
    """Only the pinned form: a tag would be resolved by Vertex AI at run time, to whatever it
    points at then (or fail, python-aiplatform#2181), instead of to what was deployed."""
    from .template_uri import parse_template_uri  # lazily: most bodies have none

    parsed = parse_template_uri(value) if isinstance(value, str) else None
    if parsed is None or not parsed.is_pinned:
        raise BadRequest(
            f"{name} must be https://REGION-kfp.pkg.dev/PROJECT/REPO/PACKAGE/sha256:<64 hex digits>, got {value!r:.200}",
            field=name,
        )
    return value


def _catch_up(name: str, value: Any) -> timedelta:
    match = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    window = timedelta(seconds=int(match.group(1))) if match else None
    if window is None or not timedelta(0) < window <= MAX_CATCH_UP:
        raise BadRequest(
            f'{name} must be a duration in whole seconds like "21600s", from 1s to '
            f"{int(MAX_CATCH_UP.total_seconds())}s, got {value!r:.80}",
            field=name,
        )
    return window


_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "schedule": _schedule,
    "spec_uri": _string("gs://"),
    "parameter_values": _object,
    "pipeline_root": _pipeline_root,
    "cron": _string(limit=_MAX_CRON_CHARS),
    "time_zone": _time_zone,
    "max_concurrent_runs": _run_limit,
    "start_time": _timestamp,
    "end_time": _timestamp,
    "enable_caching": _boolean,
    "template_uri": _template_uri,
    "catch_up": _catch_up,
    "catch_up_since": _timestamp,
}
