"""The three functions compared side by side, each served by functions-framework."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from vertex_cron import function_source
from vertex_cron.local.function_runner import extract_zip

FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"


@dataclass(frozen=True)
class Subject:
    key: str  # also the prefix of its schedule names: lowercase, digits, dashes
    title: str
    source_dir: Path


@dataclass(frozen=True)
class Subjects:
    vertex_cron: Subject
    floor: Subject
    reference: Subject | None  # None when a quick run skips it
    zip_bytes: int
    zip_files: int

    def all(self) -> list[Subject]:
        return [s for s in (self.vertex_cron, self.floor, self.reference) if s is not None]


def prepare(workdir: Path, *, include_reference: bool) -> Subjects:
    """vertex-cron exactly as the deployer uploads it: the deterministic zip, extracted.
    The other two are copied beside it, so no subject starts with cached bytecode."""
    source = function_source.build()
    extracted = extract_zip(source.zip_bytes, workdir / "vertex-cron-function")
    reference = Subject("sdk", "SDK reference", _copy("aiplatform_sdk", workdir))
    return Subjects(
        vertex_cron=Subject("vertex-cron", "vertex-cron", extracted),
        floor=Subject("floor", "floor (hello world)", _copy("hello_world", workdir)),
        reference=reference if include_reference else None,
        zip_bytes=len(source.zip_bytes),
        zip_files=sum(1 for path in extracted.rglob("*") if path.is_file()),
    )


def _copy(name: str, workdir: Path) -> Path:
    return Path(shutil.copytree(FUNCTIONS_DIR / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__")))
