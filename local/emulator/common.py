"""Errors, time formatting, proto (de)serialisation and validators shared by the services."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

# A collection parent in every emulated API's resource names.
LOCATION_PARENT = r"projects/[^/]+/locations/[^/]+"

# HTTP status for each google.rpc.Code name (https://google.aip.dev/193).
STATUS_HTTP = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

# google.rpc.Code numbers.
RPC_CODE = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}

# The canonical status name for an HTTP error status (used by fault injection and by
# Cloud Scheduler's attempt status).
HTTP_STATUS_NAME = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name_for_http(code: int) -> str:
    if code in HTTP_STATUS_NAME:
        return HTTP_STATUS_NAME[code]
    if 200 <= code < 300:
        return "OK"
    if 400 <= code < 500:
        return "FAILED_PRECONDITION"
    return "UNKNOWN"


class ApiError(Exception):
    """An error answered in Google's JSON shape: {"error": {code, message, status}}."""

    def __init__(self, status: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http_status = http_status or STATUS_HTTP[status]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ApiError:
    return ApiError("NOT_FOUND", message)


# -- time --------------------------------------------------------------------------------


def rfc3339(ts: float) -> str:
    """Epoch seconds as Google's APIs write a Timestamp in JSON, to the microsecond: protobuf's
    own formatting (the proto3 JSON mapping: UTC with "Z", 0, 3, 6 or 9 fractional digits)."""
    stamp = Timestamp()
    stamp.FromMicroseconds(round(ts * 1_000_000))
    return stamp.ToJsonString()


def parse_rfc3339(value: str) -> float:
    """A Timestamp's JSON form in epoch seconds, read by protobuf's own parser; ValueError when
    it is not one."""
    stamp = Timestamp()
    stamp.FromJsonString(value)
    return stamp.seconds + stamp.nanos / 1e9


def duration_seconds(value: str) -> float:
    """A Duration's JSON form ("180s", "0.500s") in seconds, read by protobuf's own parser;
    ValueError when it is not one."""
    duration = Duration()
    duration.FromJsonString(value)
    return duration.ToTimedelta().total_seconds()


def to_epoch(value: Any) -> float:
    """datetime | RFC3339 string | epoch seconds -> epoch seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, str):
        return parse_rfc3339(value)
    return float(value)


# -- protos ------------------------------------------------------------------------------


@functools.cache
def message_types() -> dict[str, Any]:
    """The real request/resource message classes (imported once per process)."""
    from google.cloud.aiplatform_v1.types import pipeline_job, pipeline_service
    from google.cloud.functions_v2.types import functions
    from google.cloud.run_v2.types import service
    from google.cloud.scheduler_v1.types import cloudscheduler, job
    from google.iam.v1 import iam_policy_pb2, policy_pb2
    from google.longrunning import operations_pb2

    return {
        "PipelineJob": pipeline_job.PipelineJob.meta.pb,
        "CancelPipelineJobRequest": pipeline_service.CancelPipelineJobRequest.meta.pb,
        "Job": job.Job.meta.pb,
        "PauseJobRequest": cloudscheduler.PauseJobRequest.meta.pb,
        "ResumeJobRequest": cloudscheduler.ResumeJobRequest.meta.pb,
        "RunJobRequest": cloudscheduler.RunJobRequest.meta.pb,
        "Function": functions.Function.meta.pb,
        "GenerateUploadUrlRequest": functions.GenerateUploadUrlRequest.meta.pb,
        "FunctionsOperationMetadata": functions.OperationMetadata.meta.pb,
        "Service": service.Service.meta.pb,
        "SetIamPolicyRequest": iam_policy_pb2.SetIamPolicyRequest,
        "GetIamPolicyRequest": iam_policy_pb2.GetIamPolicyRequest,
        "TestIamPermissionsRequest": iam_policy_pb2.TestIamPermissionsRequest,
        "Policy": policy_pb2.Policy,
        "Operation": operations_pb2.Operation,
    }


def parse_body(body: bytes, type_name: str, *, allow_empty: bool = False) -> dict[str, Any]:
    """Strictly parse a JSON body into the real message type; return its canonical dict.

    Unknown fields, wrong types and bad enum names are rejected with INVALID_ARGUMENT
    naming the field, like the real APIs. Enums may be ints or names.
    """
    from google.protobuf import json_format

    text = body.decode("utf-8") if body else ""
    if not text.strip():
        if allow_empty:
            text = "{}"
        else:
            raise invalid("Invalid JSON payload received. Request body is empty.")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise invalid(f"Invalid JSON payload received. {exc}") from None
    if not isinstance(raw, dict):
        raise invalid("Invalid JSON payload received. Expected a JSON object.")
    msg = message_types()[type_name]()
    try:
        json_format.ParseDict(raw, msg)
    except json_format.ParseError as exc:
        first_line = str(exc).splitlines()[0]
        raise invalid(f"Invalid JSON payload received. {first_line}") from None
    return to_dict(msg)


def to_dict(msg: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(msg)


def canonical(resource: dict[str, Any], type_name: str) -> dict[str, Any]:
    """Round-trip a dict through the real message type (drops defaults, checks shape)."""
    from google.protobuf import json_format

    msg = message_types()[type_name]()
    json_format.ParseDict(resource, msg)
    return to_dict(msg)


def deep(value: Any) -> Any:
    return copy.deepcopy(value)


# -- validators --------------------------------------------------------------------------

_LABEL_KEY = re.compile(r"[^\W\d_A-Z][\w-]{0,62}")
_LABEL_VALUE = re.compile(r"[\w-]{0,63}")


def validate_labels(labels: dict[str, str] | None, *, max_labels: int = 64) -> None:
    if not labels:
        return
    if len(labels) > max_labels:
        raise invalid(f"At most {max_labels} labels are allowed, got {len(labels)}.")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key) or key != key.lower():
            raise invalid(
                f'Invalid label key "{key}": keys must start with a lowercase letter and contain only '
                "lowercase letters, digits, underscores and dashes (at most 63 characters)."
            )
        if not _LABEL_VALUE.fullmatch(value) or value != value.lower():
            raise invalid(
                f'Invalid label value "{value}" for key "{key}": values may contain only lowercase '
                "letters, digits, underscores and dashes (at most 63 characters)."
            )


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def is_email(value: str) -> bool:
    return bool(_EMAIL.fullmatch(value or ""))


def project_number(project: str) -> str:
    """A stable fake 12-digit project number for a project id."""
    if project.isdigit():
        return project
    return str(int(hashlib.sha256(project.encode()).hexdigest(), 16) % 900_000_000_000 + 100_000_000_000)


def short_hash(*parts: str, length: int = 10) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    n = int.from_bytes(digest, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def region_code(region: str) -> str:
    """us-central1 -> uc, europe-west1 -> ew (the *.a.run.app region code)."""
    parts = re.sub(r"\d+$", "", region).split("-")
    return "".join(p[0] for p in parts if p) or "uc"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def camel(path: str) -> str:
    """snake_case field path -> lowerCamelCase (each dotted segment)."""
    return ".".join(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), seg) for seg in path.split("."))


def parse_update_mask(query: dict[str, list[str]]) -> list[str] | None:
    values = query.get("updateMask") or query.get("update_mask")
    if not values:
        return None
    paths: list[str] = []
    for value in values:
        paths.extend(camel(p.strip()) for p in value.split(",") if p.strip())
    return paths


def read_masked(resource: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
    """A read's `readMask` (a FieldMask: comma-separated paths, snake_case or lowerCamelCase,
    dotted into messages): only the fields it names; without one, or with `*`, all of them."""
    paths = [camel(p.strip()) for value in query.get("readMask") or [] for p in value.split(",") if p.strip()]
    if not paths or "*" in paths:
        return resource
    kept: dict[str, Any] = {}
    for path in paths:
        source: Any = resource
        target = kept
        *parents, leaf = path.split(".")
        for segment in parents:
            source = source.get(segment) if isinstance(source, dict) else None
            if not isinstance(source, dict):
                break
            target = target.setdefault(segment, {})
        else:
            if leaf in source:
                target[leaf] = deep(source[leaf])
    return kept


def masked_patch(
    patch: dict[str, Any], query: dict[str, list[str]], *, mutable: set[str], ignored: set[str]
) -> tuple[dict[str, Any], list[str] | None]:
    """An update's patch and mask paths, limited to the `mutable` fields: a mask path outside
    them and `ignored` (output-only fields, the name) is refused, one inside `ignored` dropped;
    without a mask, the patch's other fields are dropped."""
    paths = parse_update_mask(query)
    if paths is None:
        return {k: v for k, v in patch.items() if k in mutable}, None
    for path in paths:
        if path.split(".")[0] not in mutable | ignored:
            raise invalid(f'Invalid update_mask path "{path}".')
    return patch, [p for p in paths if p.split(".")[0] in mutable]


