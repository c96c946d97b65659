"""`vertex-cron local ...`: the whole chain on this machine, no cloud account."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from vertex_cron_local.dispatcher import Delivery

# `vertex-cron --help` loads this module to list the group: the stack, the emulators and
# the scheduler load only when a command runs.


@click.group("local")
def local() -> None:
    """Run the emulated cloud side (Vertex AI, Scheduler, Functions, Storage) locally."""


@local.command("up")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep schedules, functions, PipelineJobs, spec objects (storage) and ports here across "
    "restarts (default: forget on exit).",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Schedule seconds per real second (3600: an hour of cron per second).",
)
@click.option("--fire-now", is_flag=True, help="Fire each Scheduler job once as soon as it exists.")
def up(state_dir: Path | None, time_scale: float, fire_now: bool) -> None:
    """Start the local stack in the foreground until Ctrl-C (or SIGTERM).

    The emulated project is provisioned as `terraform apply` of infra/ leaves a real one,
    so `vertex-cron doctor` passes. In a second terminal, paste the printed `export` lines;
    `vertex-cron deploy`, `list`, `run`, `history`, `doctor` ... then work against this stack.
    """
    from vertex_cron_local.stack import LocalStack, LocalStackError

    stop_requested = threading.Event()
    try:
        with (
            _stop_on_signals(stop_requested),
            LocalStack(state_dir=state_dir, time_scale=time_scale, fire_new_jobs_now=fire_now) as stack,
        ):
            stack.scheduler.on_delivery = _print_delivery
            click.echo("vertex-cron local stack is up. In a second terminal run:\n")
            activate = Path(sys.executable).parent / "activate"
            if activate.is_file():  # installed in a virtualenv: its commands are not on PATH by themselves
                click.echo(f"  source {shlex.quote(str(activate))}")
            for name, value in stack.settings_env().items():
                click.echo(f"  export {name}={shlex.quote(value)}")
            click.echo(
                "\nthen e.g.: vertex-cron deploy nightly --spec examples/pipeline.yaml --cron '*/5 * * * *' "
                "--param run_date='{{schedule_time:%Y-%m-%d}}'"
            )
            click.echo("Scheduler firings are printed below. Ctrl-C stops everything.\n")
            stop_requested.wait()
    except LocalStackError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("local stack stopped.")


@local.command("demo")
def demo() -> None:
    """Deploy, fire twice (one PipelineJob), show history, delete: the `make demo` scenario."""
    from vertex_cron_local.demo import DemoFailed, run_demo

    try:
        run_demo(click.echo)
    except DemoFailed as exc:
        raise click.ClickException(f"demo failed: {exc}") from exc


@contextlib.contextmanager
def _stop_on_signals(stop_requested: threading.Event) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM (e.g. a process manager) both stop the stack cleanly.

    Installed explicitly for both: a shell that is not interactive starts a background job
    (`vertex-cron local up &`) with SIGINT ignored, which Python keeps, so `kill -INT`
    would otherwise do nothing. A signal that arrives while the stack starts is honoured
    as soon as it is up; one that arrives while it stops changes nothing.
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _print_delivery(delivery: Delivery) -> None:
    from vertex_cron_local.dispatcher import short_name
    from vertex_cron_trigger.timefmt import format_rfc3339

    final = delivery.final
    try:
        message = json.loads(final.body).get("message", final.body)
    except (ValueError, AttributeError):
        message = final.body
    click.echo(
        f"fired {short_name(delivery.job_name)} @ {format_rfc3339(delivery.schedule_time)}: "
        f"HTTP {final.status_code} after {len(delivery.attempts)} attempt(s) - {message}"
    )
