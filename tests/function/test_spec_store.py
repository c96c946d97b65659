"""The per-instance spec cache: bounded by count and by total size."""

from __future__ import annotations

from pathlib import Path

from vertex_cron_trigger.spec_store import SpecStore
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


def test_the_cache_holds_at_most_max_bytes_of_specs_evicting_the_least_recent():
    padded = EXAMPLE + b" " * 1000
    bucket = CountingBucket({"a": EXAMPLE, "b": EXAMPLE, "big": padded})
    store = SpecStore(bucket, max_bytes=2 * len(EXAMPLE))
    load_all(store, ["a", "b"])  # both fit
    load_all(store, ["a", "b"])
    assert bucket.downloads == ["a", "b"]

    load_all(store, ["big"])  # evicts a and b, the least recently used, to make room
    load_all(store, ["big", "b"])
    assert bucket.downloads == ["a", "b", "big", "b"]


def test_a_spec_larger_than_the_cache_is_served_but_not_kept():
    bucket = CountingBucket({"a": EXAMPLE})
    store = SpecStore(bucket, max_bytes=len(EXAMPLE) - 1)
    load_all(store, ["a", "a"])
    assert bucket.downloads == ["a", "a"]
