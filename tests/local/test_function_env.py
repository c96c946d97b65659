"""A served function runs where Cloud Build would put it: a virtualenv of its own
requirements.txt, on the deployed runtime's Python when this machine has it, never in the
deployer's environment (where google-cloud-functions shadows functions-framework's
`google.cloud.functions` and slows every start)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from vertex_cron import function_source
from vertex_cron_local.function_env import (
    COMPLETE_MARKER,
    RUNTIME_VERSION,
    FunctionEnvironmentError,
    compile_source,
    prepare,
)
from vertex_cron_local.function_runner import FunctionProcess, FunctionProcessError

pytestmark = pytest.mark.slow  # builds virtualenvs

# Reports what the function's own process can import.
PROBE_MAIN = """
import importlib.util
import json
import platform


def trigger(request):
    def importable(name):
        try:
            return importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            return False

    return json.dumps(
        {
            "python": platform.python_version(),
            "deployer": importable("vertex_cron"),
            "functions_client_library": importable("google.cloud.functions_v1.services"),
            "functions_framework": importable("functions_framework"),
        }
    )
"""


@pytest.fixture
def probe_source(tmp_path) -> Path:
    """A function that reports its environment, with the trigger's requirements.txt (so it
    shares the trigger's cached virtualenv)."""
    source = tmp_path / "probe"
    source.mkdir()
    (source / "main.py").write_text(PROBE_MAIN)
    shutil.copy(function_source.locate() / "requirements.txt", source / "requirements.txt")
    return source


def test_a_served_function_sees_only_its_requirements_on_the_runtime_python(probe_source):
    with FunctionProcess(probe_source, {}) as process:
        seen = requests.post(process.url, timeout=30).json()
        environment = process.environment

    assert environment is not None
    assert seen["functions_framework"] and not seen["deployer"]
    assert not seen["functions_client_library"]  # the package that shadowed google.cloud.functions
    if environment.matches_runtime:
        assert seen["python"].startswith(RUNTIME_VERSION + ".")
    assert seen["python"] == environment.python_version


def test_a_source_is_byte_compiled_for_the_interpreter_that_serves_it(probe_source):
    environment = prepare(probe_source / "requirements.txt")

    compile_source(probe_source, environment)

    major, minor = environment.python_version.split(".")[:2]
    assert (probe_source / "__pycache__" / f"main.cpython-{major}{minor}.pyc").is_file()


def test_a_source_without_requirements_is_refused_with_the_reason(tmp_path):
    (tmp_path / "main.py").write_text("def trigger(request):\n    return 'ok'\n")

    with pytest.raises(FunctionProcessError, match="requirements.txt does not exist"):
        FunctionProcess(tmp_path, {}).start()


def test_an_environment_is_made_once_per_requirements_and_reused(tmp_path):
    cache = tmp_path / "cache"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing beyond pip\n")

    first = prepare(requirements, cache_dir=cache)
    marker = (first.root / COMPLETE_MARKER).stat()
    again = prepare(requirements, cache_dir=cache)
    requirements.write_text("# something else\n")
    changed = prepare(requirements, cache_dir=cache)

    assert again.root == first.root and (again.root / COMPLETE_MARKER).stat().st_mtime_ns == marker.st_mtime_ns
    assert changed.root != first.root and changed.python.is_file()


def test_a_half_made_environment_is_made_again(tmp_path):
    cache = tmp_path / "cache"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing beyond pip\n")
    environment = prepare(requirements, cache_dir=cache)
    (environment.root / COMPLETE_MARKER).unlink()  # as if the install had been interrupted
    (environment.root / "bin" / "python").unlink()

    again = prepare(requirements, cache_dir=cache)

    assert again.root == environment.root and again.python.is_file() and (again.root / COMPLETE_MARKER).is_file()


def test_a_failed_install_says_which_step_failed_and_leaves_nothing_to_reuse(tmp_path):
    cache = tmp_path / "cache"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{tmp_path / 'no-such-project'}\n")  # a local path: no index is asked

    with pytest.raises(FunctionEnvironmentError, match=r"could not install requirements.txt \(exit \d+\)"):
        prepare(requirements, cache_dir=cache)

    assert not list(cache.glob(f"*/{COMPLETE_MARKER}"))
