"""The wheel alone runs the demo: the function source ships inside the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_a_non_editable_install_of_the_wheel_runs_the_local_demo(tmp_path):
    run(sys.executable, "-m", "venv", tmp_path / "venv", cwd=tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    # Built and installed with the locked versions (the build backend's pin, and the tested
    # environment's versions as constraints), never whatever the index serves today.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        *pyproject["tool"]["uv"]["build-constraint-dependencies"],
        cwd=tmp_path,
    )
    run(
        python,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--quiet",
        "--wheel-dir",
        tmp_path / "dist",
        REPO,
        cwd=tmp_path,
    )
    [wheel] = (tmp_path / "dist").glob("vertex_cron-*.whl")
    tested = tmp_path / "tested-versions.txt"
    tested.write_text(
        "".join(
            f"{d.metadata['Name']}=={d.version}\n"
            for d in metadata.distributions()
            if d.metadata["Name"] != "vertex-cron"
        )
    )
    run(python, "-m", "pip", "install", "--quiet", "-c", tested, f"{wheel}[local]", cwd=tmp_path)
    # Only the example spec comes from the checkout; everything else from the install.
    workdir = tmp_path / "work"
    shutil.copytree(REPO / "examples", workdir / "examples")

    installed_at = run(python, "-c", "import vertex_cron; print(vertex_cron.__file__)", cwd=workdir).stdout
    demo = run(tmp_path / "venv" / "bin" / "vertex-cron", "local", "demo", cwd=workdir)

    assert "site-packages" in installed_at
    assert "2nd       200   duplicate" in demo.stdout
    assert "Demo passed" in demo.stdout
