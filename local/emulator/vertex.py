"""Vertex AI v1 pipelineJobs: create, get, list (filter/orderBy/paging), cancel, delete.

Jobs move PENDING -> RUNNING -> SUCCEEDED driven by elapsed time, computed lazily when
read (no background thread): `pending_seconds` after creation the job starts,
`running_seconds` later it ends (the Emulator's `pipeline_pending_seconds` and
`pipeline_running_seconds`). `fail_pipeline_jobs(regex, message)` makes jobs
whose id matches end FAILED instead; `set_pipeline_job_state()` forces a state. A terminal
state, once observed, is frozen into the stored job.

A created job is stored as the real API returns it (docs/fidelity.md, "Vertex AI
PipelineJobs"): output-only fields sent are ignored, the reserved
`vertex-ai-pipelines-run-billing-id` label is the server's (a caller's value is replaced),
and a job without `serviceAccount` runs as the Compute Engine default service account.
"""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING, Any

from .common import (
    LOCATION_PARENT,
    ApiError,
    deep,
    invalid,
    not_found,
    page,
    parse_body,
    project_number,
    read_masked,
    rfc3339,
    validate_labels,
)
from .faults import RateLimit, quota_exceeded
from .filters import compile_filter, sort_jobs
from .routing import Request, Route
from .store import Store

if TYPE_CHECKING:
    from .artifactregistry import ArtifactRegistry

JOB_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
TERMINAL_STATES = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
BILLING_LABEL = "vertex-ai-pipelines-run-billing-id"
# The Vertex AI quota a create counts against, as a refusal names it (docs/fidelity.md, "Rate quotas").
CREATE_QUOTA_METRIC = "aiplatform.googleapis.com/job_or_lro_submission_requests"
CREATE_QUOTA_LIMIT_ID = "JobOrLroSubmissionRequestsPerMinutePerProjectPerRegion"
CREATE_QUOTA_LIMIT_TITLE = "Job or LRO submission requests per minute per region"

_PARAM_TYPES = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int, float),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
    "TASK_FINAL_STATUS": (dict,),
}


