"""Derived figures from a run: per-subject summaries, ratios, targets, invariants.
The markdown report, the JSON file and the chart all read these, never the raw run."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from . import fleet
from .deploy import DeployStep
from .quota_herd import DEPLOYERS, QuotaHerd
from .run import Results
from .stats import Summary, summarize

COLD_VS_FLOOR_MAX = 1.15
SPEEDUP_VS_REFERENCE_MIN = 4.0
WORKER_RSS_VS_FLOOR_MAX = 1.25
KIB_PER_MIB = 1024


@dataclass(frozen=True)
class SubjectFigures:
    key: str
    title: str
    cold_seconds: Summary
    listening_seconds: Summary  # the part before the first request could be served
    first_trigger_seconds: Summary  # the rest: from the port accepting to the first 2xx
    master_mib: Summary
    worker_mib: Summary
    cold_vs_floor: float  # median / floor's median
    paired_vs_floor: float  # median of this/floor within each round: robust to a slow phase
    worker_vs_floor: float
    cpu_seconds: Summary  # master + worker CPU until the first 2xx answered
    cpu_vs_floor: float
    samples_seconds: list[float]


@dataclass(frozen=True)
class Target:
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run (a smoke run skips the reference)
    margin: str


def subject_figures(results: Results) -> list[SubjectFigures]:
    floor = _summaries(results, "floor")
    floor_runs = results.cold_of("floor")
    figures = []
    for subject in results.subjects:
        cold, master, worker = _summaries(results, subject.key)
        runs = results.cold_of(subject.key)
        figures.append(
            SubjectFigures(
                subject.key,
                subject.title,
                cold,
                summarize([run.listening_seconds for run in runs]),
                summarize([run.seconds - run.listening_seconds for run in runs]),
                master,
                worker,
                cold.median / floor[0].median,
                statistics.median(run.seconds / base.seconds for run, base in zip(runs, floor_runs, strict=True)),
                worker.median / floor[2].median,
                summarize([run.rss.cpu_seconds for run in runs]),
                statistics.median(run.rss.cpu_seconds for run in runs)
                / statistics.median(run.rss.cpu_seconds for run in floor_runs),
                [run.seconds for run in runs],
            )
        )
    return figures


def _summaries(results: Results, key: str) -> tuple[Summary, Summary, Summary]:
    runs = results.cold_of(key)
    return (
        summarize([run.seconds for run in runs]),
        summarize([run.rss.master_kib / KIB_PER_MIB for run in runs]),
        summarize([run.rss.worker_kib / KIB_PER_MIB for run in runs]),
    )


def targets(results: Results, figures: list[SubjectFigures]) -> list[Target]:
    by_key = {figure.key: figure for figure in figures}
    ours, floor, reference = by_key["vertex-cron"], by_key["floor"], by_key.get("sdk")
    found = [
        # Judged on the worse of the two estimates: on shared cores either can flatter alone.
        _at_most(
            f"cold start ≤ {COLD_VS_FLOOR_MAX}× the floor (median and paired)",
            max(ours.cold_vs_floor, ours.paired_vs_floor),
            COLD_VS_FLOOR_MAX,
            floor.cold_seconds.median * 1000,
            "ms",
        )
    ]
    if reference is None:
        found.append(
            Target(
                f"cold start ≥ {SPEEDUP_VS_REFERENCE_MIN:g}× faster than the SDK reference",
                "not measured",
                None,
                "the smoke run skips the reference",
            )
        )
    else:
        speedup = reference.cold_seconds.median / ours.cold_seconds.median
        allowed_ms = reference.cold_seconds.median / SPEEDUP_VS_REFERENCE_MIN * 1000
        over_ms = ours.cold_seconds.median * 1000 - allowed_ms
        found.append(
            Target(
                f"cold start ≥ {SPEEDUP_VS_REFERENCE_MIN:g}× faster than the SDK reference",
                f"{speedup:.2f}×",
                speedup >= SPEEDUP_VS_REFERENCE_MIN,
                f"{-over_ms:.0f} ms to spare"
                if over_ms <= 0
                else f"missed by {SPEEDUP_VS_REFERENCE_MIN - speedup:.2f}×: needs ≤ {allowed_ms:.0f} ms, is {allowed_ms + over_ms:.0f} ms",
            )
        )
    found.append(
        _at_most(
            f"worker peak RSS ≤ {WORKER_RSS_VS_FLOOR_MAX}× the floor",
            ours.worker_vs_floor,
            WORKER_RSS_VS_FLOOR_MAX,
            floor.worker_mib.median,
            "MiB",
        )
    )
    assert results.herd is not None
    found.append(
        Target(
            "zero duplicate runs (herd)",
            f"{results.herd.jobs_created} jobs for {results.herd.schedules} schedules",
            results.herd.duplicate_runs == 0 and results.herd.jobs_created == results.herd.schedules,
            f"{results.herd.duplicate_runs} duplicates",
        )
    )
    found += quota_herd_targets(results.quota_herds)
    noop = _noop(results)
    found.append(
        Target(
            "no-op redeploy makes 0 mutating calls",
            f"{noop.mutating_calls} mutating calls",
            noop.mutating_calls == 0,
            f"{noop.api_calls} read calls",
        )
    )
    return found


def quota_herd_targets(herds: list[QuotaHerd]) -> list[Target]:
    """Issue 14's goal, judged on the deployer's retry settings (the others are for comparison)."""
    return [
        Target(
            "herd under a quota: none lost, none duplicated, all within the catch-up window",
            f"{herd.runs} runs for {herd.schedules} firings, the last after {(herd.last_run_seconds or 0) / 3600:.2f} h",
            herd.goal_met,
            f"{herd.lost} lost, {herd.duplicates} duplicates, window {herd.catch_up_seconds / 3600:g} h",
        )
        for herd in herds
        if herd.scenario == DEPLOYERS
    ]


def _at_most(goal: str, ratio: float, limit: float, base: float, unit: str) -> Target:
    """A ratio target, with its margin also in the base's unit (ms, MiB)."""
    delta = abs(limit - ratio) * base
    if ratio <= limit:
        return Target(goal, f"{ratio:.2f}×", True, f"{limit - ratio:.2f}× ({delta:.0f} {unit}) to spare")
    return Target(goal, f"{ratio:.2f}×", False, f"missed by {ratio - limit:.2f}× ({delta:.0f} {unit} over)")


