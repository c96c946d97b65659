"""A fleet against the emulators, counted in the emulator's call log: what an unchanged
re-apply, `list` and `status` cost must not grow with the number of schedules (one listing
per API, paged), and an unchanged re-apply writes nothing."""

from __future__ import annotations

from collections import Counter

import pytest
from vertex_cron import api
from vertex_cron.models import ScheduleInput

REGIONS = {2: "europe-west1", 12: "us-central1"}  # one fleet size per region of one emulator


@pytest.fixture
def fleet_settings(make_settings, emulator, storage_emulator, spec_bucket):
    def settings(region):
        return make_settings(
            region=region,
            bucket=spec_bucket,
            emulator_host=emulator.url,
            storage_emulator_host=storage_emulator.url,
            poll_seconds=0.02,
        )

    return settings


def _fleet(spec, size):
    return [ScheduleInput(f"s{i:03d}", spec, f"{i % 60} 3 * * *", parameters={"run_date": "x"}) for i in range(size)]


def _calls(emulator, storage_emulator, bucket, act):
    """What `act` asked of each API: (method, what) -> count, resource names left out. The
    bucket's own metadata is left out too: google-cloud-storage reads it once per client, in a
    background thread, whose request may land after `act` returns."""
    emulator.clear_calls()
    storage_emulator.calls.clear()
    act()
    counted: Counter[tuple[str, str]] = Counter()
    for method, path, _status in emulator.calls:
        counted[(method, _kind(path))] += 1
    for method, path in storage_emulator.calls:
        if f"/b/{bucket}/o" in path:  # not the bucket's own metadata: see below
            counted[(method, "storage list" if path.endswith("/o") else "storage object")] += 1
    return counted


def _kind(path):
    for marker in ("/jobs", "/pipelineJobs", "/functions", "/services"):
        if marker in path:
            listing = path.endswith(marker)
            return f"{marker.strip('/')} {'list' if listing else path.rsplit(':', 1)[-1] if ':' in path else 'get'}"
    return path


def test_an_unchanged_reapply_list_and_status_cost_the_same_few_reads_for_2_and_for_12_schedules(
    fleet_settings, emulator, storage_emulator, spec_bucket, example_json
):
    costs = {}
    for size, region in REGIONS.items():
        settings, fleet = fleet_settings(region), _fleet(example_json, size)
        api.apply(settings, fleet)
        acts = {
            "re-apply": lambda settings=settings, fleet=fleet: api.apply(settings, fleet),
            "list": lambda settings=settings: api.list_schedules(settings),
            "status": lambda settings=settings: api.status(settings),
        }
        costs[size] = {name: _calls(emulator, storage_emulator, spec_bucket, act) for name, act in acts.items()}
        assert len(api.list_schedules(settings)) == size

    assert costs[2] == costs[12]
    reapply = costs[12]["re-apply"]
    assert all(method == "GET" for method, _ in reapply)  # zero writes, not even the lease
    assert reapply[("GET", "jobs list")] == 1 and reapply[("GET", "storage list")] == 1
    assert ("GET", "jobs get") not in reapply and ("GET", "storage object") not in reapply  # no read per schedule
    assert costs[12]["list"] == Counter({("GET", "jobs list"): 1})
    assert costs[12]["status"] == Counter({("GET", "jobs list"): 1, ("GET", "pipelineJobs list"): 1})
