"""A compiled pipeline (a local file, or bytes read from Artifact Registry) -> the
content-addressed object to upload, checked before any call.

Parsing and parameter typing are the trigger runtime's own (vertex_cron_trigger), so the
deployer refuses exactly what the function would refuse, before anything is deployed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vertex_cron_trigger.errors import BadRequest
from vertex_cron_trigger.parameters import coerce_parameters
from vertex_cron_trigger.placeholders import has_placeholders, render_parameters
from vertex_cron_trigger.spec import MAX_SPEC_BYTES, PipelineSpec, load_document, parse_spec
from vertex_cron_trigger.spec_uri import gcs_directory_problem
from vertex_cron_trigger.template_uri import FORMS, TemplateUri, parse_template_uri

from .errors import ValidationError
from .models import SPEC_PREFIX, SpecObject

# The function loads at most MAX_SPEC_BYTES; a bigger spec would deploy and then fail every run.
SPEC_LIMIT_BYTES = min(10 * 1024 * 1024, MAX_SPEC_BYTES)
# Placeholders are checked by rendering them for this firing: with two-digit fields and
# milliseconds, every strftime directive yields its widest form.
SAMPLE_LOGICAL_TIME = datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def source(text: str, *, base: Path | None = None) -> Path | TemplateUri:
    """Where `--spec` / a schedules file's `spec` points: an Artifact Registry KFP URI, or a
    local file (relative to `base`)."""
    if not text.startswith("https://"):
        return base / text if base is not None else Path(text)
    uri = parse_template_uri(text)
    if uri is None:
        raise ValidationError(f"spec {text!r} is not an Artifact Registry KFP URI", details=f"expected {FORMS}")
    return uri


def load(path: Path, *, prefix: str = SPEC_PREFIX) -> tuple[SpecObject, PipelineSpec]:
    """The object `<prefix><sha256 of the uploaded bytes>.json` and the parsed spec."""
    try:
        size = path.stat().st_size
        if size > SPEC_LIMIT_BYTES:
            raise ValidationError(f"spec {path} is {size} bytes, over the {SPEC_LIMIT_BYTES}-byte limit")
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read spec {path}: {exc.strerror or exc}") from exc
    return from_bytes(data, source=str(path), prefix=prefix)


def from_bytes(data: bytes, *, source: str, prefix: str = SPEC_PREFIX) -> tuple[SpecObject, PipelineSpec]:
    """`load` for a spec read from elsewhere (Artifact Registry); `source` names it in errors."""
    if len(data) > SPEC_LIMIT_BYTES:
        raise ValidationError(f"spec {source} is {len(data)} bytes, over the {SPEC_LIMIT_BYTES}-byte limit")
    try:
        spec = parse_spec(data, source=source)
        if not data.lstrip().startswith(b"{"):
            # Uploaded as JSON so the function never imports or parses YAML on a cold start;
            # the converted bytes are checked again exactly as the function will read them.
            data = _as_json(load_document(data, source))
            spec = parse_spec(data, source=source)
    except BadRequest as exc:
        raise ValidationError(exc.message) from exc
    sha256 = hashlib.sha256(data).hexdigest()
    return (
        SpecObject(object_name=f"{prefix}{sha256}.json", data=data, content_type="application/json"),
        spec,
    )


def _as_json(document: Any) -> bytes:
    try:
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:  # a YAML timestamp or .nan has no JSON form
        raise BadRequest(f"the spec has a value JSON cannot hold ({exc}); quote it") from exc


def typed_parameters(schedule: str, spec: PipelineSpec, values: Mapping[str, Any], *, time_zone: str) -> dict[str, Any]:
    """The values as the Scheduler body carries them, checked as the function will check them
    at fire time (rendered for SAMPLE_LOGICAL_TIME, then typed). Values with placeholders stay
    text for the function to render; the others are sent typed."""
    try:
        rendered = render_parameters(values, schedule=schedule, logical_time=SAMPLE_LOGICAL_TIME, time_zone=time_zone)
        typed = coerce_parameters(spec, rendered)
    except BadRequest as exc:
        raise ValidationError(f"schedule {schedule}: {exc.message.replace('parameter_values.', 'parameter ')}") from exc
    return {name: values[name] if has_placeholders(values[name]) else value for name, value in typed.items()}


def check_pipeline_root(schedule: str, root: str) -> str:
    """`root` if the function would accept it: a root it would refuse must not reach a Scheduler job."""
    problem = gcs_directory_problem(root)
    if problem:
        raise ValidationError(f"schedule {schedule}: the pipeline root {problem}")
    return root
