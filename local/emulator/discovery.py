"""Google's published request schema as a second, independent check on every request.

The per-API modules parse bodies into the real proto types (common.parse_body); this
module checks the same requests against a different source: the API Discovery documents
Google publishes and `google-api-python-client` ships (loaded from the installed package,
never the network). A request is resolved to a Discovery method by HTTP method and path
template (flatPath; for Cloud Storage also the media upload/download paths), then its
query parameters, JSON body and FieldMask paths are checked against the method's
parameters and request schema. docs/fidelity.md ("Discovery validation") lists every
check and the source of each decision.

Each finding is a `Violation`. `refused` says whether Google answers such a request with
400 (unknown method, parameter or field; wrong type; bad enum, duration, timestamp,
base64 or mask path; an int64 sent as a JSON number, deliberately stricter than Google).
The rest are sent values Google ignores (output-only fields, AIP-203), which
vertex-cron's own requests should not carry either.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from importlib.resources import files
from typing import Any

from .common import camel

# The documents of every API the emulators serve, by Discovery name.
DOCUMENTS = (
    "aiplatform.v1",
    "artifactregistry.v1",
    "cloudfunctions.v2",
    "cloudresourcemanager.v3",
    "cloudscheduler.v1",
    "iam.v1",
    "iamcredentials.v1",
    "run.v2",
    "serviceusage.v1",
    "storage.v1",
)

# https://cloud.google.com/apis/docs/system-parameters: accepted by every Google REST API,
# in the query string, with or without the "$" prefix where the table lists both.
_SYSTEM_PARAMETERS = frozenset(
    {
        "access_token", "oauth_token", "$alt", "alt", "$.xgafv", "$apiFormat", "$callback", "callback", "$ct",
        "$fields", "fields", "$httpMethod", "$key", "$prettyPrint", "$quotaUser", "$userProject",
    }
)  # fmt: skip
# The generated REST clients ask for JSON with enums as numbers
# (google/api_core/rest_helpers.py and each client's _compat.py: "$alt" = "json;enum-encoding=int").
_ALT_VALUES = frozenset({"json", "json;enum-encoding=int", "media", "proto", "sse"})
# A resumable upload's session URI is the upload path plus `upload_id`; its chunks are PUT there
# (https://cloud.google.com/storage/docs/performing-resumable-uploads).
_UPLOAD_SESSION = "upload_id"

# google.protobuf.Duration in JSON (https://protobuf.dev/programming-guides/json/): seconds with
# up to nine fractional digits and the suffix "s".
_DURATION = re.compile(r"-?\d+(\.\d{1,9})?s")
# google.protobuf.Timestamp in JSON: RFC 3339, "Z" or an offset, up to nine fractional digits.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)
_DATE = re.compile(r"\d{4}-\d\d-\d\d")  # Discovery's "date" format (RFC 3339 full-date)
_INTEGER = re.compile(r"-?\d+")
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_OUTPUT_ONLY_PREFIX = "Output only."


@dataclass(frozen=True)
class Violation:
    """One way a request departs from its Discovery method; `where` is dotted, e.g. body.httpTarget.uri."""

    method: str
    path: str
    where: str
    problem: str
    refused: bool = True

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.where}: {self.problem}"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "where": self.where,
            "problem": self.problem,
            "refused": self.refused,
        }


@dataclass(frozen=True)
class _Method:
    document: str
    id: str
    http_method: str
    template: re.Pattern[str]
    specificity: int  # literal characters in the path template: the most specific match wins
    parameters: Mapping[str, Any]
    request: str | None
    media_upload: bool

    @property
    def schemas(self) -> Mapping[str, Any]:
        return document(self.document)["schemas"]


@functools.cache
def document(name: str) -> dict[str, Any]:
    """The Discovery document `name` (e.g. "cloudscheduler.v1") as google-api-python-client ships it."""
    text = files("googleapiclient").joinpath("discovery_cache", "documents", f"{name}.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _walk_methods(resource: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from resource.get("methods", {}).values()
    for child in resource.get("resources", {}).values():
        yield from _walk_methods(child)


def _template(path: str, *, last_is_resource_id: bool) -> tuple[re.Pattern[str], int]:
    """A Discovery path template as a regex over the request path, each {x} one path segment.

    A template that ends in a variable ends in a resource ID, which never holds the ":" that
    starts a custom method (AIP-136), so `jobs/x:explode` is no `jobs/{jobsId}`. Earlier
    segments may hold one (a domain-scoped project `example.com:p`), and so may the older
    APIs' last variable (a Cloud Storage object name): `last_is_resource_id` says which.
    """
    parts = re.split(r"\{\+?[^}]+\}", path)
    variables = ["[^/]+"] * (len(parts) - 1)
    if variables and last_is_resource_id and parts[-1] == "":
        variables[-1] = "[^/:]+"
    pattern = re.escape(parts[0]) + "".join(v + re.escape(p) for v, p in zip(variables, parts[1:], strict=True))
    return re.compile(pattern), sum(len(part) for part in parts)


# Resource IDs that do hold ":" (so no custom method can follow them): Artifact Registry's
# versions are `sha256:DIGEST` (Tag.version: ".../versions/sha256:5243811") and its tags may
# contain ":" (Tag.name: "[a-zA-Z0-9\\-._~:@]"), both in the artifactregistry v1 document.
_COLON_IDS = {"artifactregistry.v1": ("/{versionsId}", "/{tagsId}")}


def _methods_of(name: str) -> list[_Method]:
    doc = document(name)
    service_path = "/" + doc.get("servicePath", "")
    methods = []
    for spec in _walk_methods(doc):
        paths = [service_path + spec.get("flatPath", spec["path"])]
        upload = spec.get("mediaUpload", {}).get("protocols", {})
        paths += [protocol["path"] for protocol in upload.values()]
        if spec.get("useMediaDownloadService"):
            paths.append("/download" + service_path + spec["path"])
        for path in paths:
            resource_id = "flatPath" in spec and not path.endswith(_COLON_IDS.get(name, ()))
            regex, specificity = _template(path, last_is_resource_id=resource_id)
            methods.append(
                _Method(
                    document=name,
                    id=spec["id"],
                    http_method=spec["httpMethod"],
                    template=regex,
                    specificity=specificity,
                    parameters={**doc.get("parameters", {}), **spec.get("parameters", {})},
                    request=spec.get("request", {}).get("$ref"),
                    media_upload=path.startswith(("/upload/", "/resumable/")),
                )
            )
    return methods


def refusal(violations: list[Violation]) -> str | None:
    """The 400 message for the violations Google would refuse; None when it would accept the request."""
    refused = [f"{v.where}: {v.problem}" for v in violations if v.refused]
    if not refused:
        return None
    return "Invalid request (not allowed by the API's Discovery document): " + "; ".join(refused)


@functools.cache
def validator() -> DiscoveryValidator:
    """The validator over every document (loading them takes a noticeable fraction of a second: once per process)."""
    return DiscoveryValidator()


def is_output_only(prop: Mapping[str, Any]) -> bool:
    """Discovery marks output-only fields with `readOnly: true` and/or the description's "Output only." prefix."""
    return bool(prop.get("readOnly")) or prop.get("description", "").lstrip().startswith(_OUTPUT_ONLY_PREFIX)


