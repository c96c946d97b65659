"""The catch-up sweep's "reported through" watermark: how far its `run_failed` / `missed`
lines have been written, kept across sweeps (sweep.py says how it is used).

One small object per project+region, in the spec bucket the function already knows:
`gs://VERTEX_CRON_SPEC_BUCKET/vertex-cron/sweep/PROJECT/REGION.json`, holding
`{"reported_through": RFC3339}`. It is only ever replaced with `ifGenerationMatch` set to the
generation read (0: only if there is none), so of two sweeps that read the same one, one
moves it and the other gets ConditionNotMet. The function's service account holds
storage.objects.get, create and delete (an overwrite needs delete) under SWEEP_PREFIX only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

from . import strict_json
from .errors import UpstreamRejected
from .settings import Settings
from .timefmt import format_rfc3339, parse_rfc3339

# The same string as deployer/permissions.py SWEEP_PREFIX (tests check they agree).
SWEEP_PREFIX = "vertex-cron/sweep/"
_MAX_BYTES = 1024
# Not application/json: gcp-storage-emulator parses such media uploads as JSON and stores
# other bytes (as for the Luigi task's outputs); GCS keeps any content type as given.
_CONTENT_TYPE = "text/plain; charset=utf-8"


class ObjectStore(Protocol):
    def read_object(self, bucket: str, name: str, *, max_bytes: int) -> tuple[bytes, int] | None: ...

    def live_generation(self, bucket: str, name: str) -> int: ...

    def upload_object(
        self, bucket: str, name: str, data: bytes, *, content_type: str, if_generation_match: int | None = None
    ) -> int: ...


class Watermark:
    """What was read: the time reported through (None: no sweep has written one) and the
    object's generation (0: absent), the precondition of the write that moves it."""

    __slots__ = ("generation", "reported_through")

    def __init__(self, reported_through: datetime | None, generation: int) -> None:
        self.reported_through = reported_through
        self.generation = generation


def object_name(config: Settings) -> str:
    return f"{SWEEP_PREFIX}{config.project}/{config.region}.json"


def read(store: ObjectStore, config: Settings) -> Watermark:
    name = object_name(config)
    found = store.read_object(config.spec_bucket, name, max_bytes=_MAX_BYTES)
    if found is None:
        return Watermark(None, 0)
    data, generation = found
    try:
        reported_through = parse_rfc3339(strict_json.loads(data)["reported_through"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        # Someone else's bytes: refusing is safer than guessing how far the reports went.
        raise UpstreamRejected(
            f"gs://{config.spec_bucket}/{name} is not the sweep's watermark ({type(exc).__name__}); "
            "delete it and the next sweep starts again from its own ten minutes"
        ) from exc
    return Watermark(reported_through, generation)


def unchanged(store: ObjectStore, config: Settings, read_before: Watermark) -> bool:
    """Whether no other sweep has moved the watermark since `read_before` was read."""
    return store.live_generation(config.spec_bucket, object_name(config)) == read_before.generation


def advance(store: ObjectStore, config: Settings, read_before: Watermark, through: datetime) -> None:
    """Move the watermark to `through`, only if it is still what was read (else ConditionNotMet)."""
    data = json.dumps({"reported_through": format_rfc3339(through)}).encode()
    store.upload_object(
        config.spec_bucket,
        object_name(config),
        data,
        content_type=_CONTENT_TYPE,
        if_generation_match=read_before.generation,
    )
