"""The PipelineJob REST body (Vertex AI v1), its deterministic id and its labels."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .spec import PipelineSpec
from .timefmt import format_rfc3339

MANAGED_BY_LABEL = "managed-by"
MANAGED_BY_VALUE = "vertex-cron"
SCHEDULE_LABEL = "vertex-cron-schedule"
SPEC_LABEL = "vertex-cron-spec"
LUIGI_TASK_LABEL = "vertex-cron-luigi-task"
# The first 16 hex digits of the Artifact Registry version a run's template was pinned to
# (a label value holds at most 63 characters; templateMetadata.version has all 64).
TEMPLATE_VERSION_LABEL = "vertex-cron-template-version"
_NOT_ID_CHARS = re.compile(r"[^a-z0-9]+")
_ID_TIME = re.compile(r"([0-9]{8}-[0-9]{6})(?:-([0-9]{3}))?")  # job_id's time part
_READABLE_CHARS = 48
_KEY_HASH_CHARS = 16


def job_id(schedule: str, logical_time: datetime) -> str:
    """`{schedule}-{YYYYMMDD}-{HHMMSS}[-{mmm}]` in UTC: one id per firing, so every retry
    and concurrent delivery of that firing collides on ALREADY_EXISTS instead of re-running."""
    moment = logical_time.astimezone(UTC)
    millis = moment.microsecond // 1000
    return f"{schedule}-{moment:%Y%m%d-%H%M%S}" + (f"-{millis:03d}" if millis else "")


def logical_time_of(schedule: str, the_id: str) -> datetime | None:
    """The logical time `job_id(schedule, time)` was made from, or None for another id."""
    match = _ID_TIME.fullmatch(the_id[len(schedule) + 1 :]) if the_id.startswith(schedule + "-") else None
    if not match:
        return None
    try:
        moment = datetime.strptime(match[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.replace(microsecond=int(match[2] or 0) * 1000)


def spec_label(spec: PipelineSpec) -> str:
    return spec.content_sha256[:16]


def keyed_job_id(key: str) -> str:
    """A valid Vertex job id (`[a-z0-9][a-z0-9-]{0,127}`) for an arbitrary key, e.g. a Luigi
    task id: a readable prefix of the key plus a hash of all of it, so two keys that read the
    same once sanitised still get different ids, and the same key always gets the same one."""
    readable = _NOT_ID_CHARS.sub("-", key.lower()).strip("-")[:_READABLE_CHARS].rstrip("-") or "job"
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:_KEY_HASH_CHARS]}"


def label_value(text: str) -> str:
    """`text` as a label value: lowercase letters, digits, `_` and `-`, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower())[:63]


def build_pipeline_job(
    *,
    spec: PipelineSpec,
    schedule: str,
    logical_time: datetime,
    parameter_values: Mapping[str, Any],
    pipeline_root: str,
    service_account: str,
    enable_caching: bool | None = None,
    template_uri: str | None = None,
) -> dict[str, Any]:
    """`template_uri` (pinned, checked by body.py) links the run to the Artifact Registry
    version its spec was published as. Sent next to the spec, as the aiplatform SDK's
    PipelineJob does for a template from Artifact Registry, so Vertex AI fetches nothing."""
    labels = {SCHEDULE_LABEL: schedule}
    if template_uri:
        from .template_uri import VERSION_PREFIX  # lazily: most schedules have none

        version = template_uri.rsplit("/", 1)[1]
        labels[TEMPLATE_VERSION_LABEL] = version.removeprefix(VERSION_PREFIX)[:16]
    job = pipeline_job_body(
        spec=spec,
        display_name=f"{schedule} {format_rfc3339(logical_time)}",
        labels=labels,
        parameter_values=parameter_values,
        pipeline_root=pipeline_root,
        service_account=service_account,
        enable_caching=enable_caching,
    )
    if template_uri:
        job["templateUri"] = template_uri
    return job


def pipeline_job_body(
    *,
    spec: PipelineSpec,
    display_name: str,
    labels: Mapping[str, str],
    parameter_values: Mapping[str, Any],
    pipeline_root: str,
    service_account: str,
    enable_caching: bool | None = None,
) -> dict[str, Any]:
    """Any submitter's PipelineJob: `labels` come on top of managed-by and the spec label."""
    pipeline_spec: Mapping[str, Any] = spec.pipeline_spec
    if enable_caching is not None:
        pipeline_spec = with_caching(pipeline_spec, enable_caching)
    return {
        "displayName": display_name,
        "pipelineSpec": pipeline_spec,
        "runtimeConfig": {"gcsOutputDirectory": pipeline_root, "parameterValues": dict(parameter_values)},
        "serviceAccount": service_account,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, **labels, SPEC_LABEL: spec_label(spec)},
    }


def with_caching(pipeline_spec: Mapping[str, Any], enabled: bool) -> dict[str, Any]:
    """A copy with every task's `cachingOptions.enableCache` set. PipelineJob has no caching
    field in Vertex AI v1: KFP keeps it per task, and the aiplatform SDK's `enable_caching`
    rewrites the tasks of the root DAG and of every DAG component the same way."""
    rewritten = copy.deepcopy(dict(pipeline_spec))
    components = list(_mapping(rewritten.get("components")).values())
    for component in [rewritten["root"], *components]:
        for task in _mapping(_mapping(_mapping(component).get("dag")).get("tasks")).values():
            if isinstance(task, dict):
                task["cachingOptions"] = {"enableCache": enabled}
    return rewritten


def _mapping(value: Any) -> Mapping[str, Any]:
    """Spec parts the parser does not check: anything but a mapping holds no tasks to rewrite
    (Vertex AI then refuses the spec itself)."""
    return value if isinstance(value, dict) else {}
