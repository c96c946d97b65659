"""The virtualenv a trigger function runs in: what Cloud Build installs for it, nothing else.

Cloud Build gives a function a fresh environment holding only its `requirements.txt`
(`pip install -r requirements.txt`, hash-checked when the file carries hashes), on the
deployer's runtime, then byte-compiles the source (`python -m compileall -f -q .`,
GoogleCloudPlatform/functions-framework-python#242). Serving a function from the
deployer's own virtualenv instead is not that environment: there `google-cloud-functions`
(a deployer dependency) and functions-framework both install `google/cloud/functions/`,
and when the client library's `__init__.py` wins, functions-framework's start-up imports
the whole functions_v1 client (about 230 ms and tens of MiB more than on Cloud Run).

Environments are cached by the hash of their requirements (and constraints) and the
interpreter's version, under the user's cache directory: the first function started on a
machine pays for the install, every later one starts at once. Concurrent processes wait
for one another on a lock file.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vertex_cron.desired import RUNTIME

# The Python Cloud Build gives the function: the deployer's runtime, "python312" -> "3.12".
RUNTIME_VERSION = f"{RUNTIME.removeprefix('python')[0]}.{RUNTIME.removeprefix('python')[1:]}"
COMPLETE_MARKER = ".vertex-cron-complete"
INSTALL_TIMEOUT_SECONDS = 900.0
_VERSION_PROBE = "import platform; print(platform.python_version())"


class FunctionEnvironmentError(Exception):
    """The function's virtualenv could not be created; the message says which step failed."""


@dataclass(frozen=True)
class FunctionEnvironment:
    root: Path
    python_version: str  # the interpreter's, e.g. "3.12.1"

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def functions_framework(self) -> Path:
        return self.root / "bin" / "functions-framework"

    @property
    def matches_runtime(self) -> bool:
        """False where no Python of the deployed runtime was found (see runtime_interpreter)."""
        return self.python_version.rsplit(".", 1)[0] == RUNTIME_VERSION


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vertex-cron" / "function-envs"


@functools.cache
def runtime_interpreter() -> tuple[str, str]:
    """(executable, version) of the deployed runtime's Python: `python3.12` on PATH, else one
    pyenv installed (its shim answers only where 3.12 is selected). Where neither is 3.12,
    this interpreter: a machine without the runtime's Python still serves functions."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{RUNTIME_VERSION}")]
    candidates += [
        str(path) for path in sorted(pyenv_root.glob(f"versions/{RUNTIME_VERSION}.*/bin/python{RUNTIME_VERSION}"))
    ]
    for candidate in filter(None, candidates):
        version = _version_of(candidate)
        if version.rsplit(".", 1)[0] == RUNTIME_VERSION:
            return candidate, version
    return sys.executable, platform.python_version()


def _version_of(interpreter: str) -> str:
    try:
        probe = subprocess.run(  # noqa: S603 - our own argv
            [interpreter, "-c", _VERSION_PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return probe.stdout.strip() if probe.returncode == 0 else ""


def prepare(
    requirements: Path, *, constraints: Path | None = None, cache_dir: Path | None = None
) -> FunctionEnvironment:
    """The cached virtualenv for `requirements` (pip's `-c constraints` too), created when absent."""
    requirements = Path(requirements)
    if not requirements.is_file():
        raise FunctionEnvironmentError(f"{requirements} does not exist: a function's source carries its requirements")
    interpreter, version = runtime_interpreter()
    digest = hashlib.sha256(requirements.read_bytes())
    if constraints is not None:
        digest.update(b"\0constraints\0" + Path(constraints).read_bytes())
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    environment = FunctionEnvironment(cache / f"py{version}-{digest.hexdigest()[:24]}", version)
    # A virtualenv cannot be moved once made (its scripts name their interpreter by absolute
    # path), so it is built in place under a lock, and used only once its marker is written.
    with (cache / f"{environment.root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (environment.root / COMPLETE_MARKER).is_file():
            _create(environment, interpreter, requirements, constraints)
    return environment


def _create(environment: FunctionEnvironment, interpreter: str, requirements: Path, constraints: Path | None) -> None:
    shutil.rmtree(environment.root, ignore_errors=True)  # a half-made one from an interrupted run
    _run("create the virtualenv", [interpreter, "-m", "venv", str(environment.root)])
    install = [str(environment.python), "-m", "pip", "install", "--quiet", "--no-input"]
    install += ["--disable-pip-version-check", "-r", str(requirements)]
    if constraints is not None:
        install += ["-c", str(constraints)]
    _run(f"install {requirements.name}", install)
    (environment.root / COMPLETE_MARKER).write_text(requirements.read_text())


def compile_source(source_dir: Path, environment: FunctionEnvironment) -> None:
    """Byte-compile a function's source as the Cloud Functions build does."""
    _run("byte-compile the source", [str(environment.python), "-m", "compileall", "-f", "-q", "."], cwd=source_dir)


def _run(step: str, argv: list[str], *, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - our own argv
            argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FunctionEnvironmentError(f"could not {step}: {exc}") from exc
    if done.returncode != 0:
        output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise FunctionEnvironmentError(f"could not {step} (exit {done.returncode}):\n{output}")
