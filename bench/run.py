"""One benchmark run: every measurement, side by side, against one local cloud.

Cold starts are interleaved (A, B, C, A, B, C, ...) after one discarded warm-up round, so
a noisy neighbour on the machine slows every subject alike and the ratios hold. Timed
processes run without the network guard; one extra, untimed start of each subject runs
with it (and with -X importtime) and is the proof that nothing left 127.0.0.1. The herd
under a quota and the fleet come last, each against a cloud of its own (virtual time; calls
delayed like round trips to Google).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from . import coldstart, deploy, fleet, herd, importprofile, quota_herd
from .coldstart import ColdStart
from .deploy import DeployStep
from .fleet import Fleet
from .herd import Herd
from .importprofile import ImportProfile
from .machine import Machine, describe_machine
from .netguard.sitecustomize import MARKER, blocked
from .quota_herd import QuotaHerd
from .subjects import Subject, prepare_subjects
from .world import LocalCloud


@dataclass(frozen=True)
class BenchConfig:
    cold_runs: int
    warmup_rounds: int
    herd_schedules: int
    deploy_schedules: int
    quota_herd_schedules: int  # the herd under a quota (quota_herd.py), in virtual time
    quota_per_minute: int
    quota_catch_up: timedelta  # each schedule's catch-up window there
    fleet_schedules: int  # the deployer applying this many at once (fleet.py)
    fleet_latency_seconds: float  # each control-plane call's delay there
    include_reference: bool
    chart: bool


# 11 interleaved rounds: on 2 shared cores a single start varies by ±50 ms or more.
FULL = BenchConfig(
    cold_runs=11,
    warmup_rounds=1,
    herd_schedules=300,
    deploy_schedules=20,
    quota_herd_schedules=quota_herd.SCHEDULES,
    quota_per_minute=quota_herd.QUOTA_PER_MINUTE,
    quota_catch_up=quota_herd.CATCH_UP,
    fleet_schedules=fleet.SCHEDULES,
    fleet_latency_seconds=fleet.LATENCY_SECONDS,
    include_reference=True,
    chart=True,
)
# `make test` runs this: structure and invariants, not timings. The SDK reference is
# skipped (its ~2-6 s cold start is most of a run) and so is the chart (matplotlib).
SMOKE = BenchConfig(
    cold_runs=1,
    warmup_rounds=0,
    herd_schedules=10,
    deploy_schedules=2,
    quota_herd_schedules=20,
    quota_per_minute=5,
    quota_catch_up=timedelta(hours=2),  # fewer sweeps to run; the small herd needs less than one hour
    fleet_schedules=3,
    fleet_latency_seconds=0.0,
    include_reference=False,
    chart=False,
)


@dataclass
class Results:
    config: BenchConfig
    machine: Machine
    subjects: list[Subject]
    zip_bytes: int
    zip_files: int
    function_python: str  # the subjects' interpreter version
    function_python_is_runtime: bool  # False: the deployed runtime's Python was not found here
    cold_starts: list[ColdStart] = field(default_factory=list)
    import_profiles: list[ImportProfile] = field(default_factory=list)
    herd: Herd | None = None
    deploy_steps: list[DeployStep] = field(default_factory=list)
    quota_herds: list[QuotaHerd] = field(default_factory=list)
    fleet: Fleet | None = None
    network_blocked: list[str] = field(default_factory=list)  # must stay empty

    def cold_of(self, key: str) -> list[ColdStart]:
        return [run for run in self.cold_starts if run.subject == key]


def run(config: BenchConfig, *, say: Callable[[str], None] = print) -> Results:
    with tempfile.TemporaryDirectory(prefix="vertex-cron-bench-") as workdir:
        subjects = prepare_subjects(Path(workdir), include_reference=config.include_reference, say=say)
        environment = subjects.vertex_cron.environment
        results = Results(
            config,
            describe_machine(),
            subjects.all(),
            subjects.zip_bytes,
            subjects.zip_files,
            environment.python_version,
            environment.matches_runtime,
        )
        with LocalCloud() as cloud:
            _cold_starts(config, subjects.all(), cloud, results, say)
            _import_profiles(config, subjects.all(), subjects.floor, cloud, results, say)
            say(f"herd: {config.herd_schedules} schedules x {herd.DELIVERIES_PER_FIRING} deliveries")
            results.herd = herd.run(subjects.vertex_cron, cloud, schedules=config.herd_schedules)
        say(f"deploy: 1 schedule, no-op, then {config.deploy_schedules} schedules")
        results.deploy_steps = deploy.run(schedules=config.deploy_schedules)
    for scenario in quota_herd.scenarios():
        say(f"herd under a quota: {config.quota_herd_schedules} schedules, {scenario.name}")
        results.quota_herds.append(
            quota_herd.run(
                scenario,
                schedules=config.quota_herd_schedules,
                quota_per_minute=config.quota_per_minute,
                catch_up=config.quota_catch_up,
            )
        )
    results.fleet = fleet.run(schedules=config.fleet_schedules, latency_seconds=config.fleet_latency_seconds, say=say)
    results.network_blocked += blocked  # the bench process's own calls (the deployer's)
    results.machine = describe_machine(before=results.machine)
    return results


def _cold_starts(
    config: BenchConfig, subjects: list[Subject], cloud: LocalCloud, results: Results, say: Callable[[str], None]
) -> None:
    rounds = config.warmup_rounds + config.cold_runs
    for round_index in range(rounds):
        warmup = round_index < config.warmup_rounds
        for subject in subjects:
            sample = coldstart.measure(subject, cloud, schedule=subject.key, firing=round_index)
            say(
                f"cold start {'(warm-up) ' if warmup else ''}{subject.key}: {sample.seconds:.3f} s, "
                f"worker {sample.rss.worker_kib / 1024:.1f} MiB"
            )
            if not warmup:
                results.cold_starts.append(sample)


def _import_profiles(
    config: BenchConfig,
    subjects: list[Subject],
    floor: Subject,
    cloud: LocalCloud,
    results: Results,
    say: Callable[[str], None],
) -> None:
    say("import profiles (-X importtime) under the network guard")
    after_the_rounds = config.warmup_rounds + config.cold_runs  # the firing after the timed ones
    profiled = {
        subject.key: coldstart.measure(
            subject,
            cloud,
            schedule=subject.key,
            firing=after_the_rounds,
            guarded=True,
            extra_env=importprofile.PROFILE_ENV,
        )
        for subject in subjects
    }
    for subject in subjects:
        _check_network(profiled[subject.key].stderr, results)
        if subject != floor:
            results.import_profiles.append(
                importprofile.compare(subject.key, profiled[subject.key].stderr, profiled[floor.key].stderr)
            )


def _check_network(stderr: str, results: Results) -> None:
    results.network_blocked += [line for line in stderr.splitlines() if line.startswith(MARKER)]
