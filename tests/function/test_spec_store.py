"""The per-instance spec cache: bounded by count and by total size."""

from __future__ import annotations

import gc
import json
import tracemalloc
from pathlib import Path

import pytest
from vertex_cron_trigger.spec import parse_spec
from vertex_cron_trigger.spec_store import MAX_CACHED_BYTES, SpecStore
from vertex_cron_trigger.spec_uri import SpecUri

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "pipeline.json").read_bytes()


class CountingBucket:
    """An in-memory bucket (the ObjectReader protocol) counting downloads per object."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.downloads: list[str] = []

    def object_generation(self, bucket: str, name: str) -> int:
        return 1

    def download_object(self, bucket: str, name: str, *, generation: int, max_bytes: int) -> bytes:
        self.downloads.append(name)
        return self.objects[name]


def load_all(store: SpecStore, names: list[str]) -> None:
    for name in names:
        store.load(SpecUri("b", name, 1))


def test_a_cached_spec_is_not_downloaded_again():
    bucket = CountingBucket({"a": EXAMPLE})
    store = SpecStore(bucket)
    load_all(store, ["a", "a", "a"])
    assert bucket.downloads == ["a"]


def _cost(data: bytes) -> int:
    return parse_spec(data, source="x").memory_bytes


def test_the_cache_holds_at_most_max_bytes_of_parsed_specs_evicting_the_least_recent():
    padded = EXAMPLE + b" " * 1000
    bucket = CountingBucket({"a": EXAMPLE, "b": EXAMPLE, "big": padded})
    store = SpecStore(bucket, max_bytes=2 * _cost(EXAMPLE))
    load_all(store, ["a", "b"])  # both fit
    load_all(store, ["a", "b"])
    assert bucket.downloads == ["a", "b"]

    load_all(store, ["big"])  # evicts a and b, the least recently used, to make room
    load_all(store, ["big", "b"])
    assert bucket.downloads == ["a", "b", "big", "b"]


def test_a_spec_larger_than_the_cache_is_served_but_not_kept():
    bucket = CountingBucket({"a": EXAMPLE, "b": EXAMPLE})
    store = SpecStore(bucket, max_bytes=_cost(EXAMPLE) - 1)
    load_all(store, ["a", "a"])
    assert bucket.downloads == ["a", "a"]


def with_values(values) -> bytes:
    document = json.loads(EXAMPLE)
    document["x"] = values
    return json.dumps(document, separators=(",", ":")).encode()


MANY_VALUES = {
    "objects": [{"a": i} for i in range(50_000)],
    "mapping": {f"k{i}": i for i in range(100_000)},
    "strings": [f"s{i}" for i in range(100_000)],
    "floats": [i + 0.5 for i in range(100_000)],
    "lists": [[i] for i in range(50_000)],
}


@pytest.mark.parametrize("shape", MANY_VALUES)
def test_the_estimate_covers_what_a_parsed_spec_of_many_values_holds(shape):
    """Measured, not timed: tracemalloc counts the bytes the parsed spec keeps."""
    data = with_values(MANY_VALUES[shape])
    gc.collect()
    tracemalloc.start()
    try:
        spec = parse_spec(data, source="many")
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held <= spec.memory_bytes, (held, spec.memory_bytes)
    assert spec.memory_bytes > 4 * len(data) or shape in ("floats",)  # far more than the file


def test_specs_small_on_disk_but_many_values_are_not_all_kept():
    """Three 1.4 MB files of 200,000 values: 4 MB of files, ~70 MB parsed. Kept by file size,
    all would stay; a few more and the instance would pass its 256 MiB."""
    files = {f"s{i}": with_values([{"a": i * 1_000_000 + j} for j in range(100_000)]) for i in range(3)}
    assert sum(len(data) for data in files.values()) < MAX_CACHED_BYTES < sum(_cost(d) for d in files.values())
    bucket = CountingBucket(files)
    store = SpecStore(bucket)
    load_all(store, list(files))

    load_all(store, ["s2", "s0"])  # the most recent is still cached; the least recent was evicted

    assert bucket.downloads == [*files, "s0"]
