"""`vertex-cron apply -f schedules.yaml`: many schedules in one file.

    defaults:                      # optional; settings as in vertex-cron.toml, plus
      project: my-project          # schedule defaults (time_zone, pipeline_root, parameters,
      region: europe-west1         # max_concurrent_runs, enable_caching)
      time_zone: Europe/Paris
    schedules:
      - name: nightly-training     # ^[a-z][a-z0-9-]{0,49}$
        spec: pipeline.json        # relative to this file
        cron: "0 3 * * *"
        parameters: {run_date: "{{schedule_time:%Y-%m-%d}}"}

Unknown keys are errors: a misspelt `time_zone` must not silently mean UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .config import check_file_values
from .errors import ConfigError
from .models import ScheduleInput

_SCHEDULE_KEYS = {f.name for f in fields(ScheduleInput)} - {"spec_path"} | {"spec"}
_SCHEDULE_DEFAULTS = {"time_zone", "pipeline_root", "parameters", "max_concurrent_runs", "enable_caching"}


@dataclass(frozen=True)
class SchedulesFile:
    settings: dict[str, Any]  # the settings part of `defaults`
    schedules: tuple[ScheduleInput, ...]


def load(path: Path) -> SchedulesFile:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML", details=str(exc)) from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping with `schedules` (and optional `defaults`)")
    _reject_unknown(document, {"defaults", "schedules"}, str(path))
    defaults = document.get("defaults") or {}
    entries = document.get("schedules")
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: `defaults` must be a mapping")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: `schedules` must be a non-empty list")
    schedule_defaults = {k: v for k, v in defaults.items() if k in _SCHEDULE_DEFAULTS}
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
        raise ConfigError(f"{where}: expected a mapping")
    _reject_unknown(entry, _SCHEDULE_KEYS, where)
    for required in ("name", "spec", "cron"):
        if entry.get(required) in (None, ""):
            raise ConfigError(f"{where}: `{required}` is required")
    values = {**defaults, **entry}
    parameters = {**(defaults.get("parameters") or {}), **(entry.get("parameters") or {})}
    if not all(isinstance(p, dict) for p in (defaults.get("parameters") or {}, entry.get("parameters") or {})):
        raise ConfigError(f"{where}: `parameters` must be a mapping")
    values["parameters"] = parameters
    values["spec_path"] = base / str(values.pop("spec"))
    values["name"], values["cron"] = str(values["name"]), str(values["cron"])
    for moment in ("start_time", "end_time"):
        if isinstance(values.get(moment), datetime):  # YAML reads unquoted timestamps as datetimes
            values[moment] = values[moment].isoformat().replace("+00:00", "Z")
    return ScheduleInput(**values)


def _reject_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}", details="known: " + ", ".join(sorted(known)))