def _noop(results: Results) -> DeployStep:
    return next(step for step in results.deploy_steps if step.name == "no-op redeploy")


def invariant_failures(results: Results) -> list[str]:
    """What must hold whatever the machine's speed; a smoke run asserts none."""
    failures = []
    herd = results.herd
    if herd is None or herd.jobs_created != herd.schedules:
        failures.append(f"herd: {herd and herd.jobs_created} jobs for {herd and herd.schedules} schedules")
    if herd is not None and herd.errors:
        failures.append(f"herd: {herd.errors} deliveries failed")
    if _noop(results).mutating_calls:
        failures.append(f"no-op redeploy made {_noop(results).mutating_calls} mutating calls")
    if any(step.function_touched for step in results.deploy_steps[1:]):
        failures.append("a redeploy or a new schedule rebuilt or changed the function")
    for quota_herd in results.quota_herds:
        # Other settings may lose firings (that is what they are measured for); none may duplicate one.
        if quota_herd.duplicates or (quota_herd.scenario == DEPLOYERS and not quota_herd.goal_met):
            failures.append(
                f"herd under a quota ({quota_herd.scenario}): {quota_herd.runs} runs, {quota_herd.lost} lost, "
                f"{quota_herd.duplicates} duplicates for {quota_herd.schedules} firings"
            )
    if results.fleet is not None:
        failures += [f"fleet: {failure}" for failure in fleet.invariant_failures(results.fleet)]
    tokenless = [run.subject for run in results.cold_starts if run.subject != "floor" and run.token_fetches < 1]
    if tokenless:
        failures.append(f"cold starts without the metadata server's token: {sorted(set(tokenless))}")
    if results.network_blocked:
        failures.append(f"{len(results.network_blocked)} attempts to leave 127.0.0.1: {results.network_blocked[:3]}")
    return failures


def as_json(results: Results) -> dict[str, Any]:
    figures = subject_figures(results)
    herd = {k: v for k, v in asdict(results.herd).items() if k != "stderr"} if results.herd else None
    return {
        "machine": asdict(results.machine),
        "config": asdict(results.config),
        "zip": {"bytes": results.zip_bytes, "files": results.zip_files},
        "function_python": {"version": results.function_python, "is_runtime": results.function_python_is_runtime},
        "subjects": [asdict(figure) for figure in figures],
        "import_profiles": [asdict(profile) for profile in results.import_profiles],
        "herd": herd,
        "deploy": [asdict(step) for step in results.deploy_steps],
        "quota_herds": [
            asdict(quota_herd) | {"runs": quota_herd.runs, "goal_met": quota_herd.goal_met}
            for quota_herd in results.quota_herds
        ],
        "targets": [asdict(target) for target in targets(results, figures)],
        "network_blocked": results.network_blocked,
        "invariant_failures": invariant_failures(results),
    }
