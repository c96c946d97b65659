"""`vertex-cron`: thin click commands. Each parses, calls api.py, renders with render.py.

Exit codes: 0 ok, 1 failed, 2 usage. Errors print the one-line reason first, details after,
never a traceback (set VERTEX_CRON_DEBUG=1 to see one for an unexpected error).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__, config
from .console import VERSION_LINE
from .errors import VertexCronError

if TYPE_CHECKING:
    from .executor import Executor
    from .models import ScheduleInput
    from .progress import ConsoleProgress

# Start-up is part of every command: `vertex-cron --version` must not pay for the Google
# client libraries. Only click, the settings (whose defaults and limits the help shows) and
# the error types load with this module; each command imports what it uses when it runs,
# and the `local` group (the emulators) loads only when it is asked for.

_SETTING_FLAGS = (
    ("--project", "Google Cloud project ID."),
    ("--region", "Region of the function, the Scheduler jobs and the pipeline runs."),
    ("--bucket", "Bucket the pipeline specs are uploaded to."),
    ("--workload-sa", "Service account pipeline runs get."),
    ("--function-sa", "Service account the trigger function runs as."),
    ("--scheduler-sa", "Service account Cloud Scheduler calls the function as (the function's invoker)."),
    (
        "--build-sa",
        "Service account the function's Cloud Build runs as (required unless --allow-default-service-account).",
    ),
    ("--function-name", f"Name of the shared function [default: {config.DEFAULT_FUNCTION_NAME}]."),
    (
        "--impersonate-service-account",
        "Act as this service account (Application Default Credentials must be allowed to).",
    ),
)


class _Command(click.Command):
    """Help lists the command's own options first, then the deployment settings every
    command shares in their own section, so what is particular to a command stands out."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        shared: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record:
                (shared if param.name in _SHARED_SETTINGS else own).append(record)
        for title, records in (
            ("Options", own),
            ("Settings (flags > environment > a schedules file's defaults > vertex-cron.toml)", shared),
        ):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


_LOCAL_GROUP = "local"  # local/commands.py, loaded by _Cli.get_command
# Built when it is resolved to run (or to show its own help): its flags come from the schedule
# options' declarations (models.py, which loads the trigger's body rules), which neither
# `--version` nor the command list of `--help` has any use for.
_DEPLOY = "deploy"


