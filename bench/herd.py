"""The herd: N distinct schedules firing in the same second, each delivered twice, against
one warm vertex-cron instance. Exactly N PipelineJobs must exist afterwards."""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from vertex_cron_local.function_runner import FunctionProcess
from vertex_cron_trigger.timefmt import format_rfc3339

from .coldstart import BenchError, function_paths
from .stats import percentile
from .subjects import Subject
from .world import LocalCloud, fire

DELIVERIES_PER_FIRING = 2
CLIENT_THREADS = 32  # Scheduler's deliveries arrive at once; more threads only add GIL churn here
FIRING = datetime(2024, 6, 1, tzinfo=UTC)
WARMUP = FIRING - timedelta(days=1)
FIRING_TIME, WARMUP_TIME = format_rfc3339(FIRING), format_rfc3339(WARMUP)
PREFIX = "herd-"


@dataclass(frozen=True)
class Herd:
    schedules: int
    deliveries: int
    jobs_created: int  # PipelineJobs the Vertex emulator holds for the herd
    outcomes: dict[str, int]  # created / duplicate / ... as the function answered
    errors: int  # non-2xx answers and failed requests
    p50_ms: float  # function-side duration_ms from its log lines
    p99_ms: float
    wall_seconds: float
    stderr: str

    @property
    def duplicate_runs(self) -> int:
        return max(0, self.jobs_created - self.schedules)


def run(subject: Subject, cloud: LocalCloud, *, schedules: int) -> Herd:
    names = [f"{PREFIX}{i:04d}" for i in range(schedules)]
    deliveries = names * DELIVERIES_PER_FIRING
    random.Random(0).shuffle(deliveries)  # a retry may overtake its first delivery
    bodies = {name: cloud.trigger_body(name, first_firing=FIRING) for name in names}
    warmup_body = cloud.trigger_body("warmup", first_firing=WARMUP)
    # After the bodies, whose pipeline roots it allows; latency is timed: no audit hook.
    env = cloud.function_env(**function_paths(subject, guarded=False))
    with FunctionProcess(subject.source_dir, env, environment=subject.environment) as process:
        token = cloud.forwarded_token()
        warmup = fire(process.url, warmup_body, token=token, schedule_time=WARMUP_TIME)
        if not warmup.ok:
            raise BenchError(f"herd warm-up answered {warmup.status_code}: {warmup.text[:300]}")
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="bench-herd") as pool:
            answers = list(pool.map(lambda name: _deliver(process.url, bodies[name], token), deliveries))
        wall = time.perf_counter() - started
        lines = [line for line in process.log_lines() if (line.get("schedule") or "").startswith(PREFIX)]
    durations = [float(line["duration_ms"]) for line in lines]
    return Herd(
        schedules=schedules,
        deliveries=len(deliveries),
        jobs_created=len(cloud.job_names(PREFIX)),
        outcomes=dict(Counter(outcome for outcome in answers if outcome != "error")),
        errors=answers.count("error"),
        p50_ms=percentile(durations, 50),
        p99_ms=percentile(durations, 99),
        wall_seconds=wall,
        stderr=process.stderr_path.read_text(),
    )


def _deliver(url: str, body: bytes, token: str) -> str:
    """The function's outcome, or "error" for a non-2xx answer or a failed request."""
    try:
        response = fire(url, body, token=token, schedule_time=FIRING_TIME)
    except requests.RequestException:
        return "error"
    return str(response.json().get("outcome")) if response.ok else "error"
