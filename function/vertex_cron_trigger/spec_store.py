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
# The sum of the cached specs' memory as estimated when parsed (PipelineSpec.memory_bytes), not
# of their files: a 4 MiB file of a million values takes ~100 MiB parsed. With the worker's
# ~50 MiB and one such spec being parsed for a request, this stays within the function's 256 MiB.
MAX_CACHED_BYTES = 48 * 1024 * 1024


class ObjectReader(Protocol):
    def object_generation(self, bucket: str, name: str) -> int: ...

    def download_object(self, bucket: str, name: str, *, generation: int, max_bytes: int) -> bytes: ...


class SpecStore:
    def __init__(
        self, reader: ObjectReader, *, capacity: int = MAX_CACHED_SPECS, max_bytes: int = MAX_CACHED_BYTES
    ) -> None:
        self._reader = reader
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        # (bucket, object, generation) -> the parsed spec, least recent first
        self._cache: OrderedDict[tuple[str, str, int], PipelineSpec] = OrderedDict()
        self._cached_bytes = 0  # the sum of their memory_bytes

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
        if spec.memory_bytes > self._max_bytes:
            return spec  # served, but kept it would push every other spec out
        with self._lock:
            if key not in self._cache:  # a concurrent request may have cached it meanwhile
                self._cache[key] = spec
                self._cached_bytes += spec.memory_bytes
            while len(self._cache) > self._capacity or self._cached_bytes > self._max_bytes:
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= evicted.memory_bytes
        return spec
