"""The function source must be importable and shippable from one place."""

from pathlib import Path

import vertex_cron_trigger

REPO = Path(__file__).resolve().parents[1]


def test_trigger_runtime_is_the_function_directory_package():
    assert Path(vertex_cron_trigger.__file__).resolve().parent == REPO / "function" / "vertex_cron_trigger"
