"""`python -m bench --smoke` keeps working: the structure of its output and the invariants
that do not depend on the machine's speed. Timings are never asserted (shared CI cores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A hang guard, not a speed check: on a fresh machine the run first makes the functions'
# virtualenvs (pip, about 15 s each on an idle machine, far longer on a busy one).
SMOKE_TIMEOUT_SECONDS = 900


def test_the_smoke_benchmark_runs_and_its_invariants_hold(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())

    assert [s["key"] for s in results["subjects"]] == ["vertex-cron", "floor"]  # the SDK reference is skipped
    for subject in results["subjects"]:
        assert subject["cold_seconds"]["n"] == 1 and subject["cold_seconds"]["median"] > 0
        assert subject["worker_mib"]["median"] > 0 and subject["master_mib"]["median"] > 0
    herd = results["herd"]
    assert herd["jobs_created"] == herd["schedules"] == 10 and herd["deliveries"] == 20
    assert herd["errors"] == 0 and herd["outcomes"] == {"created": 10, "duplicate": 10}
    first, noop, added = results["deploy"]
    assert first["function_touched"] and first["mutating_calls"] > 0
    assert noop["mutating_calls"] == 0 and not noop["function_touched"]
    # The new job's create, plus taking and releasing the lease (two Cloud Storage writes).
    assert added["schedules"] == 2 and added["mutating_calls"] == 3 and not added["function_touched"]
    assert results["zip"]["bytes"] > 0
    # The herd under a quota is counted in virtual time (tests/bench/test_quota_herd.py checks its figures).
    assert [h["schedules"] for h in results["quota_herds"]] == [20, 20, 20]
    assert all(h["duplicates"] == 0 and h["runs"] + h["lost"] == 20 for h in results["quota_herds"])
    assert [h["goal_met"] for h in results["quota_herds"]] == [True, True, True]  # a small herd, a 6 h window
    assert results["function_python"]["version"].count(".") == 2
    assert results["network_blocked"] == [] and results["invariant_failures"] == []
    report = (tmp_path / "RESULTS.md").read_text()
    for heading in (
        "## Targets",
        "## 1. Cold start",
        "## 2. Peak RSS",
        "## 3. Herd",
        "## 4. Deploy",
        "## 5. Function source",
        "## 6. Herd under a quota",
        "## Fleet",  # the same run applies a (small) fleet too: RESULTS.md comes from one run
    ):
        assert heading in report
    assert not (tmp_path / "results.png").exists()
    fleet = json.loads((tmp_path / "fleet.json").read_text())
    assert fleet["schedules"] == 3 and fleet["steps"][1]["name"] == "no-op re-apply"