class VertexAI:
    """Vertex AI v1 pipelineJobs over the emulator's store; template URIs are resolved by
    `artifact_registry` (Vertex AI fills templateMetadata from the registry)."""

    def __init__(
        self,
        store: Store,
        artifact_registry: ArtifactRegistry,
        *,
        pending_seconds: float,
        running_seconds: float,
        cancel_seconds: float,
    ) -> None:
        self.store = store
        self.artifact_registry = artifact_registry
        self.pending_seconds = pending_seconds
        self.running_seconds = running_seconds
        self.cancel_seconds = cancel_seconds
        # A RateLimit on the emulator's clock makes pipelineJobs.create answer 429 above it.
        self.create_quota: RateLimit | None = None
        self._jobs = store.collection("pipelineJobs")
        self._fail_rules = store.sequence("pipelineFailRules")

    def routes(self) -> list[Route]:
        job = rf"/v1/(?P<name>{LOCATION_PARENT}/pipelineJobs/[^/:]+)"
        return [
            Route("POST", rf"/v1/(?P<parent>{LOCATION_PARENT})/pipelineJobs", self._pj_create, ("pipelineJobId",)),
            Route(
                "GET",
                rf"/v1/(?P<parent>{LOCATION_PARENT})/pipelineJobs",
                self._pj_list,
                ("filter", "pageSize", "pageToken", "orderBy", "readMask"),
            ),
            Route("GET", job, self._pj_get),
            Route("DELETE", job, self._pj_delete),
            Route("POST", rf"{job}:cancel", self._pj_cancel, body_type="CancelPipelineJobRequest"),
        ]

    # -- test controls -------------------------------------------------------------------

    def fail_pipeline_jobs(self, matching: str, message: str = "The pipeline failed.", code: int = 9) -> None:
        """Jobs whose id matches `matching` (re.search) end FAILED with error {code, message}."""
        with self.store.lock:
            self._fail_rules.append({"pattern": matching, "message": message, "code": code})
            self.store.touch()
        self.store.save()

    def set_pipeline_job_state(
        self, name_or_id: str, state: str, *, error_message: str | None = None
    ) -> dict[str, Any]:
        """Force a job into `state` (e.g. "PIPELINE_STATE_RUNNING") and freeze it there."""
        if not state.startswith("PIPELINE_STATE_"):
            state = "PIPELINE_STATE_" + state.upper()
        with self.store.lock:
            rec = self._pj_find(name_or_id)
            job, meta = rec["job"], rec["meta"]
            now = self.store.now()
            meta["frozen"] = True
            job["state"] = state
            job["updateTime"] = rfc3339(now)
            if state in {"PIPELINE_STATE_RUNNING", *TERMINAL_STATES} and "startTime" not in job:
                job["startTime"] = rfc3339(now)
            if state in TERMINAL_STATES:
                job["endTime"] = rfc3339(now)
            if state == "PIPELINE_STATE_FAILED":
                job["error"] = {"code": 9, "message": error_message or "The pipeline failed."}
            self.store.touch()
            result = deep(job)
        self.store.save()
        return result

    def pipeline_jobs(self) -> list[dict[str, Any]]:
        """Snapshot of every pipeline job (states brought up to date), oldest first."""
        with self.store.lock:
            return [deep(self._pj_view(rec)) for rec in self._jobs.values()]

    # -- internals -----------------------------------------------------------------------

    def _pj_find(self, name_or_id: str) -> dict[str, Any]:
        jobs = self._jobs
        if name_or_id in jobs:
            return jobs[name_or_id]
        for name, rec in jobs.items():
            if name.rsplit("/", 1)[-1] == name_or_id:
                return rec
        raise KeyError(name_or_id)

    def _pj_fail_rule(self, job_id: str) -> dict[str, Any] | None:
        for rule in self._fail_rules:
            if re.search(rule["pattern"], job_id):
                return rule
        return None

    def _pj_view(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Bring the job's state up to date with the clock (lazily) and return it."""
        job, meta = rec["job"], rec["meta"]
        if meta.get("frozen"):
            return job
        now = self.store.now()
        created = meta["created"]
        if meta.get("cancelled") is not None:
            t_cancel = meta["cancelled"]
            if now - t_cancel >= self.cancel_seconds:
                t_end = t_cancel + self.cancel_seconds
                job["state"] = "PIPELINE_STATE_CANCELLED"
                job["endTime"] = job["updateTime"] = rfc3339(t_end)
                job["error"] = {"code": 1, "message": "CANCELED"}
                meta["frozen"] = True
                self.store.touch()
            elif job["state"] != "PIPELINE_STATE_CANCELLING":
                job["state"] = "PIPELINE_STATE_CANCELLING"
                job["updateTime"] = rfc3339(t_cancel)
                self.store.touch()
            return job
        t_start = created + self.pending_seconds
        t_end = t_start + self.running_seconds
        if now < t_start:
            state = "PIPELINE_STATE_PENDING"
        elif math.isinf(t_end) or now < t_end:
            state = "PIPELINE_STATE_RUNNING"
        else:
            state = "PIPELINE_STATE_SUCCEEDED"
        if state == job.get("state"):
            return job
        if state in {"PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"}:
            job["startTime"] = rfc3339(t_start)
            job["updateTime"] = rfc3339(t_start)
        if state == "PIPELINE_STATE_SUCCEEDED":
            rule = self._pj_fail_rule(job["name"].rsplit("/", 1)[-1])
            if rule is not None:
                state = "PIPELINE_STATE_FAILED"
                job["error"] = {"code": rule.get("code", 9), "message": rule["message"]}
            job["endTime"] = job["updateTime"] = rfc3339(t_end)
            meta["frozen"] = True
        job["state"] = state
        self.store.touch()
        return job

    @staticmethod
    def _pj_validate(job: dict[str, Any]) -> None:
        spec = job.get("pipelineSpec")
        if not spec:
            raise invalid("PipelineJob.pipeline_spec is required (or template_uri).")
        if not isinstance((spec.get("pipelineInfo") or {}).get("name"), str) or not spec["pipelineInfo"]["name"]:
            raise invalid("Invalid pipeline spec: pipelineInfo.name is required.")
        root = spec.get("root")
        if not isinstance(root, dict):
            raise invalid("Invalid pipeline spec: root is required.")
        runtime = job.get("runtimeConfig") or {}
        out_dir = runtime.get("gcsOutputDirectory", "")
        if not out_dir:
            raise invalid("PipelineJob.runtime_config.gcs_output_directory is required.")
        if not out_dir.startswith("gs://") or len(out_dir) <= len("gs://"):
            raise invalid(f'Invalid gcs_output_directory "{out_dir}": must be a gs:// URI.')
        validate_labels(job.get("labels"))
        sa = job.get("serviceAccount")
        if sa is not None and "@" not in sa:
            raise invalid(f'Invalid service account "{sa}".')
        # Parameter values against the root input definitions (schema 2.1+ specs).
        definitions = ((root.get("inputDefinitions") or {}).get("parameters")) or {}
        values = runtime.get("parameterValues") or {}
        for key, value in values.items():
            if key not in definitions:
                raise invalid(f"The pipeline parameter {key} is not found in the pipeline job input definitions.")
            ptype = (definitions[key] or {}).get("parameterType")
            allowed = _PARAM_TYPES.get(ptype or "")
            ok = allowed is None or (
                isinstance(value, allowed) and not (bool not in allowed and isinstance(value, bool))
            )
            if ok and ptype == "NUMBER_INTEGER" and isinstance(value, float) and not value.is_integer():
                ok = False
            if not ok:
                raise invalid(f'The value of pipeline parameter "{key}" is not of type {ptype}.')
        for key, definition in definitions.items():
            definition = definition or {}
            if key not in values and "defaultValue" not in definition and not definition.get("isOptional"):
                raise invalid(f"The pipeline parameter {key} is required but no value was provided.")

    def _pj_charge_create_quota(self, parent: str) -> None:
        """Quota is checked before the request is looked at: an admitted create counts whether
        it then succeeds, already exists or is invalid; a refused one counts nothing."""
        quota = self.create_quota
        if quota is not None and not quota.admit():
            raise quota_exceeded(
                service="aiplatform.googleapis.com",
                project_number=project_number(parent.split("/")[1]),
                metric=CREATE_QUOTA_METRIC,
                limit_id=CREATE_QUOTA_LIMIT_ID,
                limit_title=CREATE_QUOTA_LIMIT_TITLE,
                limit=quota.limit,
            )

    # -- handlers ------------------------------------------------------------------------

    def _pj_create(self, req: Request, parent: str) -> Any:
        self._pj_charge_create_quota(parent)
        job = parse_body(req.body, "PipelineJob")
        job_id = (req.query.get("pipelineJobId") or [""])[0]
        self._pj_validate(job)
        now = self.store.now()
        if job_id:
            if not JOB_ID_RE.fullmatch(job_id):
                raise invalid(f'Invalid pipeline_job_id "{job_id}": must match [a-z0-9][a-z0-9-]{{0,127}}.')
        else:
            base = (
                re.sub(r"[^a-z0-9-]", "-", job["pipelineSpec"]["pipelineInfo"]["name"].lower()).strip("-") or "pipeline"
            )
            job_id = f"{base[:100]}-{time.strftime('%Y%m%d%H%M%S', time.gmtime(now))}"
        name = f"{parent}/pipelineJobs/{job_id}"
        # Output-only fields are ignored on input, like the real API.
        for key in (
            "name",
            "createTime",
            "startTime",
            "endTime",
            "updateTime",
            "state",
            "jobDetail",
            "error",
            "scheduleName",
            "templateMetadata",
        ):
            job.pop(key, None)
        if job.get("templateUri"):
            # Output only, "always presented in output if template_uri is from supported
            # template registry" (aiplatform v1 Discovery, PipelineTemplateMetadata.version).
            version = self.artifact_registry.kfp_template_version(job["templateUri"])
            if version is not None:
                job["templateMetadata"] = {"version": version}
        with self.store.lock:
            if name in self._jobs:
                raise ApiError("ALREADY_EXISTS", f'PipelineJob "{name}" already exists.')
            job["name"] = name
            job.setdefault("displayName", job_id)
            job["createTime"] = job["updateTime"] = rfc3339(now)
            job["state"] = "PIPELINE_STATE_PENDING"
            # Reserved for Vertex AI Pipelines: "user set value will get overrided" (labels, REST reference).
            job.setdefault("labels", {})[BILLING_LABEL] = str(int(now * 1_000_000) % 10**19)
            # "If not specified, the Compute Engine default service account" (serviceAccount).
            job.setdefault(
                "serviceAccount", f"{project_number(parent.split('/')[1])}-compute@developer.gserviceaccount.com"
            )
            rec = {"job": job, "meta": {"created": now}}
            self._jobs[name] = rec
            self.store.touch()
            return deep(self._pj_view(rec))

    def _pj_get(self, req: Request, name: str) -> Any:
        with self.store.lock:
            rec = self._jobs.get(name)
            if rec is None:
                raise not_found(f'The PipelineJob "{name}" does not exist.')
            return deep(self._pj_view(rec))

    def _pj_list(self, req: Request, parent: str) -> Any:
        flt = (req.query.get("filter") or [""])[0]
        order_by = (req.query.get("orderBy") or [""])[0]
        predicate = compile_filter(flt)
        with self.store.lock:
            jobs = [self._pj_view(rec) for name, rec in self._jobs.items() if name.startswith(parent + "/")]
            selected = [deep(j) for j in jobs if predicate(j)]
        # The filter and the order see the whole job; the readMask only trims what is returned.
        ordered = [read_masked(job, req.query) for job in sort_jobs(selected, order_by or None)]
        return page("pipelineJobs", ordered, req.query, key=parent, salt=f"{flt}|{order_by}")

    def _pj_cancel(self, req: Request, name: str) -> Any:
        with self.store.lock:
            rec = self._jobs.get(name)
            if rec is None:
                raise not_found(f'The PipelineJob "{name}" does not exist.')
            job = self._pj_view(rec)
            if job["state"] in TERMINAL_STATES or job["state"] == "PIPELINE_STATE_CANCELLING":
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f'Cannot cancel PipelineJob "{name}" in state {job["state"]}.',
                )
            rec["meta"]["cancelled"] = self.store.now()
            rec["meta"].pop("frozen", None)
            self._pj_view(rec)
            self.store.touch()
        return {}

    def _pj_delete(self, req: Request, name: str) -> Any:
        with self.store.lock:
            rec = self._jobs.get(name)
            if rec is None:
                raise not_found(f'The PipelineJob "{name}" does not exist.')
            job = self._pj_view(rec)
            if job["state"] not in TERMINAL_STATES:
                raise ApiError(
                    "FAILED_PRECONDITION", f'PipelineJob "{name}" is not in a terminal state; cancel it first.'
                )
            del self._jobs[name]
            self.store.touch()
        return {
            "name": f"{name}/operations/{int(self.store.now() * 1000)}",
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.aiplatform.v1.DeleteOperationMetadata",
                "genericMetadata": {"createTime": rfc3339(self.store.now()), "updateTime": rfc3339(self.store.now())},
            },
            "done": True,
            "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
        }