class DiscoveryValidator:
    """Checks requests against the Discovery documents of `documents` (all of DOCUMENTS by default)."""

    def __init__(self, documents: tuple[str, ...] = DOCUMENTS) -> None:
        self._methods = [method for name in documents for method in _methods_of(name)]

    def check(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: bytes,
        content_type: str = "application/json",
    ) -> list[Violation]:
        """Every violation of the best-matching Discovery method (none: the request is as Google documents it).

        When several documents describe the same path (every API's operations.get), the
        request passes if it satisfies any of them.
        """
        matches = [m for m in self._methods if m.template.fullmatch(path)]
        if not matches:
            return [Violation(method, path, "path", "no method of the Discovery documents has this path")]
        session = _UPLOAD_SESSION in query
        same_method = [
            m for m in matches if m.http_method == method or (session and m.media_upload and method == "PUT")
        ]
        if not same_method:
            allowed = ", ".join(sorted({m.http_method for m in matches}))
            return [Violation(method, path, "method", f"this path takes {allowed} in the Discovery documents")]
        best = max(m.specificity for m in same_method)
        candidates = [m for m in same_method if m.specificity == best]
        found: list[Violation] = []
        for candidate in candidates:
            found = _Check(candidate, method, path).run(query, body, content_type)
            if not found:
                return []
        return found


