"""How a schedule option is declared: once, as the metadata of its field of models.ScheduleInput.

    catch_up: str | None = field(default=None, metadata=declare(help=..., flag="--catch-up", ...))

Everything else is derived from those declarations (models.SCHEDULE_OPTIONS):
- cli.py: `vertex-cron deploy`'s flags (the field's default is the flag's; a field without
  one is a required flag, or NAME, the argument, when `flag` is None);
- schedules_file.py: the keys a schedule entry may have, which are required, which of them
  `defaults` may set (`takes_default`), and the type each must hold (`kinds`);
- desired.py: the options written into the function's request body under their own name
  (`body`); the others (name, spec, cron, time zone, parameters, pipeline root) shape both
  the body and the Scheduler job and need the spec or the settings, so desired.py builds
  them itself.

The CLI loads this module at start-up: what needs the trigger runtime's spec parser is
imported when a value is converted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

_KEY = "vertex_cron.option"


def as_given(value: Any) -> Any:
    """The value unchanged (the function's body check refuses a wrong one)."""
    return value


@dataclass(frozen=True)
class Option:
    """One schedule option: its field of ScheduleInput plus how each way in reaches it."""

    name: str  # the ScheduleInput field, and the schedules-file key
    help: str  # the deploy flag's help
    kinds: tuple[type, ...]  # what a schedules file may hold for it (an empty value means "not given")
    described: str  # what the file's error says it must be
    flag: str | None  # deploy's flag (click's declaration); None: NAME, the argument
    flag_options: Mapping[str, Any]  # click's extras: type, metavar, multiple
    from_flag: Callable[[Any], Any]  # the flag's value -> the field's
    from_file: Callable[[Any, Path], Any]  # the file's value (kind checked) and the file's folder -> the field's
    takes_default: bool  # a schedules file's `defaults` may set it for every schedule
    body: Callable[[Any], Any] | None  # when given, written into the body under `name`, converted by this
    default: Any  # the field's default; MISSING: required

    @property
    def required(self) -> bool:
        return self.default is MISSING


def declare(
    *,
    help: str,
    kinds: tuple[type, ...],
    described: str,
    flag: str | None = None,
    flag_options: Mapping[str, Any] | None = None,
    from_flag: Callable[[Any], Any] = as_given,
    from_file: Callable[[Any, Path], Any] | None = None,
    takes_default: bool = False,
    body: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """The metadata of a ScheduleInput field that declares it an option (see the module docstring)."""
    declared = {
        "help": help,
        "kinds": kinds,
        "described": described,
        "flag": flag,
        "flag_options": dict(flag_options or {}),
        "from_flag": from_flag,
        "from_file": from_file or (lambda value, _base: value),
        "takes_default": takes_default,
        "body": body,
    }
    return {_KEY: declared}


def declared(record: type) -> dict[str, Option]:
    """The options declared on the fields of the dataclass `record`, in field order."""
    return {f.name: Option(name=f.name, default=_default(f), **f.metadata[_KEY]) for f in fields(record)}


def _default(declared_field: Field[Any]) -> Any:
    if declared_field.default_factory is not MISSING:
        return declared_field.default_factory()
    return declared_field.default


def rfc3339_text(value: str | datetime, _base: Path) -> str:
    """A schedules file's time as RFC 3339 text: YAML reads an unquoted timestamp as a datetime."""
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def spec_source(text: str, base: Path | None = None) -> Any:
    """`--spec` / a file's `spec`: a local file (relative to the schedules file) or an Artifact Registry URI."""
    from . import spec_file  # loads the trigger runtime's spec parser: only when a command runs

    return spec_file.source(text, base=base)


def parameters_from_flags(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--param K=V` (repeatable) as a mapping; a malformed or repeated name is a usage error."""
    import click

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected K=V, got {pair!r}", param_hint="--param")
        if key.strip() in values:  # keeping only the last value would hide the mistake
            raise click.UsageError(f"--param {key.strip()} given twice")
        values[key.strip()] = value
    return values


def catch_up_body(text: str) -> str:
    """The `catch_up` body field: the window as a Google duration (`"21600s"`)."""
    from .desired import check_catch_up_window  # the retry policy it depends on: only when a command runs

    return f"{int(check_catch_up_window(text).total_seconds())}s"


def catch_up_text(text: str, _base: Path | None = None) -> str:
    """A schedules file's `catch_up`, checked as it is read so an error names the file and entry."""
    catch_up_body(text)
    return text
