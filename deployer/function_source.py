"""The trigger function's source: where it is, and the deterministic zip that is uploaded.

The zip's bytes depend only on the files' paths and contents (sorted entries, fixed
timestamps and permissions, no caches), so its sha256 identifies the source: an unchanged
source never triggers a Cloud Build.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
_UNIX = 3
_EXCLUDED_DIRS = {"__pycache__"}
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class FunctionSource:
    zip_bytes: bytes
    sha256: str

    @property
    def label(self) -> str:
        """The source hash as a label value (labels allow at most 63 characters)."""
        return self.sha256[:32]


def locate() -> Path:
    """function/ next to the package in a checkout, else the copy the wheel ships."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "function", package_dir / "_function"):
        if (candidate / "main.py").is_file() and (candidate / "requirements.txt").is_file():
            return candidate
    raise SettingsError(
        "cannot find the trigger function's source",
        details=f"looked in {package_dir.parent / 'function'} and {package_dir / '_function'}; reinstall vertex-cron",
    )


def build(root: Path | None = None) -> FunctionSource:
    root = root or locate()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _source_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_FIXED_TIME)
            info.external_attr = _FILE_MODE
            info.create_system = _UNIX
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    data = buffer.getvalue()
    return FunctionSource(zip_bytes=data, sha256=hashlib.sha256(data).hexdigest())


def _source_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(part in _EXCLUDED_DIRS or part.startswith(".") for part in parts):
            continue
        if path.is_file() and not path.name.endswith(_EXCLUDED_SUFFIXES):
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())
