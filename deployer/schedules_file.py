"""`vertex-cron apply -f schedules.yaml`: many schedules in one file.

    defaults:                      # optional; settings as in vertex-cron.toml, plus
      project: my-project          # schedule defaults (time_zone, pipeline_root, parameters,
      region: europe-west1         # max_concurrent_runs, enable_caching, catch_up)
      time_zone: Europe/Paris
    schedules:
      - name: nightly-training     # ^[a-z][a-z0-9-]{0,49}$
        spec: pipeline.json        # relative to this file, or an Artifact Registry URI
        cron: "0 3 * * *"
        parameters: {run_date: "{{schedule_time:%Y-%m-%d}}"}

Unknown keys are errors: a misspelt `time_zone` must not silently mean UTC. So are values
of the wrong type (`parameters: [..]`), checked before the defaults are merged in; both
errors name the schedule and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from .config import check_file_values
from .errors import SettingsError, ValidationError
from .models import SCHEDULE_OPTIONS, ScheduleInput

# The keys, their kinds and which of them `defaults` may set: each option's declaration
# (models.ScheduleInput). Kinds are checked before defaults are merged in, so a wrong type
# is a usage error naming the key rather than a crash further on. `None` (an empty value)
# means "not given".
_SCHEDULE_KEYS = set(SCHEDULE_OPTIONS)
_SCHEDULE_DEFAULTS = {name for name, option in SCHEDULE_OPTIONS.items() if option.takes_default}
_REQUIRED = [name for name, option in SCHEDULE_OPTIONS.items() if option.required]


@dataclass(frozen=True)
class SchedulesFile:
    settings: dict[str, Any]  # the settings part of `defaults`
    schedules: tuple[ScheduleInput, ...]


def load(path: Path) -> SchedulesFile:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML", details=str(exc)) from exc
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: expected a mapping with `schedules` (and optional `defaults`)")
    _reject_unknown(document, {"defaults", "schedules"}, str(path))
    defaults = document.get("defaults") or {}
    entries = document.get("schedules")
    if not isinstance(defaults, dict):
        raise SettingsError(f"{path}: `defaults` must be a mapping")
    if not isinstance(entries, list) or not entries:
        raise SettingsError(f"{path}: `schedules` must be a non-empty list")
    schedule_defaults = {k: v for k, v in defaults.items() if k in _SCHEDULE_DEFAULTS}
    _check_kinds(schedule_defaults, f"{path}: defaults")
    settings = check_file_values(
        {k: v for k, v in defaults.items() if k not in _SCHEDULE_DEFAULTS}, source=f"{path}: defaults"
    )
    schedules = tuple(
        _schedule(entry, schedule_defaults, base=path.parent, where=f"{path}: schedules[{i}]")
        for i, entry in enumerate(entries)
    )
    return SchedulesFile(settings=settings, schedules=schedules)


def _schedule(entry: Any, defaults: Mapping[str, Any], *, base: Path, where: str) -> ScheduleInput:
    if not isinstance(entry, dict):
        raise SettingsError(f"{where}: expected a mapping")
    if isinstance(entry.get("name"), str):
        where = f"{where} (schedule {entry['name']})"
    _reject_unknown(entry, _SCHEDULE_KEYS, where)
    _check_kinds(entry, where)
    for required in _REQUIRED:
        if entry.get(required) in (None, ""):
            raise SettingsError(f"{where}: `{required}` is required")
    given = {key: value for key, value in entry.items() if value is not None}
    values = {**{k: v for k, v in defaults.items() if v is not None}, **given}
    values["parameters"] = {**(defaults.get("parameters") or {}), **(entry.get("parameters") or {})}
    try:
        values = {name: SCHEDULE_OPTIONS[name].from_file(value, base) for name, value in values.items()}
    except ValidationError as exc:
        raise SettingsError(f"{where}: {exc.reason}", details=exc.details) from exc
    return ScheduleInput(**values)


def _check_kinds(values: Mapping[str, Any], where: str) -> None:
    for key, value in values.items():
        if value is None or key not in SCHEDULE_OPTIONS:
            continue
        option = SCHEDULE_OPTIONS[key]
        wrong = not isinstance(value, option.kinds) or (isinstance(value, bool) and bool not in option.kinds)
        if wrong:
            hint = " (quote it)" if isinstance(value, date) else ""
            raise SettingsError(f"{where}: `{key}` must be {option.described}, got {_kind(value)}{hint}")
        if key == "parameters":
            bad = next((name for name in value if not isinstance(name, str)), None)
            if bad is not None:
                raise SettingsError(f"{where}: `parameters` names must be strings, got {_kind(bad)} {bad!r}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, datetime | date):
        return f"a date/time ({value.isoformat()})"
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _reject_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in set(data) - known)
    if unknown:
        raise SettingsError(f"{where}: unknown key {unknown[0]!r}", details="known: " + ", ".join(sorted(known)))
