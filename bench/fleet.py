"""Fleet scale: the real deployer (vertex_cron.api) applying N schedules at once against the
emulators, every control-plane call delayed like a round trip to Google, side by side with
the floor Cloud Scheduler's write quota sets.

Cloud Scheduler's default quota is 500 write requests (CreateJob, UpdateJob, DeleteJob, ...)
per minute (cloud.google.com/scheduler/quotas), so N job creations cannot take less than
N / 500 minutes without a 429: that is the floor of a first apply. The deployer paces its
writes to that quota (vertex_cron.quota); the measured first apply is compared with the floor
as a ratio. Then: the same apply again (reads only, a fixed number of listings whatever N),
`list` and `status`, counted in calls per API.

A full `python -m bench` runs it last; `python -m bench fleet` runs only this and rewrites
its section of RESULTS.md.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from vertex_cron import api
from vertex_cron.models import ScheduleInput
from vertex_cron.quota import SCHEDULER_WRITES_PER_MINUTE

from .deploy import deployer_settings
from .world import SPEC_FILE, LocalCloud

SCHEDULES = 1000  # Cloud Scheduler's default limit of jobs per region (cloud.google.com/scheduler/quotas)
LATENCY_SECONDS = 0.15  # a realistic round trip to a Google API from outside its region
TARGET_RATIO = 1.3  # first apply within 1.3x the quota's floor
_APIS = (
    ("Cloud Scheduler", re.compile(r"/jobs\b")),
    ("Cloud Functions", re.compile(r"/functions\b|/operations/|^/gcf-v2-uploads-")),
    ("Cloud Run", re.compile(r"/services/")),
    ("Vertex AI", re.compile(r"/pipelineJobs\b")),
)


@dataclass(frozen=True)
class FleetStep:
    name: str
    seconds: float
    calls: dict[str, int]  # API -> requests (GET and writes)
    writes: dict[str, int]  # API -> mutating requests
    lists: dict[str, int]  # API -> list requests (pages)


@dataclass(frozen=True)
class Fleet:
    schedules: int
    latency_seconds: float
    steps: list[FleetStep] = field(default_factory=list)

    def step(self, name: str) -> FleetStep:
        return next(step for step in self.steps if step.name == name)

    @property
    def floor_seconds(self) -> float:
        """What the quota allows at best: the first apply's Scheduler writes at 500 a minute."""
        return self.step("first apply").writes.get("Cloud Scheduler", 0) * 60 / SCHEDULER_WRITES_PER_MINUTE

    @property
    def ratio(self) -> float:
        return self.step("first apply").seconds / self.floor_seconds if self.floor_seconds else 0.0


def run(*, schedules: int, latency_seconds: float = LATENCY_SECONDS, say: Callable[[str], None] = print) -> Fleet:
    fleet = Fleet(schedules, latency_seconds)
    wanted = [_schedule(index) for index in range(schedules)]
    with LocalCloud(latency_seconds=latency_seconds) as cloud:
        settings = deployer_settings(cloud)
        for name, act in (
            ("first apply", lambda: api.apply(settings, wanted)),
            ("no-op re-apply", lambda: api.apply(settings, wanted)),
            ("list", lambda: api.list_schedules(settings)),
            ("status", lambda: api.status(settings)),
        ):
            say(f"fleet: {name} of {schedules} schedules, {latency_seconds * 1000:.0f} ms a call")
            fleet.steps.append(_measure(cloud, name, act))
    return fleet


def _schedule(index: int) -> ScheduleInput:
    return ScheduleInput(
        name=f"fleet-{index:04d}",
        spec=SPEC_FILE,
        cron=f"{index % 60} {index // 60 % 24} * * *",
        time_zone="UTC",
        parameters={"run_date": "{{schedule_time:%Y-%m-%d}}"},
    )


