"""`gs://BUCKET/OBJECT[#GENERATION]`: parsed strictly and confined to the spec bucket."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .errors import BadRequest, Forbidden

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_GENERATION_RE = re.compile(r"[0-9]{1,19}")  # GCS generations are int64
INT64_MAX = 2**63 - 1
_FIELD = "spec_uri"
_MAX_DIRECTORY_CHARS = 1024


class SpecUri(NamedTuple):
    bucket: str
    object: str
    generation: int | None = None

    def __str__(self) -> str:
        pinned = f"#{self.generation}" if self.generation is not None else ""
        return f"gs://{self.bucket}/{self.object}{pinned}"


def parse_spec_uri(uri: str, *, allowed_bucket: str | None = None) -> SpecUri:
    """400 for a malformed URI; 403 when it points outside `allowed_bucket`."""
    if not uri.startswith("gs://"):
        raise BadRequest(f"spec_uri must start with gs://, got {uri!r:.200}", field=_FIELD)
    location, hash_sign, generation = uri[len("gs://") :].partition("#")
    bucket, _, name = location.partition("/")
    if not _BUCKET_RE.fullmatch(bucket):
        raise BadRequest(f"spec_uri has an invalid bucket name {bucket!r:.100}", field=_FIELD)
    segments = name.split("/")
    if not name or any(segment in ("", ".", "..") for segment in segments):
        # Empty and dot segments are how a path escapes the layout the deployer writes.
        raise BadRequest(
            f"spec_uri object path must be non-empty without empty, '.' or '..' segments, got {name!r:.200}",
            field=_FIELD,
        )
    if any(ord(char) < 0x20 or char == "\x7f" for char in name):
        raise BadRequest("spec_uri object path contains control characters", field=_FIELD)
    if hash_sign and not _GENERATION_RE.fullmatch(generation):
        raise BadRequest(f"spec_uri generation after '#' must be 1-19 digits, got {generation!r:.40}", field=_FIELD)
    if hash_sign and int(generation) > INT64_MAX:
        raise BadRequest(
            f"spec_uri generation {generation} is larger than {INT64_MAX}, the largest Cloud Storage generation",
            field=_FIELD,
        )
    if allowed_bucket is not None and bucket != allowed_bucket:
        raise Forbidden(
            f"spec_uri bucket {bucket!r} is not the spec bucket {allowed_bucket!r}; "
            "this function only reads specs the deployer uploaded",
            field=_FIELD,
        )
    return SpecUri(bucket=bucket, object=name, generation=int(generation) if hash_sign else None)


def is_bucket_name(name: str) -> bool:
    return bool(_BUCKET_RE.fullmatch(name))


def bucket_of(directory: str) -> str:
    """The bucket of a pipeline root that passed gcs_directory_problem."""
    return directory[len("gs://") :].partition("/")[0]


def gcs_directory_problem(value: Any) -> str | None:
    """What is wrong with `value` as a pipeline root (`gs://BUCKET` or `gs://BUCKET/PATH`),
    or None when nothing is."""
    if not isinstance(value, str):
        return f"must be a gs://BUCKET/PATH string, got {type(value).__name__}"
    if not value.startswith("gs://"):
        return f"must be a gs://BUCKET/PATH URI, got {value!r:.100}"
    if not is_bucket_name(bucket_of(value)):
        return f"must be a gs://BUCKET/PATH URI with a valid bucket name, got {value!r:.100}"
    if len(value) > _MAX_DIRECTORY_CHARS:
        return f"must be a gs://BUCKET/PATH URI of at most {_MAX_DIRECTORY_CHARS} characters"
    if any(ord(char) < 0x20 or char == "\x7f" for char in value):
        return "must be a gs://BUCKET/PATH URI without control characters"
    return None
