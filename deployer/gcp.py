"""THE seam to Google Cloud: Cloud Storage, Cloud Functions v2, Cloud Run v2 IAM, Cloud
Scheduler and Vertex AI, through the google-cloud-* client libraries over REST; IAM v1 and
Artifact Registry (no REST client library here) over an authorized session.

It implements the Protocols of seam.py (one per consumer: deploy, runs, doctor). Everything
above this module deals in plain values (models.py); everything Google-shaped stays here,
and no domain rule does. Clients are built on first use, never at import time. Credentials are explicit:
Application Default Credentials (optionally impersonating a service account), or anonymous
ones when `VERTEX_CRON_EMULATOR_HOST` / `STORAGE_EMULATOR_HOST` point at local emulators.
Google exceptions are translated into errors.py's tree on the way out.

Resource fields are exchanged as flat dotted mappings (see models.py): `_flatten` turns a
message's JSON form into one, `_nest` turns one back into JSON the message parses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import Any

from vertex_cron_trigger.pipeline_job import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SCHEDULE_LABEL
from vertex_cron_trigger.template_uri import TemplateUri
from vertex_cron_trigger.timefmt import format_rfc3339

from . import errors, normal_form
from .config import DeployerSettings
from .models import (
    BUSY_STATES,
    INVOKER_ROLE,
    SOURCE_LABEL,
    SPEC_PREFIX,
    Binding,
    DesiredFunction,
    ObservedFunction,
    ObservedJob,
    PipelineRun,
    PublishedSpec,
    SpecObject,
    StoredSpec,
    encode_body,
)
from .seam import Tick

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Map-valued fields: leaves when flattening (their keys are data, not field names).
_MAP_FIELDS = frozenset({"labels", "http_target.headers", "http_target.body", "service_config.environment_variables"})
_IAM_ATTEMPTS = 5
# What a 409 means when a resource changed under this run (the Google status in its body).
_CONCURRENT = {
    "ALREADY_EXISTS": "it was created by someone else after this run looked",
    "ABORTED": "another change to it started after this run looked and is still running",
}


class GoogleCloud:
    """One project+region's view of the Google APIs vertex-cron uses."""

    def __init__(
        self,
        settings: DeployerSettings,
        *,
        poll_interval: float | None = None,
        operation_timeout: float = 1800.0,
        upload_timeout: float = 300.0,
    ) -> None:
        self._settings = settings
        # Every call is about one project+region: resolved here, so a missing one is the usage
        # error naming it before any client exists, and no call can be built with None in it.
        self._where = settings.project_region()
        self._poll_interval = poll_interval or settings.poll_seconds or 2.0
        self._operation_timeout = operation_timeout
        self._upload_timeout = upload_timeout

    @property
    def poll_interval(self) -> float:
        """Seconds between two looks at something still under way."""
        return self._poll_interval

    # -- clients, built on first use -------------------------------------------------------

    @cached_property
    def _credentials(self) -> Any:
        if self._settings.emulator_host:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except DefaultCredentialsError as exc:
            raise errors.SettingsError(
                "no Google Cloud credentials found",
                details="run `gcloud auth application-default login` (or set up workload identity)",
            ) from exc
        target = self._settings.impersonate_service_account
        if target:
            from google.auth import impersonated_credentials

            credentials = impersonated_credentials.Credentials(
                source_credentials=credentials,
                target_principal=target,
                target_scopes=[CLOUD_PLATFORM_SCOPE],
            )
        return credentials

    def _client_kwargs(self, default_endpoint: str | None = None) -> dict[str, Any]:
        endpoint = self._settings.emulator_host or default_endpoint
        options = {"api_endpoint": endpoint} if endpoint else None
        return {"credentials": self._credentials, "transport": "rest", "client_options": options}

    @cached_property
    def _storage(self) -> Any:
        import google.cloud.storage as storage

        if self._settings.storage_emulator_host:
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(
                project=self._where.project,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self._settings.storage_emulator_host},
            )
        return storage.Client(project=self._where.project, credentials=self._credentials)

    @cached_property
    def _functions(self) -> Any:
        from google.cloud import functions_v2

        return functions_v2.FunctionServiceClient(**self._client_kwargs())

    @cached_property
    def _run(self) -> Any:
        from google.cloud import run_v2

        return run_v2.ServicesClient(**self._client_kwargs())

    @cached_property
    def _scheduler(self) -> Any:
        from google.cloud import scheduler_v1

        return scheduler_v1.CloudSchedulerClient(**self._client_kwargs())

    @cached_property
    def _pipelines(self) -> Any:
        from google.cloud import aiplatform_v1

        regional = f"{self._where.region}-aiplatform.googleapis.com"
        return aiplatform_v1.PipelineServiceClient(**self._client_kwargs(regional))

    @property
    def _location(self) -> str:
        return f"projects/{self._where.project}/locations/{self._where.region}"

    # -- Cloud Storage: content-addressed specs ---------------------------------------------

    def _spec_generation(self, bucket: str, object_name: str) -> int | None:
        with _calling(f"read gs://{bucket}/{object_name}"):
            blob = self._storage.bucket(bucket).get_blob(object_name)
        return blob.generation if blob else None

    def upload_spec(self, bucket: str, spec: SpecObject) -> int:
        """Write if absent; an object already there (412) has the same bytes by its name."""
        from google.api_core.exceptions import PreconditionFailed

        blob = self._storage.bucket(bucket).blob(spec.object_name)
        blob.metadata = dict(spec.metadata) or None
        with _calling(f"upload gs://{bucket}/{spec.object_name}"):
            try:
                blob.upload_from_string(spec.data, content_type=spec.content_type, if_generation_match=0)
                return blob.generation
            except PreconditionFailed:
                pass
        generation = self._spec_generation(bucket, spec.object_name)
        if generation is None:
            raise errors.Unavailable(f"gs://{bucket}/{spec.object_name} vanished during upload")
        return generation

    def spec_objects(self, bucket: str, prefix: str) -> list[StoredSpec]:
        """The objects under `prefix` (one of SPEC_PREFIX's folders), with their metadata and
        generation: one call per page of objects."""
        if not prefix.startswith(SPEC_PREFIX):
            raise ValueError(f"{prefix!r} is not under {SPEC_PREFIX}")
        with _calling(f"list gs://{bucket}/{prefix}"):
            blobs = list(self._storage.list_blobs(bucket, prefix=prefix))
        return [StoredSpec(blob.name, dict(blob.metadata or {}), blob.generation) for blob in blobs]

    def delete_spec(self, bucket: str, object_name: str) -> None:
        with _calling(f"delete gs://{bucket}/{object_name}", missing_ok=True):
            self._storage.bucket(bucket).blob(object_name).delete()

    # -- Cloud Storage: conditional writes of one small object (lease.py) -------------------
    # Each takes the generation it expects (0: the object must not exist); a write that
    # finds another generation (412 Precondition Failed) returns None / False.

    def write_if_generation(self, bucket: str, object_name: str, data: bytes, *, generation: int) -> int | None:
        """Write the object if its live generation is `generation`; the new generation."""
        from google.api_core.exceptions import PreconditionFailed

        blob = self._storage.bucket(bucket).blob(object_name)
        with _calling(f"write gs://{bucket}/{object_name}"):
            try:
                blob.upload_from_string(data, content_type="application/json", if_generation_match=generation)
            except PreconditionFailed:
                return None
        return int(blob.generation)

    def read_object(self, bucket: str, object_name: str) -> tuple[int, bytes] | None:
        """The object's live generation and bytes; None when there is none."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        with _calling(f"read gs://{bucket}/{object_name}"):
            found = self._storage.bucket(bucket).get_blob(object_name)
            if found is None:
                return None
            generation = int(found.generation)
            try:  # by name, not by the object's mediaLink: the same request whatever the server's link says
                data = self._storage.bucket(bucket).blob(object_name).download_as_bytes(if_generation_match=generation)
                return generation, data
            except (NotFound, PreconditionFailed):  # replaced or deleted since: read it again
                return self.read_object(bucket, object_name)

    def delete_if_generation(self, bucket: str, object_name: str, *, generation: int) -> bool:
        """Delete the object if its live generation is `generation` (or it is already gone)."""
        from google.api_core.exceptions import PreconditionFailed

        with _calling(f"delete gs://{bucket}/{object_name}", missing_ok=True):
            try:
                self._storage.bucket(bucket).blob(object_name).delete(if_generation_match=generation)
            except PreconditionFailed:
                return False
        return True

    # -- Cloud Functions v2 -----------------------------------------------------------------

    def get_function(self, name: str) -> ObservedFunction | None:
        with _calling(f"get function {name}", missing_ok=True) as call:
            call.result = self._functions.get_function(name=name)
        return _observed_function(call.result) if call.result is not None else None

    def deploy_function(
        self, desired: DesiredFunction, *, mask: list[str] | None, build: bool, tick: Tick
    ) -> ObservedFunction:
        """Create (mask None) or patch the function; upload the zip first when `build`."""
        from google.cloud import functions_v2
        from google.protobuf import field_mask_pb2

        document = _nest({k: v for k, v in desired.fields.items() if k != "build_config.source"})
        document["name"] = desired.name
        if build:
            document["build_config"]["source"] = {"storage_source": self._upload_source(desired)}
        if mask is None:
            document["environment"] = "GEN_2"
        function = functions_v2.Function.from_json(json.dumps(document))
        parent, _, function_id = desired.name.rpartition("/functions/")
        with _calling(f"deploy function {function_id}"):
            if mask is None:
                operation = self._functions.create_function(parent=parent, function=function, function_id=function_id)
            else:
                operation = self._functions.update_function(
                    function=function, update_mask=field_mask_pb2.FieldMask(paths=mask)
                )
            return _observed_function(self._wait(operation, tick))

    def _upload_source(self, desired: DesiredFunction) -> dict[str, Any]:
        import requests
        from google.cloud import functions_v2

        with _calling("get a function source upload URL"):
            response = self._functions.generate_upload_url(
                request={"parent": desired.name.rpartition("/functions/")[0]}
            )
        try:
            reply = requests.put(
                response.upload_url,
                data=desired.source.zip_bytes,
                headers={"Content-Type": "application/zip"},
                timeout=self._upload_timeout,
            )
            reply.raise_for_status()
        except requests.RequestException as exc:
            raise errors.Unavailable(
                "uploading the function source failed; re-running is safe", details=str(exc)
            ) from exc
        return json.loads(functions_v2.StorageSource.to_json(response.storage_source))

    def delete_function(self, name: str, *, tick: Tick) -> None:
        with _calling(f"delete function {name}", missing_ok=True):
            self._wait(self._functions.delete_function(name=name), tick)

    def wait_for_function(self, name: str, *, tick: Tick) -> ObservedFunction | None:
        """Poll the function until no operation runs on it (its state leaves BUSY_STATES);
        None when it is gone. For operations this run did not start: their names are not
        known here, the function's own state is."""
        started = time.monotonic()
        while True:
            function = self.get_function(name)
            if function is None or function.state not in BUSY_STATES:
                return function
            elapsed = time.monotonic() - started
            if elapsed > self._operation_timeout:
                raise errors.Unavailable(
                    f"function {name} is still {function.state} after {elapsed:.0f}s",
                    details="the operation continues in Google Cloud; re-running once it has finished is safe",
                )
            tick(elapsed, "")  # the step already names the state
            time.sleep(self._poll_interval)

    def _wait(self, operation: Any, tick: Tick) -> Any:
        started = time.monotonic()
        while not operation.done():
            elapsed = time.monotonic() - started
            if elapsed > self._operation_timeout:
                raise errors.Unavailable(
                    f"operation {operation.operation.name} still running after {elapsed:.0f}s",
                    details="it continues in the background; re-run the command to pick up its result",
                )
            tick(elapsed, _running_stage(operation))
            time.sleep(self._poll_interval)
        try:
            return operation.result()
        except Exception as exc:  # the operation's own error, already a GoogleAPICallError
            raise errors.OperationFailed(f"operation {operation.operation.name} failed: {exc}") from exc

    # -- Cloud Run v2 IAM: who may invoke the function --------------------------------------

    def invoker_iam_disabled(self, service: str) -> bool:
        """Whether Cloud Run lets anyone call `service` without checking run.invoker
        (run.v2 Service.invokerIamDisabled, e.g. after `--no-invoker-iam-check`)."""
        with _calling(f"read Cloud Run service {service}"):
            return bool(self._run.get_service(name=service).invoker_iam_disabled)

    def invoker_members(self, service: str) -> frozenset[str]:
        with _calling(f"read the IAM policy of {service}"):
            policy = self._run.get_iam_policy(request={"resource": service})
        return frozenset(_role_members(policy, INVOKER_ROLE))

    def set_invokers(self, service: str, members: Iterable[str]) -> None:
        """Make `members` exactly the members of roles/run.invoker, leaving other roles alone.
        Read-modify-write with the etag; an etag conflict is read again and retried."""
        from google.api_core.exceptions import Conflict

        wanted = frozenset(members)
        for attempt in range(1, _IAM_ATTEMPTS + 1):
            with _calling(f"grant {INVOKER_ROLE} on {service}"):
                policy = self._run.get_iam_policy(request={"resource": service})
                if not _set_invokers(policy, wanted):
                    return
                try:
                    written = self._run.set_iam_policy(request={"resource": service, "policy": policy})
                except Conflict:  # 409 ABORTED: the policy changed since it was read
                    if attempt == _IAM_ATTEMPTS:
                        raise
                else:
                    _verify_invokers(service, written, wanted)
                    return
            time.sleep(min(self._poll_interval, 0.5) * attempt)

    # -- Cloud Scheduler --------------------------------------------------------------------

    def get_job(self, name: str) -> ObservedJob | None:
        with _calling(f"get Scheduler job {name}", missing_ok=True) as call:
            call.result = self._scheduler.get_job(name=name)
        return _observed_job(call.result) if call.result is not None else None

    def list_jobs(self) -> dict[str, ObservedJob]:
        """Every job of the location, by full name: one call per page of jobs."""
        with _calling(f"list Scheduler jobs in {self._location}"):
            return {job.name: _observed_job(job) for job in self._scheduler.list_jobs(parent=self._location)}

    def create_job(self, name: str, fields: Mapping[str, Any]) -> None:
        with _calling(f"create Scheduler job {name}"):
            self._scheduler.create_job(parent=self._location, job=_job_message(name, fields))

    def update_job(self, name: str, fields: Mapping[str, Any], mask: list[str]) -> None:
        from google.protobuf import field_mask_pb2

        with _calling(f"update Scheduler job {name}"):
            self._scheduler.update_job(job=_job_message(name, fields), update_mask=field_mask_pb2.FieldMask(paths=mask))

    def pause_job(self, name: str) -> ObservedJob:
        with _calling(f"pause Scheduler job {name}"):
            return _observed_job(self._scheduler.pause_job(name=name))

    def resume_job(self, name: str) -> ObservedJob:
        with _calling(f"resume Scheduler job {name}"):
            return _observed_job(self._scheduler.resume_job(name=name))

    def run_job(self, name: str) -> ObservedJob:
        with _calling(f"run Scheduler job {name}"):
            return _observed_job(self._scheduler.run_job(name=name))

    def delete_job(self, name: str) -> None:
        with _calling(f"delete Scheduler job {name}", missing_ok=True):
            self._scheduler.delete_job(name=name)

    # -- Vertex AI --------------------------------------------------------------------------

    def pipeline_runs(self, schedule: str, *, limit: int) -> list[PipelineRun]:
        request = {
            "parent": self._location,
            "filter": f'labels.vertex-cron-schedule="{schedule}"',
            "order_by": "create_time desc",
            "page_size": limit,
        }
        with _calling(f"list pipeline runs of {schedule}"):
            runs = []
            for job in self._pipelines.list_pipeline_jobs(request=request):
                runs.append(self._pipeline_run(job))
                if len(runs) == limit:
                    break
        return runs

    def recent_pipeline_runs(self, *, since: datetime, schedules: Sequence[str] = ()) -> list[PipelineRun]:
        """The location's PipelineJobs labelled managed-by=vertex-cron (of `schedules` only, when
        given) created at or after `since`, newest first: one call per page of runs."""
        wanted = " OR ".join(f'labels.{SCHEDULE_LABEL}="{schedule}"' for schedule in schedules)
        request = {
            "parent": self._location,
            "filter": f'labels.{MANAGED_BY_LABEL}="{MANAGED_BY_VALUE}" AND create_time>="{format_rfc3339(since)}"'
            + (f" AND ({wanted})" if wanted else ""),
            "order_by": "create_time desc",
            # AIP-158: a server coerces a larger page size to its maximum.
            "page_size": 1000,
        }
        with _calling(f"list the pipeline runs since {format_rfc3339(since)}"):
            return [self._pipeline_run(job) for job in self._pipelines.list_pipeline_jobs(request=request)]

    def _pipeline_run(self, job: Any) -> PipelineRun:
        run_id = job.name.rsplit("/", 1)[-1]
        return PipelineRun(
            name=run_id,
            schedule=job.labels.get(SCHEDULE_LABEL),
            state=job.state.name.removeprefix("PIPELINE_STATE_"),
            create_time=_time(job, "create_time"),
            start_time=_time(job, "start_time"),
            end_time=_time(job, "end_time"),
            error=(job.error.message or None) if "error" in job else None,
            console_url=(
                f"https://console.cloud.google.com/vertex-ai/locations/{self._where.region}"
                f"/pipelines/runs/{run_id}?project={self._where.project}"
            ),
        )

    # -- Artifact Registry: pipelines published to a KFP repository -------------------------
    # The REST API for metadata, the repository's KFP host for the bytes: the calls
    # kfp.registry.RegistryClient makes. Under VERTEX_CRON_EMULATOR_HOST the KFP host maps to
    # {emulator}/LOCATION-kfp.pkg.dev/PROJECT/REPO/... (its host becomes the first path segment).

    def published_pipeline(self, uri: TemplateUri, *, max_bytes: int) -> PublishedSpec:
        """The version `uri` names now (a tag is resolved here, once) and its bytes."""
        try:
            return self._published_pipeline(uri, max_bytes=max_bytes)
        except errors.PermissionDenied as exc:
            raise errors.PermissionDenied(
                exc.reason,
                details=f"deploying from {uri.host} needs artifactregistry.repositories.get, tags.get and "
                "repositories.downloadArtifacts on that repository (infra: pipeline_repositories)",
            ) from exc

    def _published_pipeline(self, uri: TemplateUri, *, max_bytes: int) -> PublishedSpec:
        what = f"read {uri}"
        with _calling(what):
            repository = self._authorized("GET", f"{self._artifact_registry}/v1/{uri.repository_name}").json()
        if repository.get("format") != "KFP":
            raise errors.ValidationError(
                f"{uri}: repository {uri.repository} is a {repository.get('format')} repository, not a KFP one"
            )
        if uri.is_pinned:
            version = uri.reference
        else:
            tag_name = f"{uri.package_name}/tags/{uri.reference}"
            with _calling(f"{what}: tag {uri.reference}"):
                tag = self._authorized("GET", f"{self._artifact_registry}/v1/{tag_name}").json()
            version = str(tag.get("version", "")).rpartition("/versions/")[2]
        pinned = uri.pinned(version)
        host = self._settings.emulator_host
        url = f"{host}/{str(pinned).removeprefix('https://')}" if host else str(pinned)
        with _calling(what), self._authorized("GET", url, stream=True) as response:
            data = response.raw.read(max_bytes + 1, decode_content=True)  # no more than the limit is read
        if len(data) > max_bytes:
            raise errors.ValidationError(f"{uri}: the pipeline is over the {max_bytes}-byte limit")
        # A version is named by the SHA-256 of its bytes: what arrived is what was pinned.
        if f"sha256:{hashlib.sha256(data).hexdigest()}" != version:
            raise errors.Unavailable(f"{uri}: the download does not match version {version}; re-running is safe")
        return PublishedSpec(uri=str(uri), pinned_uri=str(pinned), data=data)

    @property
    def _artifact_registry(self) -> str:
        return self._settings.emulator_host or "https://artifactregistry.googleapis.com"

    # -- doctor: who may do what (IAM, Resource Manager, Service Usage, bucket IAM) ---------
    # IAM v1 has no REST transport in google-cloud-iam, so it is called over an authorized
    # session with the same credentials; errors go through the same translation.

    @cached_property
    def _projects(self) -> Any:
        from google.cloud import resourcemanager_v3

        return resourcemanager_v3.ProjectsClient(**self._client_kwargs())

    @cached_property
    def _service_usage(self) -> Any:
        from google.cloud import service_usage_v1

        return service_usage_v1.ServiceUsageClient(**self._client_kwargs())

    @cached_property
    def _session(self) -> Any:
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self._credentials)

    def _authorized(self, method: str, url: str, **kwargs: Any) -> Any:
        """A call over the authorized session; an HTTP error raised as google.api_core's."""
        from google.api_core.exceptions import from_http_response

        response = self._session.request(method, url, timeout=60, **kwargs)
        if response.status_code >= 400:
            raise from_http_response(response)
        return response

    def _iam(self, method: str, path: str, **kwargs: Any) -> Any:
        base = self._settings.emulator_host or "https://iam.googleapis.com"
        return self._authorized(method, f"{base}/v1/{path}", **kwargs).json()

    def enabled_services(self) -> frozenset[str]:
        request = {"parent": f"projects/{self._where.project}", "filter": "state:ENABLED", "page_size": 200}
        with _calling(f"list the enabled APIs of {self._where.project}"):
            return frozenset(s.config.name for s in self._service_usage.list_services(request=request))

    def service_account_exists(self, email: str) -> bool:
        with _calling(f"get service account {email}", missing_ok=True) as call:
            call.result = self._iam("GET", f"projects/-/serviceAccounts/{email}")
        return call.result is not None

    def role_permissions(self, role: str) -> frozenset[str]:
        with _calling(f"get role {role}"):
            return frozenset(self._iam("GET", role).get("includedPermissions", []))

    def caller_project_permissions(self, permissions: Iterable[str]) -> frozenset[str]:
        request = {"resource": f"projects/{self._where.project}", "permissions": sorted(permissions)}
        with _calling(f"test your permissions on project {self._where.project}"):
            return frozenset(self._projects.test_iam_permissions(request=request).permissions)

    def caller_service_account_permissions(self, email: str, permissions: Iterable[str]) -> frozenset[str]:
        body = {"permissions": sorted(permissions)}
        with _calling(f"test your permissions on service account {email}"):
            reply = self._iam("POST", f"projects/-/serviceAccounts/{email}:testIamPermissions", json=body)
        return frozenset(reply.get("permissions", []))

    def caller_bucket_permissions(self, bucket: str, permissions: Iterable[str]) -> frozenset[str]:
        with _calling(f"test your permissions on gs://{bucket}"):
            return frozenset(self._storage.bucket(bucket).test_iam_permissions(sorted(permissions)))

    def project_bindings(self) -> list[Binding]:
        request = {"resource": f"projects/{self._where.project}", "options": {"requested_policy_version": 3}}
        with _calling(f"read the IAM policy of project {self._where.project}"):
            policy = self._projects.get_iam_policy(request=request)
        return [
            Binding(
                b.role,
                frozenset(b.members),
                b.condition.title or b.condition.expression or None,
                b.condition.expression or None,
            )
            for b in policy.bindings
        ]

    def service_account_bindings(self, email: str) -> list[Binding]:
        path = f"projects/-/serviceAccounts/{email}:getIamPolicy"
        with _calling(f"read the IAM policy of service account {email}"):
            policy = self._iam("POST", path, params={"options.requestedPolicyVersion": 3})
        return [_binding(b) for b in policy.get("bindings", [])]

    def bucket_bindings(self, bucket: str) -> list[Binding]:
        with _calling(f"read the IAM policy of gs://{bucket}"):
            policy = self._storage.bucket(bucket).get_iam_policy(requested_policy_version=3)
        return [_binding(b) for b in policy.bindings]

    # -- Delivering a firing as Cloud Scheduler does (backfill) ---------------------------------

    def id_token(self, email: str, audience: str) -> str:
        """An ID token of service account `email` for `audience`, minted by IAM Credentials
        (the caller needs iam.serviceAccounts.getOpenIdToken on that account)."""
        base = self._settings.emulator_host or "https://iamcredentials.googleapis.com"
        url = f"{base}/v1/projects/-/serviceAccounts/{email}:generateIdToken"
        with _calling(f"mint an ID token of {email}"):
            response = self._authorized("POST", url, json={"audience": audience, "includeEmail": True})
            return str(response.json()["token"])

    def deliver_firing(
        self, url: str, body: bytes, schedule_time: str, token: str, *, timeout: float
    ) -> tuple[int, dict[str, Any]]:
        """POST a firing to the trigger function the way Cloud Scheduler does: the job's body,
        its schedule time header and a Bearer ID token. Returns the status and JSON answer;
        a transport failure raises Unavailable."""
        import requests

        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/octet-stream",
            "User-Agent": "vertex-cron-backfill",
            "X-CloudScheduler-ScheduleTime": schedule_time,
        }
        with _calling(f"deliver the firing of {schedule_time} to {url}"):
            response = requests.post(url, data=body, headers=headers, timeout=timeout)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return response.status_code, answer if isinstance(answer, dict) else {}


