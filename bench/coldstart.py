"""Cold start: process start to the first 2xx of a real trigger, and the peak RSS after it.

The clock starts just before functions-framework is spawned and stops at the first 2xx.
The server runs in the subject's own virtualenv over its byte-compiled source (subjects.py);
the network guard, an audit hook on every socket call, is left out of timed starts and
loaded only for the untimed proof run (`guarded=True`).
A probe connects every few milliseconds while FunctionProcess.start() waits in a thread
(its own probe sleeps 50 ms, too coarse to time a ~1 s start), and the trigger is
posted the moment the port accepts; the request then waits in the listen backlog.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vertex_cron_local.function_runner import FunctionProcess

from .processes import PeakRss, peak_rss
from .subjects import Subject
from .world import NETGUARD_DIR, LocalCloud, fire

PROBE_INTERVAL_SECONDS = 0.005
START_DEADLINE_SECONDS = 120.0
FIRST_FIRING = datetime(2024, 5, 1, 2, tzinfo=UTC)


class BenchError(Exception):
    """A measured function misbehaved (non-2xx, no start); the message says which and how."""


@dataclass(frozen=True)
class ColdStart:
    subject: str
    seconds: float  # spawn -> first 2xx
    listening_seconds: float  # spawn -> the port accepts (main.py imported, gunicorn up)
    rss: PeakRss
    token_fetches: int  # access tokens the metadata server gave during the run (the floor asks none)
    stderr: str  # the server's stderr: network-guard lines, import profiles


def firing_time(index: int) -> str:
    """The schedule time of a subject's `index`-th trigger: one daily firing after another of
    the same schedule. So every measured trigger but a schedule's very first finds the run of
    the firing before, as every firing in production does; vertex-cron then pays what it
    pays there for it (listing the schedule's newest runs, run_reports.py)."""
    return (FIRST_FIRING + timedelta(days=index)).strftime("%Y-%m-%dT%H:%M:%SZ")


def measure(
    subject: Subject,
    cloud: LocalCloud,
    *,
    schedule: str,
    firing: int,
    guarded: bool = False,
    extra_env: dict[str, str] | None = None,
) -> ColdStart:
    """The cold start of `subject` to its trigger of `schedule`'s `firing`-th time (firing_time)."""
    body = cloud.trigger_body(schedule, first_firing=FIRST_FIRING)  # before the env, which allows its pipeline root
    process = FunctionProcess(
        subject.source_dir,
        cloud.function_env(**function_paths(subject, guarded=guarded), **(extra_env or {})),
        environment=subject.environment,
    )
    token = cloud.forwarded_token()
    tokens_before = cloud.metadata.tokens_issued
    with ThreadPoolExecutor(1, thread_name_prefix="bench-start") as starter:
        started = time.perf_counter()
        starting = starter.submit(process.start)
        try:
            _wait_for_port(process.port, starting, started + START_DEADLINE_SECONDS)
            listening = time.perf_counter() - started
            response = fire(process.url, body, token=token, schedule_time=firing_time(firing))
            seconds = time.perf_counter() - started
            if not response.ok:
                raise BenchError(
                    f"{subject.title} answered {response.status_code}: {response.text[:300]}\n"
                    f"its stderr ends:\n{process.stderr_path.read_text()[-2000:]}"
                )
            starting.result()
            rss = peak_rss(process.port)
        finally:
            wait([starting])  # stop() must not race start() for the process handle
            process.stop()
    token_fetches = cloud.metadata.tokens_issued - tokens_before
    return ColdStart(subject.key, seconds, listening, rss, token_fetches, process.stderr_path.read_text())


def function_paths(subject: Subject, *, guarded: bool) -> dict[str, str]:
    """PYTHONPATH for a subject's server: its source, plus the network guard when guarded."""
    return {"PYTHONPATH": f"{subject.source_dir}:{NETGUARD_DIR}" if guarded else str(subject.source_dir)}


def _wait_for_port(port: int, starting: Future[FunctionProcess], deadline: float) -> None:
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if starting.done():
                starting.result()  # raises FunctionProcessError when the server died
            time.sleep(PROBE_INTERVAL_SECONDS)
    raise BenchError(f"nothing listened on port {port} within {START_DEADLINE_SECONDS:.0f} s")
