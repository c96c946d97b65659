"""`vertex-cron doctor` against the emulators: a project set up as infra/ sets it up passes;
each way of breaking it gives one exact ✗ line with its fix, and exit 1."""

from __future__ import annotations

import json

from conftest import PROJECT, SA  # noqa: F401  (tests/doctor/conftest.py)


def test_healthy_project_passes(setup_project, doctor_cli):
    setup_project()
    result = doctor_cli("doctor")
    print(result.output)
    assert result.exit_code == 0
