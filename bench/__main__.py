"""`python -m bench` (`make bench`): measure, then write RESULTS.md, results.json and the chart.

    python -m bench                 full run, writes into bench/ (the fleet included)
    python -m bench --smoke         quick structural run into a temp dir (what `make test` runs)
    python -m bench --out DIR       write somewhere else
    python -m bench fleet           only the fleet (bench/fleet.py): rewrites its section of RESULTS.md
                                    and fleet.json (--schedules N, --latency SECONDS, --out DIR)

Exits 1 when an invariant failed (a duplicate run, a failed delivery, a mutating no-op
redeploy, traffic outside 127.0.0.1); missed timing targets are reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import fleet, report
from .netguard import sitecustomize as network_guard
from .run import FULL, SMOKE, run
from .summary import as_json, invariant_failures

BENCH_DIR = Path(__file__).resolve().parent
CHART_NAME = "results.png"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fleet"]:
        return _fleet(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="quick run: 1 cold start each, no SDK reference, no chart")
    parser.add_argument("--out", type=Path, help="output directory (default: bench/, or a temp dir with --smoke)")
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    out = args.out or (Path(tempfile.mkdtemp(prefix="vertex-cron-bench-smoke-")) if args.smoke else BENCH_DIR)
    out.mkdir(parents=True, exist_ok=True)

    network_guard.install()  # the deployer's calls are made from this process
    results = run(config, say=lambda line: print(line, file=sys.stderr, flush=True))

    if config.chart:
        from .chart import draw

        draw(results, out / CHART_NAME)
    results_md = out / "RESULTS.md"
    fleet_section = fleet.render(results.fleet) if results.fleet else ""
    results_md.write_text(
        fleet.with_section(report.render(results, chart_name=CHART_NAME if config.chart else None), fleet_section)
    )
    (out / "results.json").write_text(json.dumps(as_json(results), indent=2, default=str) + "\n")
    if results.fleet:
        _write_fleet_json(out, results.fleet)
    print(f"wrote {out / 'RESULTS.md'}")
    failures = invariant_failures(results)
    for failure in failures:
        print(f"invariant failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _fleet(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fleet", description=fleet.__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=fleet.SCHEDULES, help="how many (default %(default)s)")
    parser.add_argument("--latency", type=float, default=fleet.LATENCY_SECONDS, help="seconds a call (%(default)s)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="where RESULTS.md is (default: bench/)")
    args = parser.parse_args(argv)
    network_guard.install()
    measured = fleet.run(
        schedules=args.schedules,
        latency_seconds=args.latency,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    results_md = args.out / "RESULTS.md"
    results_md.write_text(
        fleet.with_section(results_md.read_text() if results_md.exists() else "", fleet.render(measured))
    )
    _write_fleet_json(args.out, measured)
    print(f"wrote {results_md}")
    failures = fleet.invariant_failures(measured)
    for failure in failures:
        print(f"invariant failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _write_fleet_json(out: Path, measured: fleet.Fleet) -> None:
    (out / "fleet.json").write_text(json.dumps(fleet.as_json(measured), indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
