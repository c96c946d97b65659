"""Constants and the subprocess runner shared by the Luigi tests and their fixtures
(a uniquely named module: `from conftest import ...` is ambiguous across test folders)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROJECT, REGION = "luigi-project", "us-central1"
WORKLOAD_SA = f"vertex-cron-workload@{PROJECT}.iam.gserviceaccount.com"
# Fast polling keeps the tests short; the backoff itself is still exercised.
FAST_POLLING = ("--TrainModel-poll-initial-seconds", "0.05", "--TrainModel-poll-max-seconds", "0.3")
DEADLINE_SECONDS = 60.0


class Dag:
    """Runs the example DAG in subprocesses, in a scratch directory, with the emulator env."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self._running: list[subprocess.Popen[str]] = []

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "luigi",
            "--module",
            "luigi_dag",
            *args,
            "--local-scheduler",
            "--workdir",
            str(self.workdir),
            *FAST_POLLING,
        ]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            self.command(*args),
            cwd=self.workdir,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self._running:
            if process.poll() is None:
                process.kill()
                process.communicate()