class _Check:
    """One request against one Discovery method."""

    def __init__(self, method: _Method, http_method: str, path: str) -> None:
        self.method = method
        self.http_method = http_method
        self.path = path
        self.violations: list[Violation] = []

    def _add(self, where: str, problem: str, *, refused: bool = True) -> None:
        self.violations.append(Violation(self.http_method, self.path, where, problem, refused))

    def run(self, query: Mapping[str, list[str]], body: bytes, content_type: str) -> list[Violation]:
        self._query(query)
        if self.method.media_upload:
            self._upload_body(query, body, content_type)
        elif self.method.request is not None:
            self._json_body(body)
        elif body.strip():
            self._add("body", f"{self.method.id} takes no request body")
        return self.violations

    # -- query ---------------------------------------------------------------------------

    def _query(self, query: Mapping[str, list[str]]) -> None:
        params = self.method.parameters
        for name, values in query.items():
            where = f"query.{name}"
            if name in ("$alt", "alt"):
                for value in values:
                    if value not in _ALT_VALUES:
                        self._add(where, f'"{value}" is not a response format Google APIs accept')
                continue
            if name in _SYSTEM_PARAMETERS or (name == _UPLOAD_SESSION and self.method.media_upload):
                continue
            spec = params.get(name)
            if spec is None or spec.get("location") != "query":
                self._add(where, f"{self.method.id} has no query parameter {name!r}")
                continue
            if len(values) > 1 and not spec.get("repeated"):
                self._add(where, "given more than once but not a repeated parameter")
            for value in values:
                self._query_value(where, spec, value)
        for name, spec in params.items():
            if spec.get("location") == "query" and spec.get("required") and name not in query:
                self._add(f"query.{name}", "required by the Discovery document but missing")

    def _query_value(self, where: str, spec: Mapping[str, Any], value: str) -> None:
        kind, fmt = spec.get("type"), spec.get("format")
        if "enum" in spec:
            if value not in spec["enum"] and not _enum_index(value, spec["enum"]):
                self._add(where, f'"{value}" is not one of {", ".join(spec["enum"])}')
        elif kind == "boolean" and value not in ("true", "false"):
            self._add(where, f'"{value}" is not a boolean (true or false)')
        elif kind == "integer" or fmt in _INT_RANGES:
            self._integer_text(where, value, fmt or "int32")
        elif fmt == "google-fieldmask":
            self._mask(where, value)
        elif fmt in ("google-duration", "google-datetime", "date-time"):
            self._string_format(where, value, fmt)

    def _mask(self, where: str, value: str) -> None:
        """Each path of a FieldMask parameter must name a field of the schema it masks."""
        schema = self._mask_target()
        if schema is None:
            return
        for path in filter(None, (p.strip() for p in value.split(","))):
            if path == "*":
                continue
            self._mask_path(where, path, schema)

    def _mask_target(self) -> Mapping[str, Any] | None:
        # An update's mask names fields of the request resource (AIP-134). Other masks
        # (a list's readMask) name fields of a schema the Discovery document does not link.
        if self.method.request is not None:
            return self.method.schemas[self.method.request]
        return None

    def _mask_path(self, where: str, path: str, schema: Mapping[str, Any]) -> None:
        node: Mapping[str, Any] = schema
        segments = path.split(".")
        for index, segment in enumerate(segments):
            node = self._resolve(node)
            props = node.get("properties") or {}
            prop = props.get(segment) or props.get(camel(segment))
            if prop is None:
                if node.get("additionalProperties") is not None and index == len(segments) - 1:
                    return  # a map key (AIP-161)
                self._add(where, f'"{path}" names no field of {node.get("id", "the resource")}')
                return
            if is_output_only(prop):
                self._add(where, f'"{path}" names an output-only field', refused=False)
                return
            node = prop

    # -- body ----------------------------------------------------------------------------

    def _json_body(self, body: bytes) -> None:
        if not body.strip():
            return  # an empty body is the empty message
        try:
            value = json.loads(body)
        except ValueError as exc:
            self._add("body", f"not JSON: {exc}")
            return
        self._value("body", {"$ref": self.method.request}, value)

    def _upload_body(self, query: Mapping[str, list[str]], body: bytes, content_type: str) -> None:
        """Media uploads: only multipart and resumable initiations carry JSON metadata."""
        upload_type = (query.get("uploadType") or [""])[0]
        if _UPLOAD_SESSION in query or upload_type == "media":
            return
        if upload_type == "multipart":
            metadata = _first_part(content_type, body)
            if metadata is None:
                self._add("body", "a multipart upload whose first part is not the JSON metadata")
                return
            self._json_body(metadata)
        elif upload_type == "resumable":
            self._json_body(body)
        else:
            self._add("query.uploadType", f'"{upload_type}" is not media, multipart or resumable')

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            schema = self.method.schemas[schema["$ref"]]
        return schema

    def _value(self, where: str, schema: Mapping[str, Any], value: Any) -> None:
        if value is None:
            return  # proto3 JSON: null is the field's default value
        schema = self._resolve(schema)
        kind = schema.get("type")
        if kind == "any":
            return
        if kind == "object":
            self._object(where, schema, value)
        elif kind == "array":
            if not isinstance(value, list):
                self._add(where, f"expected a JSON array, got {_json_type(value)}")
                return
            for index, item in enumerate(value):
                self._value(f"{where}[{index}]", schema.get("items", {}), item)
        elif kind == "string":
            self._string(where, schema, value)
        elif kind == "integer":
            self._integer(where, schema, value)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                self._add(where, f"expected a number, got {_json_type(value)}")
            elif isinstance(value, str) and value not in ("NaN", "Infinity", "-Infinity"):
                self._add(where, f'"{value}" is not a number')
        elif kind == "boolean" and not isinstance(value, bool):
            self._add(where, f"expected true or false, got {_json_type(value)}")

    def _object(self, where: str, schema: Mapping[str, Any], value: Any) -> None:
        if not isinstance(value, dict):
            self._add(where, f"expected a JSON object, got {_json_type(value)}")
            return
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            field_where = f"{where}.{key}"
            if props is not None and key in props:
                if is_output_only(props[key]):
                    self._add(field_where, "an output-only field (Google ignores it, AIP-203)", refused=False)
                self._value(field_where, props[key], item)
            elif extra is not None:
                self._value(field_where, extra, item)
            else:
                self._add(field_where, f"unknown field of {schema.get('id', 'the message')}")

    def _string(self, where: str, schema: Mapping[str, Any], value: Any) -> None:
        fmt = schema.get("format")
        if "enum" in schema and isinstance(value, int) and not isinstance(value, bool):
            if not _enum_index(str(value), schema["enum"]):
                self._add(where, f"{value} is not the number of a value of this enum (0-{len(schema['enum']) - 1})")
            return
        if fmt in _INT_RANGES:
            if isinstance(value, int) and not isinstance(value, bool):
                self._add(where, f"{fmt} is a JSON string in the Discovery document, got the number {value}")
            elif isinstance(value, str):
                self._integer_text(where, value, fmt)
            else:
                self._add(where, f"expected a decimal string ({fmt}), got {_json_type(value)}")
            return
        if not isinstance(value, str):
            self._add(where, f"expected a string, got {_json_type(value)}")
            return
        if "enum" in schema:
            if value not in schema["enum"]:
                self._add(where, f'"{value}" is not one of {", ".join(schema["enum"])}')
            return
        self._string_format(where, value, fmt)

    def _string_format(self, where: str, value: str, fmt: str | None) -> None:
        if fmt == "google-duration" and not _DURATION.fullmatch(value):
            self._add(where, f'"{value}" is not a google-duration (seconds with an "s" suffix, e.g. "180s")')
        elif fmt in ("google-datetime", "date-time") and not _TIMESTAMP.fullmatch(value):
            self._add(where, f'"{value}" is not a google-datetime (RFC 3339)')
        elif fmt == "date" and not _DATE.fullmatch(value):
            self._add(where, f'"{value}" is not a date (YYYY-MM-DD)')
        elif fmt == "byte" and not _is_base64(value):
            self._add(where, "is not base64")

    def _integer(self, where: str, schema: Mapping[str, Any], value: Any) -> None:
        # proto3 JSON: 32-bit integers are numbers, and decimal strings are accepted too.
        if isinstance(value, bool) or not isinstance(value, int | str):
            self._add(where, f"expected an integer, got {_json_type(value)}")
        else:
            self._integer_text(where, str(value), schema.get("format", "int32"))

    def _integer_text(self, where: str, value: str, fmt: str) -> None:
        low, high = _INT_RANGES.get(fmt, _INT_RANGES["int32"])
        if not _INTEGER.fullmatch(value):
            self._add(where, f'"{value}" is not a decimal integer ({fmt})')
        elif not low <= int(value) <= high:
            self._add(where, f"{value} is out of the {fmt} range")


def _first_part(content_type: str, body: bytes) -> bytes | None:
    """The first part of a multipart/related body: the JSON metadata of a multipart upload."""
    message = BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        return None
    parts = message.get_payload()
    if not isinstance(parts, list) or not parts or not isinstance(parts[0], Message):
        return None
    payload = parts[0].get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


def _enum_index(text: str, values: list[str]) -> bool:
    """`enum-encoding=int`: an enum sent as its number. Discovery lists the values in proto order from 0."""
    return text.isdigit() and int(text) < len(values)


def _is_base64(text: str) -> bool:
    # proto3 JSON bytes: standard or URL-safe base64, with or without padding.
    padded = text + "=" * (-len(text) % 4)
    try:
        base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