def apply_update_mask(current: dict[str, Any], patch: dict[str, Any], paths: list[str] | None) -> dict[str, Any]:
    """AIP-134 update: replace each masked path in `current` by its value in `patch`."""
    result = deep(current)
    if paths is None:
        for key, value in patch.items():
            result[key] = deep(value)
        return result
    for path in paths:
        if path == "*":
            return {**deep(patch)}
        segs = path.split(".")
        src: Any = patch
        for seg in segs:
            src = src.get(seg) if isinstance(src, dict) else None
        dst = result
        for seg in segs[:-1]:
            dst = dst.setdefault(seg, {})
        if src is None:
            dst.pop(segs[-1], None)
        else:
            dst[segs[-1]] = deep(src)
    return result


def page(
    field: str, items: list[Any], query: dict[str, list[str]], *, key: str, default_size: int = 100, salt: str = ""
) -> dict[str, Any]:
    """A list method's answer: the page of `items` the query asks for under `field` (omitted
    when empty, as proto3 JSON omits an empty list) and `nextPageToken` when more follow.
    Offset pagination with an opaque token bound to the query (AIP-158)."""
    size_text = (query.get("pageSize") or query.get("page_size") or ["0"])[0]
    try:
        size = int(size_text or 0)
    except ValueError:
        raise invalid(f"Invalid value at 'page_size' (TYPE_INT32), \"{size_text}\"") from None
    if size < 0:
        raise invalid("page_size must not be negative.")
    if size == 0:
        size = default_size
    size = min(size, 1000)
    token = (query.get("pageToken") or query.get("page_token") or [""])[0]
    offset = 0
    fingerprint = hashlib.sha256(f"{key}|{salt}".encode()).hexdigest()[:12]
    if token:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            offset = int(data["o"])
            ok = data["f"] == fingerprint
        except Exception:
            ok = False
        if not ok:
            raise invalid("Invalid page token.")
    answer: dict[str, Any] = {field: items[offset : offset + size]} if items[offset : offset + size] else {}
    if offset + size < len(items):
        next_token = {"o": offset + size, "f": fingerprint}
        answer["nextPageToken"] = base64.urlsafe_b64encode(json.dumps(next_token).encode()).decode()
    return answer