class _Cli(click.Group):
    """Turns every failure into `error: <reason>` + details and an exit code; loads the
    `local` group and builds `deploy` on demand."""

    command_class = _Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), _LOCAL_GROUP, _DEPLOY})

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args[:1] == [_DEPLOY] and _DEPLOY not in self.commands:
            self.command(_DEPLOY)(_schedule_options(_deploy))
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == _LOCAL_GROUP:
            from vertex_cron_local.commands import local

            return local
        if cmd_name == _DEPLOY and _DEPLOY not in self.commands:
            return _DEPLOY_LISTED  # listed, not run: its summary line is all that is asked
        return super().get_command(ctx, cmd_name)

    def main(  # type: ignore[override]  # click overloads main on the literal value of standalone_mode
        self, args: Sequence[str] | None = None, *, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        if not standalone_mode:
            return super().main(args, standalone_mode=False, **kwargs)
        try:
            code = super().main(args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            _fail("aborted", "", 1)
        except click.ClickException as exc:
            ctx: click.Context | None = getattr(exc, "ctx", None)  # set on usage errors only
            hint = f"Try '{ctx.command_path} --help'." if ctx else ""
            _fail(exc.format_message(), hint, exc.exit_code)
        except VertexCronError as exc:
            _fail(exc.reason, exc.details, exc.exit_code)
        except Exception as exc:  # a bug: still no traceback unless asked for
            if os.environ.get("VERTEX_CRON_DEBUG"):
                traceback.print_exc()
            _fail(f"internal error: {type(exc).__name__}: {exc}", "set VERTEX_CRON_DEBUG=1 for a traceback", 1)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(reason: str, details: str, code: int) -> None:
    click.echo(f"error: {reason}", err=True)
    if details:
        click.echo(details, err=True)
    sys.exit(code)


@dataclass(frozen=True)
class _SettingSources:
    """The common flags as given; resolved once a command knows its files' defaults."""

    flags: dict[str, Any]
    config_path: Path | None

    def resolve(
        self, file_defaults: Mapping[str, Any] | None = None, defaults_source: str = ""
    ) -> config.DeployerSettings:
        """flags > environment > schedules-file `defaults` > vertex-cron.toml"""
        file_values = config.load_file_values(self.config_path, cwd=Path.cwd())
        toml = str(self.config_path or config.PROJECT_FILE)
        file_sources = {name: toml for name in file_values}
        file_values.update(file_defaults or {})
        file_sources.update({name: defaults_source or "the schedules file's defaults" for name in file_defaults or {}})
        return config.resolve(self.flags, os.environ, file_values, file_sources=file_sources)


_FLAG_NAMES = [flag[2:].replace("-", "_") for flag, _ in _SETTING_FLAGS]
_FLAG_NAMES += ["max_instances", "allow_default_service_account"]
_SHARED_SETTINGS = frozenset([*_FLAG_NAMES, "config_path"])


def _setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the common flags; the command receives them as `sources` (and `fmt`)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in _FLAG_NAMES}
        kwargs["sources"] = _SettingSources(flags, kwargs.pop("config_path"))
        return command(*args, **kwargs)

    options: list[Callable[[Any], Any]] = [
        click.option(flag, default=None, help=help_text) for flag, help_text in _SETTING_FLAGS
    ]
    options += [
        click.option(
            "--max-instances",
            type=int,
            default=None,
            help=f"Upper bound on function instances [default: {config.DEFAULT_MAX_INSTANCES}].",
        ),
        click.option(
            "--allow-default-service-account",
            is_flag=True,
            default=None,
            help="Accept a Compute Engine / App Engine default service account as an identity.",
        ),
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=f"Settings file [default: ./{config.PROJECT_FILE} if present].",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Output format.",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


_dry_run = click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")


def _executor(dry_run: bool) -> Executor:
    from .executor import APPLY, DRY_RUN

    return DRY_RUN if dry_run else APPLY


def _progress() -> ConsoleProgress:
    from .progress import ConsoleProgress

    stream = sys.stderr
    return ConsoleProgress(stream, live=stream.isatty())


@click.group(cls=_Cli, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vertex-cron", message=VERSION_LINE)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Put compiled Kubeflow pipelines on a cron schedule on Vertex AI."""
    if ctx.invoked_subcommand is None:  # bare `vertex-cron`: asking what it can do is no error
        click.echo(ctx.get_help())


def _schedule_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`deploy`'s NAME and flags, one per declared schedule option (models.SCHEDULE_OPTIONS);
    the command receives them as `schedule`, a ScheduleInput."""
    from .models import SCHEDULE_OPTIONS, ScheduleInput

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in SCHEDULE_OPTIONS}
        values = {
            name: option.from_flag(given[name])
            for name, option in SCHEDULE_OPTIONS.items()
            if given[name] is not None and given[name] != ()
        }
        kwargs["schedule"] = ScheduleInput(**values)
        return command(*args, **kwargs)

    parameters: list[Callable[[Any], Any]] = []
    for name, option in SCHEDULE_OPTIONS.items():
        if option.flag is None:
            parameters.append(click.argument(name))
            continue
        # A default click shows is a text one (time zone); a flag not given otherwise leaves
        # the field's own default to ScheduleInput.
        shown: dict[str, Any] = (
            {"default": option.default, "show_default": True} if isinstance(option.default, str) else {}
        )
        parameters.append(
            click.option(option.flag, name, required=option.required, help=option.help, **shown, **option.flag_options)
        )
    for parameter in reversed(parameters):
        wrapper = parameter(wrapper)
    return wrapper


@_dry_run
@_setting_options
def _deploy(sources: _SettingSources, fmt: str, dry_run: bool, schedule: ScheduleInput) -> None:
    """Create or update schedule NAME (uploads the spec, deploys the function when needed)."""
    from . import api, render

    plan = api.deploy(sources.resolve(), schedule, executor=_executor(dry_run), progress=_progress())
    click.echo(render.plan(plan, fmt, applied=not dry_run))


# What `--help` lists for deploy until it is built (_Cli.resolve_command).
_DEPLOY_LISTED = click.Command(_DEPLOY, help=_deploy.__doc__)


@cli.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Schedules file (YAML).",
)
@click.option("--prune", is_flag=True, help="Delete managed schedules that are not in the file.")
@_dry_run
@_setting_options
def apply_command(sources: _SettingSources, fmt: str, path: Path, prune: bool, dry_run: bool) -> None:
    """Converge on every schedule in a file.

    \b
    defaults:                  # optional: settings and schedule defaults
      project: my-project
      region: europe-west1
      time_zone: Europe/Paris
    schedules:
      - name: nightly-training
        spec: pipeline.json    # relative to the file
        cron: "0 3 * * *"
        parameters: {run_date: "{{schedule_time:%Y-%m-%d}}"}
    """
    from . import api, render, schedules_file

    loaded = schedules_file.load(path)
    settings = sources.resolve(loaded.settings, defaults_source=f"{path}: defaults")
    plan = api.apply(settings, loaded.schedules, prune=prune, executor=_executor(dry_run), progress=_progress())
    click.echo(render.plan(plan, fmt, applied=not dry_run))


@cli.command("list")
@_setting_options
def list_command(sources: _SettingSources, fmt: str) -> None:
    """Managed schedules: cron, time zone, state, next run, last attempt."""
    settings = sources.resolve()
    from . import api, render

    statuses = api.list_schedules(settings)
    click.echo(render.schedules(statuses, fmt, where=f"project {settings.project}, region {settings.region}"))


@cli.command()
@click.argument("name")
@_setting_options
def describe(sources: _SettingSources, fmt: str, name: str) -> None:
    """Everything about schedule NAME, including the body Scheduler sends."""
    from . import api, render

    click.echo(render.schedule(api.describe(sources.resolve(), name), fmt))


def _state_command(action: str, done: str, summary: str) -> click.Command:
    """`vertex-cron ACTION NAME`, calling api.ACTION (imported when the command runs)."""

    @click.argument("name")
    @_setting_options
    def command(sources: _SettingSources, fmt: str, name: str) -> None:
        from . import api, render

        click.echo(render.state_change(getattr(api, action)(sources.resolve(), name), fmt, done=done))

    command.__doc__ = summary
    return click.command(action, cls=_Command)(command)


cli.add_command(_state_command("pause", "paused", "Pause schedule NAME (no firings until resumed)."))


@cli.command()
@click.argument("name")
@click.option(
    "--catch-up",
    is_flag=True,
    help="Let the catch-up sweep run the fire times missed while paused (within the schedule's catch_up window).",
)
@_setting_options
def resume(sources: _SettingSources, fmt: str, name: str, catch_up: bool) -> None:
    """Resume schedule NAME; the fire times missed while paused are not caught up unless --catch-up."""
    from . import api, render

    status = api.resume(sources.resolve(), name, catch_up=catch_up)
    click.echo(render.state_change(status, fmt, done="resumed"))
    if catch_up and fmt == "text":
        click.echo(
            "Its fire times while paused are caught up by the next catch-up sweeps."
            if status.was_paused
            else "It was not paused, so it missed no fire times for the catch-up sweep to catch up."
        )


@cli.command("run")
@click.argument("name")
@click.option(
    "--wait",
    is_flag=True,
    help="Follow the forced run's PipelineJob until it ends; exit 1 unless it SUCCEEDED.",
)
@_setting_options
def run_command(sources: _SettingSources, fmt: str, name: str, wait: bool) -> None:
    """Fire schedule NAME now: a forced run with its own PipelineJob (scheduled firings are unaffected).

    Prints the firing, the PipelineJob id it gets (exact only once it runs: Cloud Scheduler
    stamps it with the millisecond it executes) and how to follow it."""
    from . import api, render

    settings = sources.resolve()
    forced = api.run(settings, name)
    if wait:
        click.echo(render.forced_run(forced, "text", following=True), err=True)  # what was asked, while waiting
        forced = api.follow(settings, forced, progress=_progress())
    click.echo(render.forced_run(forced, fmt))


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete this region's spec objects (uploaded by vertex-cron) that no remaining schedule uses.",
)
@_dry_run
@_setting_options
def delete(sources: _SettingSources, fmt: str, names: tuple[str, ...], purge: bool, dry_run: bool) -> None:
    """Delete schedules; the shared function goes with the last schedule that uses it."""
    from . import api, render

    plan = api.delete(sources.resolve(), names, purge=purge, executor=_executor(dry_run), progress=_progress())
    click.echo(render.plan(plan, fmt, applied=not dry_run))


@cli.command()
@click.argument("name")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=config.DEFAULT_HISTORY,
    show_default=True,
    help="How many runs to show (1-100), newest first.",
)
@_setting_options
def history(sources: _SettingSources, fmt: str, name: str, limit: int) -> None:
    """Recent pipeline runs of schedule NAME, newest first, with console links."""
    from . import api, render

    click.echo(render.runs(api.history(sources.resolve(), name, limit=limit), fmt, schedule=name))


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option(
    "--last",
    type=click.IntRange(1, config.MAX_FIRINGS),
    default=config.DEFAULT_FIRINGS,
    show_default=True,
    help=f"How many recent fire times to show (1-{config.MAX_FIRINGS}).",
)
@_setting_options
def status(sources: _SettingSources, fmt: str, names: tuple[str, ...], last: int) -> None:
    """Each schedule's state, next run and recent firings at a glance (✓ ✗ ▸ ·)."""
    from . import api, render

    click.echo(render.health(api.status(sources.resolve(), names, count=last), fmt))


@cli.command()
@click.argument("name")
@click.option("--from", "start", required=True, metavar="RFC3339", help="First fire time to cover (inclusive).")
@click.option("--to", "end", required=True, metavar="RFC3339", help="End of the range (exclusive); not in the future.")
@click.option(
    "--max-runs",
    type=click.IntRange(1, config.MAX_BACKFILL_RUNS),
    default=config.DEFAULT_BACKFILL_RUNS,
    show_default=True,
    help=f"Refuse a range with more fire times than this (1-{config.MAX_BACKFILL_RUNS}).",
)
@_dry_run
@_setting_options
def backfill(sources: _SettingSources, fmt: str, name: str, start: str, end: str, max_runs: int, dry_run: bool) -> None:
    """Request the runs of schedule NAME's fire times in [--from, --to): the runs those firings
    have or would have had (same ids), each delivered to the function as Scheduler does. A
    time that already ran is reported as existing; re-running finishes an interrupted backfill."""
    from . import api, render

    report = api.backfill(
        sources.resolve(),
        name,
        start=_rfc3339_option("--from", start),
        end=_rfc3339_option("--to", end),
        max_runs=max_runs,
        dry_run=dry_run,
        progress=_progress(),
    )
    click.echo(render.backfill(report, fmt))
    failed = report.counts()["failed"]
    if failed:
        _fail(
            f"{failed} of {len(report.firings)} fire times failed",
            "re-run the same backfill to finish them: runs that exist are not created again",
            1,
        )


def _rfc3339_option(flag: str, value: str) -> datetime:
    from vertex_cron_trigger.timefmt import parse_rfc3339  # backfill only: not on every start

    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an RFC 3339 time like 2026-11-01T00:00:00Z", param_hint=flag
        ) from exc


@cli.command()
@_setting_options
def doctor(sources: _SettingSources, fmt: str) -> None:
    """Preflight: APIs, identities and permissions, each ✓/✗ with its fix (exit 1 on any ✗)."""
    from . import doctor as checks

    report = checks.run(sources.resolve())
    click.echo(json.dumps(report.to_json(), indent=2) if fmt == "json" else report.text())
    if report.failed:
        click.echo(f"error: {len(report.failed)} of {len(report.items)} checks failed", err=True)
        raise click.exceptions.Exit(1)


main = cli
