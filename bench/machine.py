"""The machine facts a reader needs to judge the numbers: cores, load, versions, date."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "functions-framework", "gunicorn", "flask", "google-auth", "requests", "pyyaml",
    "google-cloud-aiplatform", "google-cloud-storage", "gcp-storage-emulator",
)  # fmt: skip
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Machine:
    date: str
    nproc: int
    cpu: str
    python: str
    system: str
    commit: str
    load_before: str  # 1/5/15-minute load averages: other work shares these cores
    load_after: str
    packages: dict[str, str]


def describe_machine(*, before: Machine | None = None) -> Machine:
    """Facts now; given `before`, keep its facts and record the load at the end."""
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    if before is not None:
        return replace(before, load_after=load)
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        nproc=len(os.sched_getaffinity(0)),
        cpu=_cpu_model(),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()} {platform.machine()}",
        commit=_commit(),
        load_before=load,
        load_after=load,
        packages={name: _version(name) for name in PACKAGES},
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
