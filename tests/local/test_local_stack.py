"""`vertex-cron local up` and LocalStack: the real CLI in a second terminal, Ctrl-C, restarts."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from vertex_cron import api, config
from vertex_cron.models import ScheduleInput
from vertex_cron_local.stack import LocalStack

REPO = Path(__file__).resolve().parents[2]
VERTEX_CRON = str(Path(sys.executable).parent / "vertex-cron")
SPEC = REPO / "examples" / "pipeline.yaml"
PARAMETERS = {"run_date": "{{schedule_time:%Y-%m-%d}}"}


class Terminal:
    """A foreground process whose output lines are collected as they appear."""

    def __init__(self, *args: str, env: dict[str, str], **popen: Any) -> None:
        self.lines: list[str] = []
        self._fresh: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._fresh.put(line)

    def wait_for(self, fragment: str, *, deadline: float = 120.0) -> str:
        for line in self.lines:
            if fragment in line:
                return line
        while True:
            line = self._fresh.get(timeout=deadline)
            if fragment in line:
                return line


def clean_env() -> dict[str, str]:
    """This machine's environment without any vertex-cron or emulator setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("VERTEX_CRON_", "STORAGE_EMULATOR_HOST"))}


def exports(terminal: Terminal) -> dict[str, str]:
    terminal.wait_for("Ctrl-C stops everything")
    pairs = [
        line.strip().removeprefix("export ").split("=", 1)
        for line in terminal.lines
        if line.strip().startswith("export ")
    ]
    return {name: value.strip("'") for name, value in pairs}


def refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            return False
    except OSError:
        return True


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VERTEX_CRON, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_local_up_serves_the_cli_in_a_second_terminal_and_ctrl_c_stops_everything():
    up = Terminal(VERTEX_CRON, "local", "up", "--fire-now", env={**clean_env(), "PYTHONUNBUFFERED": "1"})
    try:
        second_terminal = {**clean_env(), **exports(up), "VERTEX_CRON_POLL_SECONDS": "0.1"}

        deployed = run_cli(
            "deploy",
            "nightly",
            "--spec",
            str(SPEC),
            "--cron",
            "0 3 * * *",
            "--param",
            "run_date={{schedule_time:%Y-%m-%d}}",
            env=second_terminal,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        fired = up.wait_for("fired vertex-cron-nightly")
        history = run_cli("history", "nightly", env=second_terminal)
        described = run_cli("describe", "nightly", "--format", "json", env=second_terminal)
    finally:
        up.process.send_signal(signal.SIGINT)
        returncode = up.process.wait(timeout=120)

    # the second terminal is told how to find the commands (they live in the virtualenv's bin)
    assert f"source {Path(VERTEX_CRON).parent / 'activate'}" in [line.strip() for line in up.lines]
    assert "HTTP 200" in fired and "created PipelineJob" in fired
    assert history.returncode == 0 and "nightly-" in history.stdout
    function_url = json.loads(described.stdout)["function_url"]
    assert returncode == 0
    assert "local stack stopped." in up.lines
    assert "Traceback" not in "\n".join(up.lines)
    assert refuses_connections(second_terminal["VERTEX_CRON_EMULATOR_HOST"])
    assert refuses_connections(function_url)


def ignore_sigint() -> None:
    """What a non-interactive shell does to a job it starts with `&`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "signum, background",
    [
        (signal.SIGINT, False),
        (signal.SIGINT, True),  # `vertex-cron local up &` in a script: started with SIGINT ignored
        (signal.SIGTERM, False),
    ],
    ids=["SIGINT", "SIGINT-background", "SIGTERM"],
)
def test_local_up_stops_cleanly_on_a_signal_and_frees_its_ports(signum, background, wait_until):
    up = Terminal(
        VERTEX_CRON,
        "local",
        "up",
        env={**clean_env(), "PYTHONUNBUFFERED": "1"},
        preexec_fn=ignore_sigint if background else None,
    )
    try:
        addresses = exports(up)
        up.process.send_signal(signum)
        wait_until(lambda: up.process.poll() is not None, f"local up to exit on {signal.Signals(signum).name}")
    finally:
        if up.process.poll() is None:
            up.process.kill()
            up.process.wait()

    assert up.process.returncode == 0, "\n".join(up.lines)
    assert wait_until(lambda: "local stack stopped." in up.lines, "the goodbye line")
    assert "Traceback" not in "\n".join(up.lines)
    assert refuses_connections(addresses["VERTEX_CRON_EMULATOR_HOST"])
    assert refuses_connections(addresses["STORAGE_EMULATOR_HOST"])


def deployer_settings(stack: LocalStack) -> config.DeployerSettings:
    return config.resolve({}, {**stack.settings_env(), config.POLL_SECONDS_ENV: "0.1"})


def test_a_restarted_stack_keeps_its_addresses_schedules_and_function(tmp_path):
    schedule = ScheduleInput("nightly", SPEC, "0 3 * * *", parameters=PARAMETERS)
    with LocalStack(state_dir=tmp_path) as stack:
        env_before = stack.settings_env()
        api.deploy(deployer_settings(stack), schedule)
        url_before = api.describe(deployer_settings(stack), "nightly").job.fields["http_target.uri"]

    with LocalStack(state_dir=tmp_path) as stack:
        settings = deployer_settings(stack)
        listed = [status.name for status in api.list_schedules(settings)]
        # Spec objects are kept in the state directory too (storage/): deploying the same
        # schedule again finds everything in place and changes nothing.
        redeployed = api.deploy(settings, schedule)
        delivery = stack.scheduler.fire_now("vertex-cron-nightly").result(timeout=120)

        assert stack.settings_env() == env_before
        assert listed == ["nightly"]
        assert redeployed.mutations == ()
        assert api.describe(settings, "nightly").job.fields["http_target.uri"] == url_before
        assert delivery.succeeded, delivery.final.body
