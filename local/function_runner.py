"""Serve a trigger function's source with functions-framework in a subprocess.

This is how the local stack, the wire tests and the benchmarks run "the zip the deployer
would upload": extracted to a directory and served as Cloud Functions would,
`functions-framework --source main.py --target trigger`, in a virtualenv holding only the
source's requirements.txt (function_env.py), never in the deployer's own.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from .function_env import FunctionEnvironment, FunctionEnvironmentError, prepare

TARGET = "trigger"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
# The parent's own configuration must not leak into the function: it gets only `env`.
_CONFIG_PREFIXES = ("VERTEX_CRON_", "STORAGE_EMULATOR_HOST", "K_SERVICE", "GOOGLE_CLOUD_PROJECT")
# Nor may the parent's virtualenv: the function's interpreter finds its own packages.
_ENVIRONMENT_VARIABLES = ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")


class FunctionProcessError(Exception):
    """functions-framework did not start or died; the message carries its stderr."""


def extract_zip(data: bytes, destination: Path | None = None) -> Path:
    """Unpack a function zip into `destination` (a new temp dir when None); refuses entries
    that would land outside it."""
    target = Path(destination) if destination is not None else Path(tempfile.mkdtemp(prefix="vertex-cron-fn-"))
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.namelist():
            if not (root / member).resolve().is_relative_to(root):
                raise FunctionProcessError(f"zip entry {member!r} escapes the extraction directory")
        archive.extractall(root)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FunctionProcess:
    """One functions-framework server on 127.0.0.1; a context manager.

    `environment`: the virtualenv to serve from; by default the cached one for the
    source's own requirements.txt (made on first use, which can take a while)."""

    def __init__(
        self,
        source_dir: Path,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        environment: FunctionEnvironment | None = None,
    ) -> None:
        self.source_dir = Path(source_dir)
        self.env = dict(env)
        self.environment = environment
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._output_dir = Path(tempfile.mkdtemp(prefix="vertex-cron-fn-output-"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def stdout_path(self) -> Path:
        return self._output_dir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self._output_dir / "stderr.log"

    def start(self) -> FunctionProcess:
        if not (self.source_dir / "main.py").is_file():
            raise FunctionProcessError(f"{self.source_dir} has no main.py")
        if self.environment is None:
            try:
                self.environment = prepare(self.source_dir / "requirements.txt")
            except FunctionEnvironmentError as exc:
                raise FunctionProcessError(str(exc)) from exc
        command = [
            str(self.environment.functions_framework),
            "--source",
            "main.py",
            "--target",
            TARGET,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_CONFIG_PREFIXES) and k not in _ENVIRONMENT_VARIABLES
        }
        # The source directory comes first on the path, as the function's own directory does on Cloud Run.
        environment |= {"PYTHONPATH": str(self.source_dir), "PYTHONUNBUFFERED": "1", **self.env}
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self._process = subprocess.Popen(  # noqa: S603 - an argv list of our own, no shell
                command,
                cwd=self.source_dir,
                env=environment,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # its own process group: stop() reaches gunicorn's workers
            )
        self._wait_until_listening(self._process)
        return self

    def _wait_until_listening(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FunctionProcessError(
                    f"functions-framework exited with {process.returncode}: {self.stderr_path.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise FunctionProcessError(
            f"functions-framework did not listen on port {self.port} within {START_TIMEOUT_SECONDS}s"
        )

    def log_lines(self) -> list[dict[str, Any]]:
        """The structured JSON lines the function wrote to stdout so far."""
        lines = []
        for line in self.stdout_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> FunctionProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
