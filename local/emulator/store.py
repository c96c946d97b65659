"""The one store every emulated API keeps its resources in: one lock, one clock, one file.

Each API takes its collections from the store by name (`collection("pipelineJobs")`, or
`sequence(...)` for an ordered list). A collection is the same object for the store's whole
life, so an API may hold on to it: reset and load refill it in place. With a `state_dir` the
store is saved as JSON there after each change and reloaded at start, so `vertex-cron local`
keeps its jobs across restarts.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_FILE = "emulator-state.json"
STATE_VERSION = 1


class Store:
    def __init__(self, *, state_dir: Path | str | None, clock: Callable[[], float]) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.clock = clock
        self.lock = threading.RLock()
        self._collections: dict[str, dict[str, Any] | list[Any]] = {}
        self._dirty = False

    def now(self) -> float:
        """Epoch seconds on the emulator's clock (tests move it)."""
        return self.clock()

    def collection(self, name: str) -> dict[str, Any]:
        """The resources named `name`, by key."""
        with self.lock:
            found = self._collections.setdefault(name, {})
        if not isinstance(found, dict):
            raise TypeError(f"the store's {name} is a sequence, not a collection")
        return found

    def sequence(self, name: str) -> list[Any]:
        """The records named `name`, in the order they were added."""
        with self.lock:
            found = self._collections.setdefault(name, [])
        if not isinstance(found, list):
            raise TypeError(f"the store's {name} is a collection, not a sequence")
        return found

    def touch(self) -> None:
        """Mark the store changed: the next `save` writes it."""
        self._dirty = True

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of every collection (GET /_emulator/state)."""
        with self.lock:
            return copy.deepcopy(self._collections)

    def reset(self) -> None:
        """Empty every collection, and save that."""
        with self.lock:
            for items in self._collections.values():
                items.clear()
            self._dirty = True
        self.save()

    # -- persistence ---------------------------------------------------------------------

    @property
    def state_file(self) -> Path | None:
        return self.state_dir / STATE_FILE if self.state_dir is not None else None

    def load(self) -> None:
        path = self.state_file
        if path is None or not path.exists():
            return
        data = json.loads(path.read_text())
        if data.get("version") != STATE_VERSION:
            raise RuntimeError(f"{path}: unsupported emulator state version {data.get('version')!r}")
        with self.lock:
            for name, items in data["state"].items():
                kept = self._collections.setdefault(name, items)
                if isinstance(kept, list) and kept is not items:  # refilled in place: the APIs hold on to them
                    kept[:] = items
                elif isinstance(kept, dict) and kept is not items:
                    kept.clear()
                    kept.update(items)
            self._dirty = False

    def save(self) -> None:
        """Write the store to `state_dir` (atomically) unless nothing changed since the last save."""
        path = self.state_file
        if path is None:
            return
        with self.lock:
            if not self._dirty and path.exists():
                return
            payload = json.dumps({"version": STATE_VERSION, "state": self._collections}, sort_keys=True)
            self._dirty = False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(payload)
        os.replace(tmp, path)
