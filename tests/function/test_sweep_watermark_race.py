"""Two sweeps at once: run in process (the sweep takes its times as arguments) against the
emulators, with a second sweep let in at a chosen point of the first, through the real
Cloud Storage calls of the watermark (gcp-storage-emulator enforces ifGenerationMatch)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from trigger_wire import body_for, function_env, scheduler_job
from vertex_cron_trigger import watermark
from vertex_cron_trigger.errors import UpstreamUnavailable
from vertex_cron_trigger.google_rest import GoogleRest
from vertex_cron_trigger.settings import Settings
from vertex_cron_trigger.spec_store import SpecStore
from vertex_cron_trigger.sweep import SweepReport, sweep

TARGET = "https://trigger.test/"
SWEEP_TIME = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


class _Racing(GoogleRest):
    """GoogleRest that runs `meanwhile` once, just before its first call of `method` (just
    after it, with `after`)."""

    def __init__(self, settings: Settings, method: str, meanwhile: Any, *, after: bool = False) -> None:
        super().__init__(settings)
        self._meanwhile = meanwhile
        original = getattr(self, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            run, self._meanwhile = self._meanwhile, None
            if run and not after:
                run()
            answer = original(*args, **kwargs)
            if run and after:
                run()
            return answer

        setattr(self, method, call)


def _sweep(config: Settings, rest: GoogleRest) -> SweepReport:
    return sweep(
        config=config, rest=rest, specs=SpecStore(rest), sweep_time=SWEEP_TIME, now=SWEEP_TIME, targets=(TARGET,)
    )


def _setup(emulator: Any, storage_emulator: Any, spec_bucket: str, spec: dict[str, Any]) -> Settings:
    """A schedule written an hour before the sweep, with a catch-up window shorter than
    Scheduler's give-up span (so nothing to catch up): two of its fire times (01:50, 01:55)
    gave up inside the sweep's first ten minutes with no run."""
    real_clock = emulator.clock
    emulator.clock = lambda: (SWEEP_TIME - timedelta(hours=1)).timestamp()
    scheduler_job(emulator, TARGET, "vertex-cron-nightly", body_for(spec, catch_up="60s"))
    emulator.clock = real_clock
    return Settings.from_env(function_env(emulator.url, storage_emulator.url, spec_bucket))


def _missed(capsys: Any) -> list[str]:
    lines = map(json.loads, capsys.readouterr().out.splitlines())
    return [line["logical_time"] for line in lines if line.get("outcome") == "missed"]


def test_a_sweep_whose_range_another_sweep_claimed_meanwhile_writes_nothing(
    emulator, storage_emulator, spec_bucket, spec, capsys
):
    config = _setup(emulator, storage_emulator, spec_bucket, spec)
    other: list[SweepReport] = []
    # The other sweep (Scheduler's retry of a slow attempt, or a forced run) runs whole
    # while this one lists the schedule's runs, after it read the watermark.
    racing = _Racing(config, "list_pipeline_jobs", lambda: other.append(_sweep(config, GoogleRest(config))))

    report = _sweep(config, racing)

    assert other[0].reported and not report.reported
    assert report.report_error is None and "concurrent sweep" in (report.report_note or "")
    assert _missed(capsys) == ["2024-05-01T01:50:00Z", "2024-05-01T01:55:00Z"]  # once, by the other
    assert watermark.read(GoogleRest(config), config).reported_through == SWEEP_TIME


def test_a_claim_refused_by_the_precondition_leaves_the_watermark_to_the_sweep_that_won(
    emulator, storage_emulator, spec_bucket, spec, capsys
):
    config = _setup(emulator, storage_emulator, spec_bucket, spec)
    rest = GoogleRest(config)
    earlier = SWEEP_TIME - timedelta(minutes=10)
    # Another sweep moves the watermark between this one's last check and its write.
    racing = _Racing(
        config, "upload_object", lambda: watermark.advance(rest, config, watermark.read(rest, config), earlier)
    )

    report = _sweep(config, racing)

    # Its lines were written before the write (a failure is never hidden; they may be repeated).
    assert report.reported and "may be written twice" in (report.report_note or "")
    assert _missed(capsys) == ["2024-05-01T01:50:00Z", "2024-05-01T01:55:00Z"]
    assert watermark.read(rest, config).reported_through == earlier  # the winner's, not overwritten


def test_a_watermark_replaced_while_it_is_read_is_an_outage_to_retry_not_a_wrong_reading(
    emulator, storage_emulator, spec_bucket, spec
):
    config = _setup(emulator, storage_emulator, spec_bucket, spec)
    rest = GoogleRest(config)
    earlier, later = SWEEP_TIME - timedelta(minutes=20), SWEEP_TIME - timedelta(minutes=10)
    watermark.advance(rest, config, watermark.read(rest, config), earlier)

    def another_sweep_moves_it() -> None:  # between the generation read and that generation's bytes
        watermark.advance(rest, config, watermark.read(rest, config), later)

    racing = _Racing(config, "live_generation", another_sweep_moves_it, after=True)

    with pytest.raises(UpstreamUnavailable, match="changed while being read"):
        watermark.read(racing, config)
    assert watermark.read(rest, config).reported_through == later
