"""The PNG beside RESULTS.md: cold start, peak RSS, herd latency, deploy calls."""

from __future__ import annotations

from pathlib import Path

from .run import Results
from .summary import COLD_VS_FLOOR_MAX, subject_figures

COLORS = {"vertex-cron": "#1a73e8", "floor": "#9aa0a6", "sdk": "#e37400"}


def draw(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a CI box
    import matplotlib.pyplot as plt

    figures = subject_figures(results)
    titles = [figure.title for figure in figures]
    colors = [COLORS.get(figure.key, "#5f6368") for figure in figures]
    fig, ((cold, memory), (herd, deploy)) = plt.subplots(2, 2, figsize=(11, 8))

    medians = [f.cold_seconds.median for f in figures]
    errors = [
        [f.cold_seconds.median - f.cold_seconds.low for f in figures],
        [f.cold_seconds.high - f.cold_seconds.median for f in figures],
    ]
    cold.bar(titles, medians, yerr=errors, capsize=6, color=colors)
    floor = next(f for f in figures if f.key == "floor")
    cold.axhline(
        floor.cold_seconds.median * COLD_VS_FLOOR_MAX,
        color="#188038",
        linestyle="--",
        label=f"target: {COLD_VS_FLOOR_MAX}× floor",
    )
    cold.legend(loc="upper left")
    cold.set_title("Cold start to first PipelineJob (median, min–max)")
    cold.set_ylabel("seconds")
    for index, figure in enumerate(figures):
        cold.annotate(
            f"{figure.cold_vs_floor:.2f}× floor",
            (index, figure.cold_seconds.high),
            ha="center",
            xytext=(0, 4),
            textcoords="offset points",
        )

    positions = range(len(figures))
    memory.bar(
        [p - 0.2 for p in positions],
        [f.master_mib.median for f in figures],
        0.4,
        label="gunicorn master",
        color="#bdc1c6",
    )
    memory.bar([p + 0.2 for p in positions], [f.worker_mib.median for f in figures], 0.4, label="worker", color=colors)
    memory.set_xticks(list(positions), titles)
    memory.set_title("Peak RSS (VmHWM, median)")
    memory.set_ylabel("MiB")
    memory.legend()

    assert results.herd is not None
    herd.bar(["p50", "p99"], [results.herd.p50_ms, results.herd.p99_ms], color=COLORS["vertex-cron"])
    herd.set_title(
        f"Herd: {results.herd.schedules} schedules × 2 deliveries, function-side latency\n"
        f"{results.herd.jobs_created} jobs created, {results.herd.errors} errors"
    )
    herd.set_ylabel("ms")

    names = [step.name for step in results.deploy_steps]
    mutating = [step.mutating_calls for step in results.deploy_steps]
    reads = [step.api_calls + step.storage_calls - step.mutating_calls for step in results.deploy_steps]
    deploy.bar(names, reads, label="reads", color="#bdc1c6")
    deploy.bar(names, mutating, bottom=reads, label="mutating", color=COLORS["vertex-cron"])
    for index, step in enumerate(results.deploy_steps):
        deploy.annotate(
            f"{step.seconds:.2f} s",
            (index, reads[index] + mutating[index]),
            ha="center",
            xytext=(0, 4),
            textcoords="offset points",
        )
    deploy.set_title("Deploy: API calls (control plane +50 ms each), wall time")
    deploy.legend()

    fig.suptitle(f"vertex-cron bench, {results.machine.date}, {results.machine.nproc} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
