"""The PipelineJob REST body (Vertex AI v1), its deterministic id and its labels."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .spec import PipelineSpec
from .timefmt import format_rfc3339

MANAGED_BY_LABEL = "managed-by"
MANAGED_BY_VALUE = "vertex-cron"
SCHEDULE_LABEL = "vertex-cron-schedule"
SPEC_LABEL = "vertex-cron-spec"


def job_id(schedule: str, logical_time: datetime) -> str:
    """`{schedule}-{YYYYMMDD}-{HHMMSS}[-{mmm}]` in UTC: one id per firing, so every retry
    and concurrent delivery of that firing collides on ALREADY_EXISTS instead of re-running."""
    moment = logical_time.astimezone(timezone.utc)
    millis = moment.microsecond // 1000
    return f"{schedule}-{moment:%Y%m%d-%H%M%S}" + (f"-{millis:03d}" if millis else "")


def spec_label(spec: PipelineSpec) -> str:
    return spec.content_sha256[:16]


def schedule_labels(schedule: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SCHEDULE_LABEL: schedule}


def build_pipeline_job(
    *,
    spec: PipelineSpec,
    schedule: str,
    logical_time: datetime,
    parameter_values: Mapping[str, Any],
    pipeline_root: str,
    service_account: str,
    enable_caching: bool | None = None,
) -> dict[str, Any]:
    pipeline_spec: Mapping[str, Any] = spec.pipeline_spec
    if enable_caching is not None:
        pipeline_spec = with_caching(pipeline_spec, enable_caching)
    return {
        "displayName": f"{schedule} {format_rfc3339(logical_time)}",
        "pipelineSpec": pipeline_spec,
        "runtimeConfig": {"gcsOutputDirectory": pipeline_root, "parameterValues": dict(parameter_values)},
        "serviceAccount": service_account,
        "labels": {**schedule_labels(schedule), SPEC_LABEL: spec_label(spec)},
    }


def with_caching(pipeline_spec: Mapping[str, Any], enabled: bool) -> dict[str, Any]:
    """A copy with every task's `cachingOptions.enableCache` set. PipelineJob has no caching
    field in Vertex AI v1: KFP keeps it per task, and the aiplatform SDK's `enable_caching`
    rewrites the tasks of the root DAG and of every DAG component the same way."""
    rewritten = copy.deepcopy(dict(pipeline_spec))
    components = list((rewritten.get("components") or {}).values())
    for component in [rewritten["root"], *components]:
        for task in ((component.get("dag") or {}).get("tasks") or {}).values():
            task["cachingOptions"] = {"enableCache": enabled}
    return rewritten
