"""Where a function's start-up time goes: `python -X importtime` of a served function,
compared module by module with the floor's.

One extra cold start per subject runs with PYTHONPROFILEIMPORTTIME=1 (the environment
form of -X importtime), so the profile covers both the master's import of main.py and
the worker's lazy imports during the first trigger. Not timed: profiling slows imports.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

PROFILE_ENV = {"PYTHONPROFILEIMPORTTIME": "1"}
_LINE_PREFIX = "import time:"
TOP = 8


@dataclass(frozen=True)
class PackageCost:
    package: str  # top-level import name, e.g. "google" or "yaml"
    modules: int
    self_ms: float


@dataclass(frozen=True)
class ImportProfile:
    subject: str
    extra_modules: int  # imported by the subject, not by the floor
    extra_ms: float  # their summed self time
    top: list[PackageCost]  # the costliest extra packages, largest first


def self_times_us(stderr: str) -> dict[str, int]:
    """module -> self import time in µs, from -X importtime lines."""
    times: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith(_LINE_PREFIX):
            continue
        fields = line[len(_LINE_PREFIX) :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        times[fields[2].strip()] = times.get(fields[2].strip(), 0) + int(fields[0])
    return times


def compare(subject: str, stderr: str, floor_stderr: str) -> ImportProfile:
    floor = self_times_us(floor_stderr)
    extra = {module: us for module, us in self_times_us(stderr).items() if module not in floor}
    by_package: dict[str, list[int]] = defaultdict(list)
    for module, us in extra.items():
        by_package[_package(module)].append(us)
    costs = sorted(
        (PackageCost(package, len(times), sum(times) / 1000) for package, times in by_package.items()),
        key=lambda cost: cost.self_ms,
        reverse=True,
    )
    return ImportProfile(subject, len(extra), sum(extra.values()) / 1000, costs[:TOP])


def _package(module: str) -> str:
    """google.cloud.aiplatform.x -> google.cloud.aiplatform; google.auth.x -> google.auth;
    anything else -> its top-level package."""
    parts = module.split(".")
    depth = 3 if parts[:2] == ["google", "cloud"] else 2 if parts[0] == "google" else 1
    return ".".join(parts[:depth])
