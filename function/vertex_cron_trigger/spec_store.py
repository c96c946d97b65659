"""Specs read from Cloud Storage, parsed once per (object, generation) per warm instance.

A pinned URI (`#GENERATION`) that is cached costs no Cloud Storage call at all; an
unpinned one costs one metadata GET to learn the live generation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from .spec import MAX_SPEC_BYTES, PipelineSpec, parse_spec
from .spec_uri import SpecUri

MAX_CACHED_SPECS = 32


class ObjectReader(Protocol):
    def object_generation(self, bucket: str, name: str) -> int: ...

    def download_object(self, bucket: str, name: str, *, generation: int, max_bytes: int) -> bytes: ...


class SpecStore:
    def __init__(self, reader: ObjectReader, *, capacity: int = MAX_CACHED_SPECS) -> None:
        self._reader = reader
        self._capacity = capacity
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, int], PipelineSpec] = OrderedDict()

    def load(self, uri: SpecUri) -> PipelineSpec:
        generation = uri.generation
        if generation is None:
            generation = self._reader.object_generation(uri.bucket, uri.object)
        key = (uri.bucket, uri.object, generation)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = self._reader.download_object(uri.bucket, uri.object, generation=generation, max_bytes=MAX_SPEC_BYTES)
        spec = parse_spec(data, source=str(SpecUri(uri.bucket, uri.object, generation)))
        with self._lock:
            self._cache[key] = spec
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return spec
