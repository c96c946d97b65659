"""`vertex-cron` starts in the time click takes: a command loads what it uses when it runs.

Each check runs in a fresh interpreter, since this test process has long imported
everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

# The Google client libraries and HTTP stacks the deployer's commands use, and the local
# emulator stack `vertex-cron local` starts (google.cloud itself is a namespace site loads).
HEAVY = ("google.cloud.", "google.api_core", "google.auth", "grpc", "requests", "urllib3", "yaml", "croniter")


def _modules_after(script: str) -> list[str]:
    code = f"import json, sys\n{script}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_loads_neither_the_local_stack_nor_a_client_library():
    loaded = _modules_after("import vertex_cron.cli")

    assert [m for m in loaded if "emulator" in m or "vertex_cron_local" in m] == []
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_version_and_help_load_no_client_library():
    for argv in (["--version"], ["--help"]):
        loaded = _modules_after(
            f"from vertex_cron.cli import cli\ncli.main({argv!r}, standalone_mode=False, prog_name='vertex-cron')"
        )
        assert [m for m in loaded if m.startswith(HEAVY) or "emulator" in m] == [], argv


def test_version_and_help_load_no_settings_file_reader_nor_validation_rules():
    """Only commands that resolve settings read vertex-cron.toml; only deploy's flags (built
    when `deploy` runs or shows its own help) need the schedule options' rules."""
    script = "from vertex_cron.cli import cli\ncli.main({argv!r}, standalone_mode=False, prog_name='vertex-cron')"
    for argv in (["--version"], ["--help"]):
        loaded = _modules_after(script.format(argv=argv))
        assert [m for m in loaded if m in ("tomllib", "vertex_cron.validation", "vertex_cron.models")] == [], argv
        assert [m for m in loaded if m.startswith("vertex_cron_trigger")] == [], argv


def test_deploy_is_listed_by_help_and_built_with_its_flags_when_asked():
    listed, own = _run_cli("--help"), _run_cli("deploy", "--help")

    assert listed.returncode == 0 and own.returncode == 0
    assert "Create or update schedule NAME" in listed.stdout.split("Commands:")[1]
    assert "--cron" in own.stdout and "--catch-up" in own.stdout


def test_the_installed_version_check_answers_before_loading_click():
    """`vertex-cron --version` as installed (pyproject's console script) prints what click's
    --version prints, from a process that imports neither click nor the commands."""
    script = Path(sys.executable).with_name("vertex-cron")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), "--version"], capture_output=True, text=True, timeout=60
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]

    assert done.returncode == 0 and done.stdout == _run_cli("--version").stdout
    assert "vertex_cron" in imported  # the profile covers the script's own imports
    assert [m for m in imported if m.split(".")[0] == "click" or m == "vertex_cron.cli"] == []


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = f"from vertex_cron.cli import main; main({list(args)!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_help_still_lists_the_local_group_and_local_help_its_commands():
    top, local = _run_cli("--help"), _run_cli("local", "--help")

    assert top.returncode == 0 and local.returncode == 0
    assert "local" in [line.split()[0] for line in top.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert {"up", "demo"} <= {
        line.split()[0] for line in local.stdout.split("Commands:")[1].splitlines() if line.strip()
    }
