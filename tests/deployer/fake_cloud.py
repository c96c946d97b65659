"""An in-memory Google Cloud for one project+region, implementing the seam's Protocols
(vertex_cron.seam: DeployCloud and RunsCloud) with plain values, for fast tests of the API,
the planner and the executor. Tests only: the product never imports it.

It keeps what the real services keep as the seam reads it back (flat field maps, as
gcp.py's `_flatten` gives them), and the rules the deployer relies on: a conditional write
fails on another generation, an update replaces the top-level fields of its mask, a job
cannot be created twice, deleting what is gone is no error. It does not model the servers'
normal form or strictness: that is the wire tier's job (the emulator, test_deploy_wire.py).

`calls` records every call as (method, first argument); `fail_once[method] = error` makes the
next such call raise it (a failure half way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from vertex_cron import errors
from vertex_cron.models import (
    DesiredFunction,
    ObservedFunction,
    ObservedJob,
    PipelineRun,
    PublishedSpec,
    SpecObject,
    StoredSpec,
)
from vertex_cron.seam import Tick

READS = frozenset(
    {
        "spec_objects",
        "read_object",
        "get_function",
        "wait_for_function",
        "invoker_iam_disabled",
        "invoker_members",
        "get_job",
        "list_jobs",
        "published_pipeline",
        "pipeline_runs",
        "recent_pipeline_runs",
        "id_token",
    }
)
# The lease object's own writes: every changing run makes them, so they are left out of `mutations`.
LEASE = frozenset({"write_if_generation", "delete_if_generation"})


@dataclass
class _Object:
    generation: int
    data: bytes
    metadata: Mapping[str, str]


def _top(path: str) -> str:
    return path.split(".", 1)[0]


def _patched(old: Mapping[str, Any], new: Mapping[str, Any], mask: Iterable[str]) -> dict[str, Any]:
    """An update as the APIs apply it: each top-level field in the mask is replaced whole."""
    masked = set(mask)
    return {
        **{k: v for k, v in old.items() if _top(k) not in masked},
        **{k: v for k, v in new.items() if _top(k) in masked},
    }


@dataclass
class FakeCloud:
    project: str = "demo-project"
    region: str = "europe-west1"
    objects: dict[tuple[str, str], _Object] = field(default_factory=dict)
    functions: dict[str, ObservedFunction] = field(default_factory=dict)
    invokers: dict[str, frozenset[str]] = field(default_factory=dict)  # Cloud Run service -> run.invoker members
    invoker_check_off: set[str] = field(default_factory=set)
    jobs: dict[str, ObservedJob] = field(default_factory=dict)
    runs: dict[str, list[PipelineRun]] = field(default_factory=dict)  # schedule -> newest first
    published: dict[str, PublishedSpec] = field(default_factory=dict)
    deliveries: list[tuple[str, bytes, str]] = field(default_factory=list)
    serving: bool = True  # False: a deployed function ends without a Cloud Run service (a failed build)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_once: dict[str, Exception] = field(default_factory=dict)
    poll_interval: float = 0.0
    _generations: int = 0

    def _call(self, method: str, subject: str = "") -> None:
        self.calls.append((method, subject))
        if method in self.fail_once:
            raise self.fail_once.pop(method)

    @property
    def mutations(self) -> list[tuple[str, str]]:
        """The calls that change something, besides taking and releasing the lease."""
        return [call for call in self.calls if call[0] not in READS | LEASE]

    def _next_generation(self) -> int:
        self._generations += 1
        return self._generations

    # -- SpecBucket, LeaseObject --------------------------------------------------------------

    def upload_spec(self, bucket: str, spec: SpecObject) -> int:
        self._call("upload_spec", spec.object_name)
        found = self.objects.setdefault(
            (bucket, spec.object_name), _Object(self._next_generation(), spec.data, dict(spec.metadata))
        )
        return found.generation

    def spec_objects(self, bucket: str, prefix: str) -> list[StoredSpec]:
        self._call("spec_objects", prefix)
        return [
            StoredSpec(name, dict(found.metadata), found.generation)
            for (where, name), found in sorted(self.objects.items())
            if where == bucket and name.startswith(prefix)
        ]

    def delete_spec(self, bucket: str, object_name: str) -> None:
        self._call("delete_spec", object_name)
        self.objects.pop((bucket, object_name), None)

    def write_if_generation(self, bucket: str, object_name: str, data: bytes, *, generation: int) -> int | None:
        self._call("write_if_generation", object_name)
        found = self.objects.get((bucket, object_name))
        if (found.generation if found else 0) != generation:
            return None
        written = _Object(self._next_generation(), data, {})
        self.objects[(bucket, object_name)] = written
        return written.generation

    def read_object(self, bucket: str, object_name: str) -> tuple[int, bytes] | None:
        self._call("read_object", object_name)
        found = self.objects.get((bucket, object_name))
        return (found.generation, found.data) if found else None

    def delete_if_generation(self, bucket: str, object_name: str, *, generation: int) -> bool:
        self._call("delete_if_generation", object_name)
        found = self.objects.get((bucket, object_name))
        if found is not None and found.generation != generation:
            return False
        self.objects.pop((bucket, object_name), None)
        return True

    # -- Functions, InvokerIam ----------------------------------------------------------------

    def get_function(self, name: str) -> ObservedFunction | None:
        self._call("get_function", name)
        return self.functions.get(name)

    def deploy_function(
        self, desired: DesiredFunction, *, mask: list[str] | None, build: bool, tick: Tick
    ) -> ObservedFunction:
        self._call("deploy_function", desired.name)
        tick(0.0, "build stage" if build else "")
        old = self.functions.get(desired.name)
        if mask is None and old is not None:
            raise errors.ConcurrentChange(f"deploy function {desired.name}: it was created by someone else")
        if mask is not None and old is None:
            raise errors.NotFound(f"deploy function {desired.name}: not found")
        fields = dict(desired.fields) if old is None else _patched(old.fields, desired.fields, mask or ())
        short = desired.name.rsplit("/", 1)[-1]
        uri = f"https://{short}-fake123456-ew.a.run.app" if self.serving else ""
        service = f"projects/{self.project}/locations/{self.region}/services/{short}" if self.serving else ""
        function = ObservedFunction(
            desired.name, {**fields, "state": "ACTIVE" if self.serving else "FAILED"}, uri, service
        )
        self.functions[desired.name] = function
        return function

    def delete_function(self, name: str, *, tick: Tick) -> None:
        self._call("delete_function", name)
        function = self.functions.pop(name, None)
        if function is not None:
            self.invokers.pop(function.service, None)

    def wait_for_function(self, name: str, *, tick: Tick) -> ObservedFunction | None:
        self._call("wait_for_function", name)
        return self.functions.get(name)

    def invoker_iam_disabled(self, service: str) -> bool:
        self._call("invoker_iam_disabled", service)
        return service in self.invoker_check_off

    def invoker_members(self, service: str) -> frozenset[str]:
        self._call("invoker_members", service)
        return self.invokers.get(service, frozenset())

    def set_invokers(self, service: str, members: Iterable[str]) -> None:
        self._call("set_invokers", service)
        self.invokers[service] = frozenset(members)

    # -- SchedulerJobs ------------------------------------------------------------------------

    def get_job(self, name: str) -> ObservedJob | None:
        self._call("get_job", name)
        return self.jobs.get(name)

    def list_jobs(self) -> dict[str, ObservedJob]:
        self._call("list_jobs")
        return dict(self.jobs)

    def create_job(self, name: str, fields: Mapping[str, Any]) -> None:
        self._call("create_job", name)
        if name in self.jobs:
            raise errors.ConcurrentChange(f"create Scheduler job {name}: it was created by someone else")
        self.jobs[name] = ObservedJob(name, dict(fields))

    def update_job(self, name: str, fields: Mapping[str, Any], mask: list[str]) -> None:
        self._call("update_job", name)
        job = self._job(name)
        self.jobs[name] = replace(job, fields=_patched(job.fields, fields, mask))

    def delete_job(self, name: str) -> None:
        self._call("delete_job", name)
        self.jobs.pop(name, None)

    def pause_job(self, name: str) -> ObservedJob:
        self._call("pause_job", name)
        self.jobs[name] = replace(self._job(name), state="PAUSED")
        return self.jobs[name]

    def resume_job(self, name: str) -> ObservedJob:
        self._call("resume_job", name)
        self.jobs[name] = replace(self._job(name), state="ENABLED")
        return self.jobs[name]

    def run_job(self, name: str) -> ObservedJob:
        self._call("run_job", name)
        return self._job(name)

    def _job(self, name: str) -> ObservedJob:
        if name not in self.jobs:
            raise errors.NotFound(f"Scheduler job {name}: not found")
        return self.jobs[name]

    # -- PublishedPipelines, PipelineRuns, Firings --------------------------------------------

    def published_pipeline(self, uri: Any, *, max_bytes: int) -> PublishedSpec:
        self._call("published_pipeline", str(uri))
        if str(uri) not in self.published:
            raise errors.NotFound(f"read {uri}: not found")
        return self.published[str(uri)]

    def pipeline_runs(self, schedule: str, *, limit: int) -> list[PipelineRun]:
        self._call("pipeline_runs", schedule)
        return self.runs.get(schedule, [])[:limit]

    def recent_pipeline_runs(self, *, since: datetime, schedules: Sequence[str] = ()) -> list[PipelineRun]:
        self._call("recent_pipeline_runs", ",".join(schedules))
        return sorted(
            (
                run
                for schedule, runs in self.runs.items()
                if not schedules or schedule in schedules
                for run in runs
                if run.create_time is None or run.create_time >= since
            ),
            key=lambda run: run.create_time or since,
            reverse=True,
        )

    def id_token(self, email: str, audience: str) -> str:
        self._call("id_token", email)
        return f"token of {email} for {audience}"

    def deliver_firing(
        self, url: str, body: bytes, schedule_time: str, token: str, *, timeout: float
    ) -> tuple[int, dict[str, Any]]:
        self._call("deliver_firing", schedule_time)
        self.deliveries.append((url, body, schedule_time))
        return 200, {"outcome": "created", "message": f"created the run of {schedule_time}"}
