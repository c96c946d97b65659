"""The three functions compared side by side, each served by functions-framework from the
environment Cloud Build would give it.

Each subject gets a virtualenv of its own requirements.txt only (function_env.py) and its
source byte-compiled as the build does, all prepared before anything is timed:
- vertex-cron: the deployer's zip, extracted; its requirements.txt pins every package
  with hashes (uv.lock's versions).
- the floor and the SDK reference: their requirements.txt name only what they import,
  installed at the versions this environment holds (uv.lock's) through a constraints file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from vertex_cron import function_source
from vertex_cron_local.function_env import FunctionEnvironment, compile_source, prepare
from vertex_cron_local.function_runner import extract_zip

FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"


@dataclass(frozen=True)
class Subject:
    key: str  # also the prefix of its schedule names: lowercase, digits, dashes
    title: str
    source_dir: Path
    environment: FunctionEnvironment


@dataclass(frozen=True)
class Subjects:
    vertex_cron: Subject
    floor: Subject
    reference: Subject | None  # None when a quick run skips it
    zip_bytes: int
    zip_files: int

    def all(self) -> list[Subject]:
        return [s for s in (self.vertex_cron, self.floor, self.reference) if s is not None]


def prepare_subjects(workdir: Path, *, include_reference: bool, say: Callable[[str], None]) -> Subjects:
    """vertex-cron exactly as the deployer uploads it: the deterministic zip, extracted.
    The other two are copied beside it; every source is then built as Cloud Build would."""
    source = function_source.build()
    extracted = extract_zip(source.zip_bytes, workdir / "vertex-cron-function")
    zip_files = sum(1 for path in extracted.rglob("*") if path.is_file())
    tested = _tested_versions(workdir / "tested-versions.txt")
    say("function environments: one virtualenv per subject (made once, then cached)")
    vertex_cron = _build("vertex-cron", "vertex-cron", extracted, constraints=None)
    floor = _build("floor", "floor (hello world)", _copy("hello_world", workdir), constraints=tested)
    reference = (
        _build("sdk", "SDK reference", _copy("aiplatform_sdk", workdir), constraints=tested)
        if include_reference
        else None
    )
    return Subjects(vertex_cron, floor, reference, len(source.zip_bytes), zip_files)


def _build(key: str, title: str, source_dir: Path, *, constraints: Path | None) -> Subject:
    environment = prepare(source_dir / "requirements.txt", constraints=constraints)
    compile_source(source_dir, environment)
    return Subject(key, title, source_dir, environment)


def _tested_versions(path: Path) -> Path:
    """Every package of this environment at its version: pip's constraints for the subjects
    whose requirements name packages without versions."""
    pins = sorted(
        {
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in metadata.distributions()
            if dist.metadata["Name"] and dist.metadata["Name"] != "vertex-cron"
        }
    )
    path.write_text("".join(f"{pin}\n" for pin in pins))
    return path


def _copy(name: str, workdir: Path) -> Path:
    return Path(shutil.copytree(FUNCTIONS_DIR / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__")))