def _measure(cloud: LocalCloud, name: str, act: Callable[[], Any]) -> FleetStep:
    cloud.vertex.clear_calls()
    cloud.storage.calls.clear()
    started = time.perf_counter()
    act()
    seconds = time.perf_counter() - started
    calls: Counter[str] = Counter()
    writes: Counter[str] = Counter()
    lists: Counter[str] = Counter()
    for method, path, _status in cloud.vertex.calls:
        api_name = next((title for title, pattern in _APIS if pattern.search(path)), "other")
        calls[api_name] += 1
        writes[api_name] += method not in ("GET", "HEAD")
        lists[api_name] += method == "GET" and path.endswith(("/jobs", "/pipelineJobs", "/functions"))
    for method, path in cloud.storage.calls:
        calls["Cloud Storage"] += 1
        writes["Cloud Storage"] += method != "GET"
        lists["Cloud Storage"] += method == "GET" and path.endswith("/o")
    return FleetStep(name, seconds, dict(calls), dict(writes), dict(lists))


def render(fleet: Fleet) -> str:
    first = fleet.step("first apply")
    met = fleet.ratio <= TARGET_RATIO
    rows = [
        f"| {step.name} | {step.seconds:.1f} s | {_per_api(step.calls)} | {_per_api(step.lists)} | "
        f"{sum(step.writes.values())} |"
        for step in fleet.steps
    ]
    return "\n".join(
        [
            "## Fleet: applying many schedules at once",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: the real deployer applying "
            f"{fleet.schedules:,} schedules against the emulators, every control-plane call delayed "
            f"{fleet.latency_seconds * 1000:.0f} ms. Cloud Scheduler's default write quota is "
            f"{SCHEDULER_WRITES_PER_MINUTE} requests a minute (cloud.google.com/scheduler/quotas), so "
            f"{first.writes.get('Cloud Scheduler', 0):,} job writes take at least "
            f"{fleet.floor_seconds:.1f} s: the floor. The deployer paces its writes to the quota, a few in flight.",
            "",
            "| target | measured |  |",
            "|---|---|---|",
            f"| first apply ≤ {TARGET_RATIO}× the quota's floor | {first.seconds:.1f} s = {fleet.ratio:.2f}× "
            f"the floor ({fleet.floor_seconds:.1f} s) | {'met' if met else '**missed**'} |",
            f"| no-op re-apply makes only reads | {sum(fleet.step('no-op re-apply').writes.values())} writes | "
            f"{'met' if not sum(fleet.step('no-op re-apply').writes.values()) else '**missed**'} |",
            "",
            "| step | time | calls per API | of them list calls (pages) | writes |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _per_api(counts: dict[str, int]) -> str:
    return ", ".join(f"{api_name} {count:,}" for api_name, count in sorted(counts.items()) if count) or "-"


# RESULTS.md holds this section between these markers, so `python -m bench fleet` can
# replace it alone.
_BEGIN, _END = "<!-- fleet: python -m bench fleet -->", "<!-- /fleet -->"


def with_section(text: str, section: str) -> str:
    """`text` with its fleet section replaced by `section` (appended when it has none)."""
    if not section:
        return text
    block = f"{_BEGIN}\n{section.rstrip()}\n{_END}\n"
    start, end = text.find(_BEGIN), text.find(_END)
    if 0 <= start < end:
        return text[:start] + block + text[end + len(_END) :].lstrip("\n")
    return f"{text.rstrip()}\n\n{block}" if text else block


def invariant_failures(fleet: Fleet) -> list[str]:
    """What must hold whatever the machine's speed (timings are reported, never fatal)."""
    failures = []
    if sum(fleet.step("no-op re-apply").writes.values()):
        failures.append(f"the no-op re-apply wrote: {fleet.step('no-op re-apply').writes}")
    if fleet.step("first apply").writes.get("Cloud Scheduler") != fleet.schedules:
        failures.append(f"the first apply did not write one job per schedule: {fleet.step('first apply').writes}")
    return failures


def as_json(fleet: Fleet) -> dict[str, Any]:
    return {**asdict(fleet), "floor_seconds": fleet.floor_seconds, "ratio": fleet.ratio}
