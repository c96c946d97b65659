"""Settings resolution: flags > environment > project file (`vertex-cron.toml`) or the
`defaults` of a schedules file. Nothing here talks to Google. The formats of project,
region, bucket and function name are checked while resolving (validation.py); identities
are checked once a command knows which ones it needs (desired.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import SettingsError

PROJECT_FILE = "vertex-cron.toml"
DEFAULT_FUNCTION_NAME = "vertex-cron-trigger"
DEFAULT_MAX_INSTANCES = 10
# The CLI's help shows these; kept here so that it need not import the modules that use them.
DEFAULT_HISTORY = 10  # runs `vertex-cron history` shows
DEFAULT_FIRINGS = 10  # fire times `vertex-cron status` shows
MAX_FIRINGS = 50
DEFAULT_BACKFILL_RUNS = 100  # `vertex-cron backfill --max-runs`
MAX_BACKFILL_RUNS = 1000  # fire times one backfill may request; a longer range is several backfills
EMULATOR_HOST_ENV = "VERTEX_CRON_EMULATOR_HOST"
STORAGE_EMULATOR_HOST_ENV = "STORAGE_EMULATOR_HOST"
POLL_SECONDS_ENV = "VERTEX_CRON_POLL_SECONDS"

# setting -> environment variables, first set wins. The flag is always `--<name with dashes>`.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "project": ("VERTEX_CRON_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"),
    "region": ("VERTEX_CRON_REGION",),
    "bucket": ("VERTEX_CRON_BUCKET",),
    "workload_sa": ("VERTEX_CRON_WORKLOAD_SA",),
    "function_sa": ("VERTEX_CRON_FUNCTION_SA",),
    "scheduler_sa": ("VERTEX_CRON_SCHEDULER_SA",),
    "build_sa": ("VERTEX_CRON_BUILD_SA",),
    "function_name": ("VERTEX_CRON_FUNCTION_NAME",),
    "max_instances": ("VERTEX_CRON_MAX_INSTANCES",),
    "impersonate_service_account": ("VERTEX_CRON_IMPERSONATE_SERVICE_ACCOUNT",),
    "allow_default_service_account": ("VERTEX_CRON_ALLOW_DEFAULT_SERVICE_ACCOUNT",),
}


@dataclass(frozen=True)
class ProjectRegion:
    """Where a command acts: what every command but `local` needs."""

    project: str
    region: str


@dataclass(frozen=True)
class Deployment(ProjectRegion):
    """What deploy, apply and doctor need: where, the spec bucket, and as whom everything runs."""

    bucket: str
    workload_sa: str
    function_sa: str
    scheduler_sa: str
    build_sa: str | None  # runs the function's Cloud Build; None: the project's default
    function_name: str
    max_instances: int
    allow_default_service_account: bool
    impersonate_service_account: str | None


@dataclass(frozen=True)
class DeployerSettings:
    """Where and as whom vertex-cron deploys, as configured: ``None`` means "not configured".
    A command takes what it needs as a type whose fields are all there: `project_region()`,
    `spec_bucket()`, `deployment()`. (The function has settings of its own:
    vertex_cron_trigger.settings.Settings.)"""

    project: str | None = None
    region: str | None = None
    bucket: str | None = None
    workload_sa: str | None = None
    function_sa: str | None = None
    scheduler_sa: str | None = None
    build_sa: str | None = None  # runs the function's Cloud Build; None: the project's default
    function_name: str = DEFAULT_FUNCTION_NAME
    max_instances: int = DEFAULT_MAX_INSTANCES
    impersonate_service_account: str | None = None
    allow_default_service_account: bool = False
    # Not user settings: taken from the environment only (ARCHITECTURE "Local emulation").
    emulator_host: str | None = None
    storage_emulator_host: str | None = None
    poll_seconds: float | None = None  # how often long-running operations are polled

    def project_region(self) -> ProjectRegion:
        """SettingsError naming the first of project and region that is missing."""
        return ProjectRegion(project=self._required("project"), region=self._required("region"))

    def spec_bucket(self) -> str:
        return self._required("bucket")

    def workload_identity(self) -> str:
        """The workload SA: what pipeline runs are submitted as (luigi.py needs only it and where)."""
        return self._required("workload_sa")

    def deployment(self) -> Deployment:
        """SettingsError naming the first missing setting, in the order of the fields."""
        where = self.project_region()
        return Deployment(
            project=where.project,
            region=where.region,
            bucket=self._required("bucket"),
            workload_sa=self._required("workload_sa"),
            function_sa=self._required("function_sa"),
            scheduler_sa=self._required("scheduler_sa"),
            build_sa=self.build_sa or None,
            function_name=self.function_name,
            max_instances=self.max_instances,
            allow_default_service_account=self.allow_default_service_account,
            impersonate_service_account=self.impersonate_service_account or None,
        )

    def _required(self, name: str) -> str:
        """The setting's value; SettingsError naming where it may come from when it is not
        configured. Also checks the formats resolve() checks, for settings built by hand
        (Python API)."""
        value = getattr(self, name)
        if value in (None, ""):
            sources = " / ".join(ENVIRONMENT[name])
            raise SettingsError(
                f"missing {name.replace('_', ' ')}: pass --{name.replace('_', '-')}",
                details=f"or set {sources}, or `{name}` in {PROJECT_FILE}",
            )
        formatted = _format_checks()
        _check_formats({name: getattr(self, name) for name in formatted}, dict.fromkeys(formatted, "Settings"))
        return str(value)


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    file_values: Mapping[str, Any] | None = None,
    *,
    file_sources: Mapping[str, str] | None = None,
) -> DeployerSettings:
    """Merge the three sources; a value that is None or blank counts as not given, so
    `--build-sa ""` falls through to the next source (and is unset if none has it).

    The settings that end up in resource names and URLs (project, region, bucket, function
    name) are format-checked here, so every command refuses a malformed one before any
    call; the error names where the value came from (`file_sources` labels file values,
    by setting; default "the settings file").
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, variables in ENVIRONMENT.items():
        value, source = _given(flags.get(name)), f"--{name.replace('_', '-')}"
        if value is None:
            variable = next((v for v in variables if _given(env.get(v)) is not None), None)
            value, source = (env[variable], variable) if variable else (None, "")
        if value is None and file_values:
            value = _given(file_values.get(name))
            source = (file_sources or {}).get(name, "the settings file")
        if value is not None:
            values[name] = _convert(name, value, source)
            sources[name] = source
    _check_formats(values, sources)
    values["emulator_host"] = env.get(EMULATOR_HOST_ENV) or None
    values["storage_emulator_host"] = env.get(STORAGE_EMULATOR_HOST_ENV) or None
    if env.get(POLL_SECONDS_ENV):
        try:
            values["poll_seconds"] = float(env[POLL_SECONDS_ENV])
        except ValueError as exc:
            raise SettingsError(f"{POLL_SECONDS_ENV} must be a number of seconds") from exc
    return DeployerSettings(**values)


