"""What the deployer needs from Google Cloud, cut by who needs it.

Each consumer states the calls it makes as a Protocol built from small per-API ones:

    DeployCloud    plan/apply/delete (api.apply, api.delete, observe, executor, lease):
                   spec objects, the lease object, the function, its invokers, Scheduler jobs,
                   pipelines published to Artifact Registry
    RunsCloud      list/describe/pause/resume/run/follow/history/status/backfill:
                   Scheduler jobs, PipelineJobs, delivering a firing as Scheduler does
    DoctorCloud    doctor's read-only inspection: APIs, identities, IAM, the deployed function

gcp.GoogleCloud implements all of them over the google-cloud-* libraries; the tests' in-memory
fake (tests/deployer/fake_cloud.py) implements them too. The seam carries no domain rule:
it speaks plain values (models.py) and Google's errors translated into errors.py's tree, and
leaves deciding what those values mean (which jobs are managed, whether a service may be
used) to the modules above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from vertex_cron_trigger.template_uri import TemplateUri

from .models import (
    Binding,
    DesiredFunction,
    ObservedFunction,
    ObservedJob,
    PipelineRun,
    PublishedSpec,
    SpecObject,
    StoredSpec,
)

# Called while an operation runs: the seconds elapsed, and what it is doing now ("" if not known).
Tick = Callable[[float, str], None]


class SpecBucket(Protocol):
    """Content-addressed pipeline specs in the artifact bucket."""

    def upload_spec(self, bucket: str, spec: SpecObject) -> int: ...
    def spec_objects(self, bucket: str, prefix: str) -> list[StoredSpec]: ...
    def delete_spec(self, bucket: str, object_name: str) -> None: ...


class LeaseObject(Protocol):
    """Conditional writes of one small object (lease.py); generation 0: it must not exist."""

    def write_if_generation(self, bucket: str, object_name: str, data: bytes, *, generation: int) -> int | None: ...
    def read_object(self, bucket: str, object_name: str) -> tuple[int, bytes] | None: ...
    def delete_if_generation(self, bucket: str, object_name: str, *, generation: int) -> bool: ...


class FunctionReader(Protocol):
    def get_function(self, name: str) -> ObservedFunction | None: ...


class Functions(FunctionReader, Protocol):
    """The trigger function (Cloud Functions v2) and the operations that change it."""

    @property
    def poll_interval(self) -> float: ...
    def deploy_function(
        self, desired: DesiredFunction, *, mask: list[str] | None, build: bool, tick: Tick
    ) -> ObservedFunction: ...
    def delete_function(self, name: str, *, tick: Tick) -> None: ...
    def wait_for_function(self, name: str, *, tick: Tick) -> ObservedFunction | None: ...


class InvokerReader(Protocol):
    """Who may invoke the function's Cloud Run service, and whether Cloud Run checks at all."""

    def invoker_iam_disabled(self, service: str) -> bool: ...
    def invoker_members(self, service: str) -> frozenset[str]: ...


class InvokerIam(InvokerReader, Protocol):
    def set_invokers(self, service: str, members: Iterable[str]) -> None: ...


class JobLister(Protocol):
    def list_jobs(self) -> Mapping[str, ObservedJob]:
        """Every Scheduler job of the project+region, by full name (all pages)."""
        ...


class JobReader(JobLister, Protocol):
    def get_job(self, name: str) -> ObservedJob | None: ...


class SchedulerJobs(JobReader, Protocol):
    def create_job(self, name: str, fields: Mapping[str, Any]) -> None: ...
    def update_job(self, name: str, fields: Mapping[str, Any], mask: list[str]) -> None: ...
    def delete_job(self, name: str) -> None: ...
    def pause_job(self, name: str) -> ObservedJob: ...
    def resume_job(self, name: str) -> ObservedJob: ...
    def run_job(self, name: str) -> ObservedJob: ...


class PublishedPipelines(Protocol):
    def published_pipeline(self, uri: TemplateUri, *, max_bytes: int) -> PublishedSpec: ...


class PipelineRuns(Protocol):
    def pipeline_runs(self, schedule: str, *, limit: int) -> list[PipelineRun]:
        """The schedule's `limit` newest PipelineJobs, newest first."""
        ...

    def recent_pipeline_runs(self, *, since: datetime, schedules: Sequence[str] = ()) -> list[PipelineRun]:
        """Every vertex-cron PipelineJob of the location (of `schedules` only, when given)
        created at or after `since`, newest first (all pages)."""
        ...


class Firings(Protocol):
    """Delivering a firing to the function as Cloud Scheduler does (backfill)."""

    def id_token(self, email: str, audience: str) -> str: ...
    def deliver_firing(
        self, url: str, body: bytes, schedule_time: str, token: str, *, timeout: float
    ) -> tuple[int, dict[str, Any]]: ...


class Inspection(Protocol):
    """Who may do what: enabled APIs, service accounts, roles, IAM policies, the caller's permissions."""

    def enabled_services(self) -> frozenset[str]: ...
    def service_account_exists(self, email: str) -> bool: ...
    def role_permissions(self, role: str) -> frozenset[str]: ...
    def caller_project_permissions(self, permissions: Iterable[str]) -> frozenset[str]: ...
    def caller_service_account_permissions(self, email: str, permissions: Iterable[str]) -> frozenset[str]: ...
    def caller_bucket_permissions(self, bucket: str, permissions: Iterable[str]) -> frozenset[str]: ...
    def project_bindings(self) -> list[Binding]: ...
    def service_account_bindings(self, email: str) -> list[Binding]: ...
    def bucket_bindings(self, bucket: str) -> list[Binding]: ...


@runtime_checkable
class DeployCloud(SpecBucket, LeaseObject, Functions, InvokerIam, SchedulerJobs, PublishedPipelines, Protocol):
    """What plan/apply/delete call."""


@runtime_checkable
class RunsCloud(SchedulerJobs, PipelineRuns, Firings, Protocol):
    """What the commands on deployed schedules and their runs call."""


@runtime_checkable
class DoctorCloud(Inspection, FunctionReader, InvokerReader, JobLister, Protocol):
    """What doctor reads (and nothing it could change)."""