def _binding(document: Mapping[str, Any]) -> Binding:
    condition = document.get("condition") or {}
    return Binding(
        document["role"],
        frozenset(document.get("members", ())),
        condition.get("title") or condition.get("expression") or None,
        condition.get("expression") or None,
    )


class _Call:
    result: Any = None


@contextmanager
def _calling(what: str, *, missing_ok: bool = False) -> Iterator[_Call]:
    """Translate Google and transport exceptions raised while doing `what`."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError

    call = _Call()
    try:
        yield call
    except gexc.NotFound as exc:
        if not missing_ok:
            raise errors.NotFound(f"{what}: not found", details=exc.message) from exc
    except (gexc.Unauthorized, gexc.Forbidden) as exc:
        raise errors.PermissionDenied(f"{what}: permission denied", details=exc.message) from exc
    except (
        gexc.TooManyRequests,
        gexc.ServerError,
        gexc.DeadlineExceeded,
        gexc.RetryError,
        requests.ConnectionError,
        requests.Timeout,
    ) as exc:
        raise errors.Unavailable(f"{what}: Google Cloud is unavailable; re-running is safe", details=str(exc)) from exc
    except gexc.Conflict as exc:
        status = _google_status(exc)
        if status not in _CONCURRENT:
            raise errors.DeployError(f"{what}: {exc.message or exc}", details=str(exc)) from exc
        raise errors.ConcurrentChange(
            f"{what}: {_CONCURRENT[status]} (by another tool, or a run that does not hold the lease); "
            "re-running is safe",
            details="the re-run waits for any operation still running on it, then compares and converges "
            f"(Google said: {exc.message})",
        ) from exc
    except gexc.GoogleAPICallError as exc:
        raise errors.DeployError(f"{what}: {exc.message or exc}", details=str(exc)) from exc
    except GoogleAuthError as exc:
        raise errors.PermissionDenied(f"{what}: authentication failed", details=str(exc)) from exc


def _running_stage(operation: Any) -> str:
    """The stage a Functions operation reports in progress (OperationMetadata.stages), in words."""
    for stage in getattr(operation.metadata, "stages", ()):
        if stage.state.name == "IN_PROGRESS":
            return f"{stage.name.name.lower()} stage" + (f": {stage.message}" if stage.message else "")
    return ""


def _google_status(exc: Any) -> str | None:
    """The google.rpc.Code name a REST error carries in its body (409 is ALREADY_EXISTS or
    ABORTED: the HTTP status alone does not say which)."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.AlreadyExists):
        return "ALREADY_EXISTS"
    if isinstance(exc, gexc.Aborted):
        return "ABORTED"
    try:
        status = exc.response.json()["error"]["status"]
    except (AttributeError, TypeError, KeyError, ValueError):
        return None
    return status if isinstance(status, str) else None


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and path not in _MAP_FIELDS:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _nest(fields: Mapping[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for path, value in fields.items():
        *parents, leaf = path.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return document


def _message_fields(message: Any) -> dict[str, Any]:
    text = type(message).to_json(message, preserving_proto_field_name=True, use_integers_for_enums=False, indent=None)
    return _flatten(json.loads(text))


def _observed_function(function: Any) -> ObservedFunction:
    fields = _message_fields(function)
    fields["build_config.source"] = (fields.get("labels") or {}).get(SOURCE_LABEL)
    return ObservedFunction(
        name=function.name,
        fields=fields,
        uri=function.service_config.uri,
        service=function.service_config.service,
    )


def _observed_job(job: Any) -> ObservedJob:
    fields = _message_fields(job)
    fields["http_target.body"] = _decode_body(fields.get("http_target.body"))
    last_attempt = _time(job, "last_attempt_time")
    status = None
    if last_attempt is not None:
        from google.rpc import code_pb2

        try:
            status = code_pb2.Code.Name(job.status.code)
        except ValueError:
            status = str(job.status.code)
    return ObservedJob(
        name=job.name,
        fields=fields,
        state=job.state.name,
        next_run=_time(job, "schedule_time"),
        last_attempt=last_attempt,
        last_status=status,
    )


def _job_message(name: str, fields: Mapping[str, Any]) -> Any:
    from google.cloud import scheduler_v1

    document = _nest(fields)
    document["name"] = name
    body = document["http_target"]["body"]
    document["http_target"]["body"] = base64.b64encode(encode_body(body)).decode()
    return scheduler_v1.Job.from_json(json.dumps(document))


def _decode_body(encoded: Any) -> Any:
    """The job body as JSON; anything else (not ours) is kept as text so it compares unequal."""
    if not isinstance(encoded, str):
        return encoded
    raw = base64.b64decode(encoded)
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _time(message: Any, field: str) -> Any:
    return getattr(message, field) if field in message else None


def _role_members(policy: Any, role: str) -> list[str]:
    return [m for binding in policy.bindings if binding.role == role for m in binding.members]


def _verify_invokers(service: str, policy: Any, wanted: frozenset[str]) -> None:
    """The policy setIamPolicy answered with must hold exactly `wanted` as invokers (as IAM
    stores members: normal_form.member)."""
    held = frozenset(_role_members(policy, INVOKER_ROLE))
    if {normal_form.member(m) for m in held} != {normal_form.member(m) for m in wanted}:
        raise errors.DeployError(
            f"the IAM policy of {service} did not take: {INVOKER_ROLE} is held by {', '.join(sorted(held)) or 'nobody'}",
            details="another change to the service's policy raced this one; re-run the deploy",
        )


def _set_invokers(policy: Any, wanted: frozenset[str]) -> bool:
    """Edit `policy` in place so that the invoker role's members are exactly `wanted`;
    False (no edit) when they already are. Other roles' bindings are not touched."""
    bindings = [b for b in policy.bindings if b.role == INVOKER_ROLE]
    unconditional = {m for b in bindings if not _has_condition(b) for m in b.members}
    current = {m for b in bindings for m in b.members}
    if current == wanted and wanted <= unconditional:
        return False
    for binding in bindings:
        kept = [m for m in binding.members if m in wanted]
        del binding.members[:]
        binding.members.extend(kept)
    missing = sorted(wanted - unconditional)
    target = next((b for b in bindings if not _has_condition(b)), None)
    if target is not None:
        target.members.extend(missing)
    elif missing:
        policy.bindings.add(role=INVOKER_ROLE, members=missing)
    emptied = [b for b in policy.bindings if b.role == INVOKER_ROLE and not b.members]
    for binding in emptied:
        policy.bindings.remove(binding)
    return True


def _has_condition(binding: Any) -> bool:
    return bool(binding.condition.expression)
