"""The sweep in a daylight-saving change: run in process at a chosen "now" (the sweep takes
it as an argument) against the emulators, with a Paris schedule at 02:30, a time the spring
change skips and the autumn change repeats."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from trigger_wire import body_for, delete, function_env, jobs_of, scheduler_job
from vertex_cron_trigger import watermark
from vertex_cron_trigger.google_rest import GoogleRest
from vertex_cron_trigger.settings import Settings
from vertex_cron_trigger.spec_store import SpecStore
from vertex_cron_trigger.sweep import sweep
from vertex_cron_trigger.timefmt import format_rfc3339

TARGET = "https://trigger.test/"


def _schedule(emulator: Any, name: str, body: dict[str, Any]) -> None:
    scheduler_job(
        emulator,
        TARGET,
        f"vertex-cron-{name}",
        {**body, "schedule": name},
        schedule="30 2 * * *",
        timeZone="Europe/Paris",
    )


def _settings(emulator: Any, storage_emulator: Any, spec_bucket: str) -> Settings:
    return Settings.from_env(function_env(emulator.url, storage_emulator.url, spec_bucket))


def _sweep(emulator: Any, storage_emulator: Any, spec_bucket: str, sweep_time: datetime, now: datetime) -> Any:
    settings = _settings(emulator, storage_emulator, spec_bucket)
    rest = GoogleRest(settings)
    return sweep(config=settings, rest=rest, specs=SpecStore(rest), sweep_time=sweep_time, now=now, targets=(TARGET,))


def test_times_in_a_skipped_or_repeated_hour_are_neither_caught_up_nor_missed(
    emulator, storage_emulator, spec_bucket, spec, capsys
):
    since = datetime(2026, 3, 1, tzinfo=UTC)
    _schedule(emulator, "nightly", body_for(spec, catch_up="604800s", catch_up_since=format_rfc3339(since)))

    # Two sweeps whose week-long catch-up windows hold a change: spring 2026-03-29, autumn 2026-10-25.
    for now in (datetime(2026, 3, 31, 12, 0, tzinfo=UTC), datetime(2026, 10, 27, 12, 0, tzinfo=UTC)):
        _sweep(emulator, storage_emulator, spec_bucket, now, now)

    made = {name.rsplit("-", 2)[-2] for name in jobs_of(emulator)}
    assert {"20260328", "20260330", "20261024", "20261026"} <= made  # 02:30 on ordinary days
    assert "20260329" not in made  # 02:30 did not exist: croniter says 03:00, Scheduler is undocumented
    assert "20261025" not in made  # 02:30 happened twice

    # With a window shorter than Scheduler's give-up span, nothing is caught up and each fire
    # time is called missed by the sweep whose range holds its give-up time: 02:30 CEST on an
    # ordinary day, never the repeated 02:30. The sweeps above
    # reported through 27 October: start the reports afresh, as before any sweep.
    delete(storage_emulator.url, spec_bucket, watermark.object_name(_settings(emulator, storage_emulator, spec_bucket)))
    real_clock = emulator.clock
    emulator.clock = lambda: datetime(2026, 10, 1, tzinfo=UTC).timestamp()  # written before those times
    _schedule(emulator, "plain", body_for(spec, catch_up="60s"))
    emulator.clock = real_clock
    capsys.readouterr()
    for fire_time in (
        datetime(2026, 10, 24, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # the first 02:30 (CEST)
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # the second (CET)
    ):
        sweep_time = fire_time + timedelta(minutes=10)
        _sweep(emulator, storage_emulator, spec_bucket, sweep_time, sweep_time)
    missed = [
        line["logical_time"]
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line.get("outcome") == "missed" and line["schedule"] == "plain"
    ]
    assert missed == ["2026-10-24T00:30:00Z"]
