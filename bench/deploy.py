"""Deploy cost: API calls and wall time of the real deployer (vertex_cron.api.apply)
against the emulators, each control-plane call delayed like a round trip to Google.

Steps: a first deploy (one schedule: spec upload, function, invoker grant, job), the same
again (must make 0 mutating calls), then schedules 2..N added (no function rebuild).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from vertex_cron import api, config
from vertex_cron.models import ScheduleInput

from .world import PROJECT, REGION, SPEC_BUCKET, SPEC_FILE, WORKLOAD_SA, LocalCloud

LATENCY_SECONDS = 0.05
POLL_SECONDS = "0.05"  # long-running operations are polled this often (default 2 s)
# Writes that rebuild or change the function: upload URL, source upload, create, patch.
FUNCTION_WRITE = re.compile(r"/functions(:generateUploadUrl)?$|/functions/[^/:]+$|^/gcf-v2-uploads-")


@dataclass(frozen=True)
class DeployStep:
    name: str
    schedules: int
    api_calls: int  # control-plane calls (Functions, Run, Scheduler), each delayed
    mutating_calls: int
    storage_calls: int
    seconds: float
    function_touched: bool  # any write to the function (upload URL, upload, create, patch)


def run(*, schedules: int) -> list[DeployStep]:
    with LocalCloud(latency_seconds=LATENCY_SECONDS) as cloud:
        settings = deployer_settings(cloud)
        wanted = [_schedule(i) for i in range(1, schedules + 1)]
        steps = [("first deploy", wanted[:1]), ("no-op redeploy", wanted[:1])]
        if schedules > 1:
            steps.append((f"add schedules 2..{schedules}", wanted))
        return [_measure(cloud, settings, name, subset) for name, subset in steps]


def deployer_settings(cloud: LocalCloud) -> config.Settings:
    """The deployer's settings for the bench project, pointed at `cloud`'s emulators."""
    return config.resolve(
        {},
        {
            "VERTEX_CRON_PROJECT": PROJECT,
            "VERTEX_CRON_REGION": REGION,
            "VERTEX_CRON_BUCKET": SPEC_BUCKET,
            "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
            "VERTEX_CRON_FUNCTION_SA": f"vertex-cron-function@{PROJECT}.iam.gserviceaccount.com",
            "VERTEX_CRON_SCHEDULER_SA": f"vertex-cron-scheduler@{PROJECT}.iam.gserviceaccount.com",
            "VERTEX_CRON_BUILD_SA": f"vertex-cron-build@{PROJECT}.iam.gserviceaccount.com",
            "VERTEX_CRON_EMULATOR_HOST": cloud.vertex.url,
            "STORAGE_EMULATOR_HOST": cloud.storage.url,
            "VERTEX_CRON_POLL_SECONDS": POLL_SECONDS,
        },
    )


def _schedule(index: int) -> ScheduleInput:
    return ScheduleInput(
        name=f"bench-{index:02d}",
        spec=SPEC_FILE,
        cron=f"{index % 60} 3 * * *",
        time_zone="Europe/Paris",
        parameters={"run_date": "{{schedule_time:%Y-%m-%d}}"},
    )


def _measure(
    cloud: LocalCloud, settings: config.DeployerSettings, name: str, schedules: list[ScheduleInput]
) -> DeployStep:
    cloud.vertex.clear_calls()
    cloud.storage.calls.clear()
    started = time.perf_counter()
    api.apply(settings, schedules)
    seconds = time.perf_counter() - started
    writes = [(method, path) for method, path, _status in cloud.vertex.calls if method not in ("GET", "HEAD")]
    return DeployStep(
        name=name,
        schedules=len(schedules),
        api_calls=len(cloud.vertex.calls),
        mutating_calls=cloud.vertex.mutating_calls() + sum(1 for method, _ in cloud.storage.calls if method != "GET"),
        storage_calls=len(cloud.storage.calls),
        seconds=seconds,
        function_touched=any(FUNCTION_WRITE.search(path) for _method, path in writes),
    )