def load_file_values(path: Path | None, *, cwd: Path) -> dict[str, Any]:
    """Read `vertex-cron.toml` (an explicit path must exist; the default one may not)."""
    if path is None:
        path = cwd / PROJECT_FILE
        if not path.is_file():
            return {}
    import tomllib  # only when there is a file: `--version` and `--help` never read one

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise SettingsError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML", details=str(exc)) from exc
    return check_file_values(data, source=str(path))


def check_file_values(data: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Normalise `kebab-case` keys and reject unknown ones (a typo must not be ignored)."""
    known = set(ENVIRONMENT)
    values = {str(key).replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(
            f"{source}: unknown setting {unknown[0]!r}",
            details="known settings: " + ", ".join(sorted(known)),
        )
    return values


_TYPES = {f.name: f.type for f in fields(DeployerSettings)}


def _format_checks() -> dict[str, Callable[..., str]]:
    # Imported here: validation loads the trigger's body rules, which a command that never
    # resolves settings (`--version`, `--help`) does not need.
    from . import validation

    return {
        "project": validation.check_project,
        "region": validation.check_region,
        "bucket": validation.check_bucket,
        "function_name": validation.check_function_name,
    }


def _check_formats(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    for name, check in _format_checks().items():
        if values.get(name):  # "" is "not configured": require() names it
            check(values[name], source=sources[name])


def _given(value: Any) -> Any:
    """None for a value that is not given: absent, or a blank string."""
    return None if isinstance(value, str) and not value.strip() else value


def _convert(name: str, value: Any, source: str) -> Any:
    kind, label = _TYPES[name], f"{name.replace('_', ' ')} (from {source})"
    if kind == "int":
        # int() would also take 2.5 (as 2) and true (as 1) from a TOML or YAML file.
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise SettingsError(f"{label} must be an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError as exc:
            raise SettingsError(f"{label} must be an integer, got {value!r}") from exc
        if number < 1:
            raise SettingsError(f"{label} must be at least 1, got {number}")
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{label} must be true or false, got {value!r}")
    if not isinstance(value, str):
        raise SettingsError(f"{label} must be a string, got {value!r}")
    return value.strip()
