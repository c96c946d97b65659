"""Fixtures for the Luigi task: the example DAG run the way users run it,
`python -m luigi --module luigi_dag ... --local-scheduler`, against the shared emulators."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from luigi_support import EXAMPLES, PROJECT, REGION, WORKLOAD_SA, Dag


@pytest.fixture
def dag(tmp_path: Path, emulator_env: dict[str, str]) -> Iterator[Dag]:
    env = {
        **os.environ,
        **emulator_env,
        "VERTEX_CRON_PROJECT": PROJECT,
        "VERTEX_CRON_REGION": REGION,
        "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")])),
    }
    runner = Dag(tmp_path, env)
    yield runner
    runner.stop_all()
