"""What Cloud Build installs for the function is what these tests ran.

function/requirements.txt is exported from uv.lock by `make lock`; the test environment is
synced from the same lock. A hand edit of either, or a forgotten `make lock`, fails here.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parents[1] / "function" / "requirements.txt"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^ ;\\]+)")


def _requirements() -> list[tuple[str, str, list[str]]]:
    """(name, version, hashes) for each requirement, continuation lines joined."""
    logical = re.sub(r"\\\n", " ", REQUIREMENTS.read_text())
    found = []
    for line in logical.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pin = _PIN.match(line)
        assert pin, f"not an exact == pin: {line!r}"
        found.append((pin["name"], pin["version"], re.findall(r"--hash=sha256:([0-9a-f]{64})", line)))
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_function_requirement_is_pinned_with_a_hash():
    requirements = _requirements()
    names = {_canonical(name) for name, _, _ in requirements}
    assert names >= {"functions-framework", "google-auth", "croniter", "pyyaml", "tzdata"}
    # The function talks HTTP over the standard library (transport.py): no HTTP library ships.
    assert names.isdisjoint({"requests", "urllib3", "charset-normalizer"})
    unhashed = [name for name, _, hashes in requirements if not hashes]
    assert unhashed == [], f"pinned without --hash: {unhashed}"


@pytest.mark.parametrize("name,version", [(n, v) for n, v, _ in _requirements()])
def test_the_function_pins_what_the_tests_run(name, version):
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not for this platform or Python")  # an environment marker excluded it
    assert installed == version, (
        f"function/requirements.txt pins {name}=={version} but the tests ran {installed}: run `make lock`"
    )
