"""RESULTS.md: machine facts, every table with medians, spreads and ratios, the targets
with their margins, and the chart."""

from __future__ import annotations

from vertex_cron.desired import RUNTIME

from .importprofile import ImportProfile
from .run import Results
from .stats import Summary
from .summary import SubjectFigures, invariant_failures, subject_figures, targets

MET = {True: "met", False: "**missed**", None: "not measured"}


def render(results: Results, *, chart_name: str | None) -> str:
    figures = subject_figures(results)
    sections = [
        _header(results),
        _targets(results, figures),
        _cold_starts(results, figures),
        _memory(figures),
        _import_profiles(results.import_profiles),
        _herd(results),
        _deploy(results),
        _zip(results),
        _quota_herd(results),
        f"## Chart\n\n![cold start, peak RSS, herd latency, deploy calls]({chart_name})\n" if chart_name else "",
        _method(results),
    ]
    return "\n".join(section for section in sections if section)


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _ms(summary: Summary) -> tuple[str, str]:
    return (
        f"{summary.median * 1000:.0f} ms",
        f"{summary.low * 1000:.0f}–{summary.high * 1000:.0f} ms (±{summary.spread / 2:.0%})",
    )


def _header(results: Results) -> str:
    machine = results.machine
    packages = ", ".join(f"{name} {version}" for name, version in machine.packages.items())
    mode = "`make bench`" if results.config.include_reference else "`python -m bench --smoke` (not for comparison)"
    return (
        "# vertex-cron benchmark results\n\n"
        f"{mode}, {machine.date}, commit `{machine.commit}`. Every figure below comes from this "
        "one run, measured side by side; read the ratios, not the absolute times.\n\n"
        + _table(
            ["machine", ""],
            [
                ["cores (nproc)", str(machine.nproc)],
                ["CPU", machine.cpu],
                ["system", machine.system],
                ["Python (bench, deployer)", machine.python],
                ["Python (functions)", _function_python(results)],
                ["load average 1/5/15 min, start → end", f"{machine.load_before} → {machine.load_after}"],
                ["packages", packages],
            ],
        )
    )


def _function_python(results: Results) -> str:
    if results.function_python_is_runtime:
        return f"{results.function_python}, the deployed runtime's ({RUNTIME})"
    return (
        f"{results.function_python}: **not the deployed runtime's** ({RUNTIME}), which this machine lacks; "
        "the ratios still compare like with like"
    )


def _targets(results: Results, figures: list[SubjectFigures]) -> str:
    rows = [[t.goal, t.measured, MET[t.met], t.margin] for t in targets(results, figures)]
    failures = invariant_failures(results)
    checks = "All invariants held" if not failures else "**Invariants failed:** " + "; ".join(failures)
    return (
        "## Targets\n\n"
        + _table(["target", "measured", "", "margin"], rows)
        + f"\n{checks} (exact job count, no failed delivery, no function rebuild on redeploy, "
        f"{len(results.network_blocked)} connections outside 127.0.0.1).\n"
    )


def _cold_starts(results: Results, figures: list[SubjectFigures]) -> str:
    by_key = {figure.key: figure for figure in figures}
    reference = by_key.get("sdk")
    rows = []
    for figure in figures:
        median, spread = _ms(figure.cold_seconds)
        speedup = f"{reference.cold_seconds.median / figure.cold_seconds.median:.2f}×" if reference else "–"
        rows.append(
            [
                figure.title,
                median,
                spread,
                f"{figure.cold_vs_floor:.2f}×",
                f"{figure.paired_vs_floor:.2f}×",
                speedup,
                f"{figure.listening_seconds.median * 1000:.0f} ms",
                f"{figure.first_trigger_seconds.median * 1000:.0f} ms",
                f"{figure.cpu_seconds.median * 1000:.0f} ms",
                f"{figure.cpu_vs_floor:.2f}×",
                str(figure.cold_seconds.n),
            ]
        )
    return (
        "## 1. Cold start to the first created PipelineJob\n\n"
        "From spawning `functions-framework` (from the function's own virtualenv, over its byte-compiled source) "
        "to the first 2xx of a real trigger carrying Cloud Scheduler's token as Cloud Run forwards it (the access "
        "token fetched from the metadata server stand-in, spec read from the Cloud Storage emulator, PipelineJob "
        "created in the Vertex AI emulator, then, for vertex-cron, the schedule's newest runs listed to report "
        "failed ones; the floor answers 200 at once). Each subject fires one schedule once a day, round after round, "
        "so every timed trigger finds the run of the day before, as a firing in production does. "
        f"{results.config.cold_runs} runs each, interleaved, after {results.config.warmup_rounds} discarded warm-up round(s). "
        "Paired × floor is the median of the ratios within each round, which a slow phase on the machine "
        "cannot skew. The last two columns are the medians of the two parts of each run: until the port accepts (main.py imported, gunicorn "
        "up), then the first trigger itself (lazy imports, the access token, the Storage read, the Vertex AI create and list). "
        "CPU is the user + system time the server's processes (gunicorn master and worker) had used when the "
        "first 2xx came back, from /proc (in clock ticks of 10 ms): what other work on a busy machine takes does "
        "not count in it, so it compares the subjects more steadily than wall time; the emulators' work, in the "
        "bench process, is not in it.\n\n"
        + _table(
            [
                "function",
                "median",
                "min–max",
                "× floor",
                "paired × floor",
                "reference ÷ this",
                "until listening",
                "first trigger",
                "CPU",
                "CPU × floor",
                "runs",
            ],
            rows,
        )
    )


def _memory(figures: list[SubjectFigures]) -> str:
    rows = [
        [
            f.title,
            f"{f.master_mib.median:.1f} MiB",
            f"{f.worker_mib.median:.1f} MiB",
            f"{f.worker_mib.low:.1f}–{f.worker_mib.high:.1f} MiB",
            f"{f.worker_vs_floor:.2f}×",
        ]
        for f in figures
    ]
    return (
        "## 2. Peak RSS of the serving processes\n\n"
        "VmHWM from /proc/PID/status right after the first trigger answered (the worker is forked from the "
        "master after main.py is imported, so it starts with the master's pages).\n\n"
        + _table(["function", "gunicorn master", "worker (median)", "worker min–max", "worker × floor"], rows)
    )


def _import_profiles(profiles: list[ImportProfile]) -> str:
    if not profiles:
        return ""
    parts = [
        "## Where the start-up time goes\n\n"
        "`-X importtime` (PYTHONPROFILEIMPORTTIME=1) of one extra, untimed cold start per function, master and "
        "worker together, first trigger included; modules the floor also imports are left out. Self times, "
        "inflated by the profiler. These runs also carry the network guard (see below).\n"
    ]
    for profile in profiles:
        rows = [[f"`{cost.package}`", str(cost.modules), f"{cost.self_ms:.0f} ms"] for cost in profile.top]
        parts.append(
            f"\n**{profile.subject}**: {profile.extra_modules} modules beyond the floor's, {profile.extra_ms:.0f} ms.\n\n"
            + _table(["package", "modules", "self time"], rows)
        )
    return "".join(parts)


def _herd(results: Results) -> str:
    herd = results.herd
    assert herd is not None
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(herd.outcomes.items()))
    return (
        "## 3. Herd: schedules firing in the same second, each delivered twice\n\n"
        f"One warm vertex-cron instance (functions-framework defaults: 1 worker, {results.machine.nproc * 4} threads), "
        f"{herd.deliveries} deliveries from 32 concurrent clients, shuffled so a retry may overtake its first delivery. "
        "Latency is the function's own `duration_ms` log field (it includes the emulators' time on this same machine).\n\n"
        + _table(
            ["schedules", "deliveries", "jobs created", "duplicate runs", "outcomes", "errors", "p50", "p99", "wall"],
            [
                [
                    str(herd.schedules),
                    str(herd.deliveries),
                    str(herd.jobs_created),
                    str(herd.duplicate_runs),
                    outcomes,
                    str(herd.errors),
                    f"{herd.p50_ms:.0f} ms",
                    f"{herd.p99_ms:.0f} ms",
                    f"{herd.wall_seconds:.1f} s",
                ]
            ],
        )
    )


def _deploy(results: Results) -> str:
    rows = [
        [
            step.name,
            str(step.schedules),
            str(step.api_calls),
            str(step.mutating_calls),
            str(step.storage_calls),
            "yes" if step.function_touched else "no",
            f"{step.seconds:.2f} s",
        ]
        for step in results.deploy_steps
    ]
    return (
        "## 4. Deploy\n\n"
        "The real deployer (`vertex_cron.api.apply`) against the emulators, every control-plane call delayed "
        "50 ms; the emulated function build takes 0.3 s (a real Cloud Build takes minutes, once per source change).\n\n"
        + _table(
            [
                "step",
                "schedules",
                "control-plane calls",
                "mutating (all APIs)",
                "storage calls",
                "function written",
                "wall time",
            ],
            rows,
        )
    )


def _zip(results: Results) -> str:
    return (
        "## 5. Function source\n\n"
        f"The zip the deployer uploads: {results.zip_bytes:,} bytes ({results.zip_bytes / 1024:.1f} KiB), "
        f"{results.zip_files} files.\n"
    )


def _quota_herd(results: Results) -> str:
    herds = results.quota_herds
    if not herds:
        return ""
    first = herds[0]
    rows = [
        [
            herd.scenario,
            herd.settings,
            ", ".join(f"{at:g}" for at in herd.retry_times) or "–",
            f"{herd.on_time} / {herd.schedules}",
            str(herd.given_up),
            str(herd.caught_up),
            f"**{herd.lost}**",
            str(herd.duplicates),
            f"{herd.create_requests} ({herd.refused} refused)",
            f"{herd.attempts} + {herd.sweeps}",
            _duration(herd.last_run_seconds),
        ]
        for herd in herds
    ]
    return (
        "## 6. Herd under a quota\n\n"
        f"{first.schedules} daily schedules fire in the same minute while Vertex AI admits {first.quota_per_minute} "
        "`pipelineJobs.create` a minute (any 60 s of the emulator's clock) and refuses the rest with 429 "
        "`RESOURCE_EXHAUSTED`; the function answers those with 503 and Cloud Scheduler retries. Every schedule has "
        f"a {_duration(first.catch_up_seconds)} catch-up window, so the sweep job runs every 10 minutes and creates "
        f"at most {first.sweep_max_runs} runs a sweep (the function's default) for the firings Scheduler gave up on. "
        "Nothing here is timed: a discrete-event simulation of Scheduler (its documented backoff, the jobs as the "
        "deployer writes them) sends every attempt to the real function in virtual time, which decides each answer, "
        "each job id and what each sweep catches up; the first attempts go out together, in a seeded random order. "
        "*Lost*: no run at the end of the catch-up window.\n\n"
        + _table(
            [
                "retry settings",
                "",
                "retries at (s)",
                "runs on time",
                "given up by Scheduler",
                "caught up by the sweep",
                "lost",
                "duplicate runs",
                "create requests",
                "function requests (firings + sweeps)",
                "last run created",
            ],
            rows,
        )
        + "\nScheduler adds no jitter: a herd retries in waves, and a wave gets one quota minute's worth of "
        "runs whatever its size. Attempts that share a minute (a firing and its retry 30 s later) add requests, not "
        "runs; retries more than a minute apart each add a minute's worth. Five retries (Scheduler's most) 75 s "
        "apart make six waves in six minutes and give up after 6¼ minutes; what they leave, the sweep creates "
        "once Scheduler's give-up span has passed, a capped number every 10 minutes, so every run it saves from "
        "the retries is 10 minutes ÷ the cap sooner for the last run. Every refused attempt costs a function "
        "request, a 429 on the quota and an ERROR `failed` log line: more retries trade load on Vertex AI for "
        "runs on time and an earlier end; fewer leave more to the sweep, which may not finish inside the window "
        '(docs/failures.md, "A herd under Vertex AI\'s quota").\n'
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def _method(results: Results) -> str:
    skipped = (
        ""
        if results.config.include_reference
        else (" This smoke run skipped the SDK reference, so its ratios are not comparable.")
    )
    return (
        "## How these were measured\n\n"
        "- Each function runs the way a Cloud Run instance of it starts: the deployer's zip (the floor's and the "
        "reference's sources beside it), extracted, byte-compiled as the Cloud Functions build does "
        "(`python -m compileall -f -q .`, functions-framework-python#242), served from a virtualenv holding only "
        "its own `requirements.txt` (vertex-cron: the hash-pinned file the deployer uploads; the floor: "
        "functions-framework; the reference: functions-framework and google-cloud-aiplatform[pipelines], at uv.lock's "
        "versions) on the deployed runtime's Python where this machine has it (see the machine table). The "
        "environment is the deployer's (`VERTEX_CRON_ALLOWED_INVOKERS` set, `K_SERVICE` set) and every request "
        "carries Cloud Scheduler's ID token with its signature replaced by `SIGNATURE_REMOVED_BY_GOOGLE`, as "
        "Cloud Run forwards it. The virtualenvs are made once and cached (local/function_env.py), "
        "before anything is timed.\n"
        "- Every call to Google pays for an access token on Cloud Run, and so does every cold start here: a "
        "metadata-server stand-in on 127.0.0.1 (local/metadata_server.py) gives it, found through "
        "`GCE_METADATA_HOST` / `GCE_METADATA_IP` as google-auth reads them. vertex-cron fetches it once per "
        "process and sends it to the emulators too (`VERTEX_CRON_EMULATOR_CREDENTIALS=adc`); the SDK reference "
        "finds it through `google.auth.default()` (a ping, then its own fetches). Each run's fetches are counted: "
        "a vertex-cron or SDK cold start without one fails the invariants. `CLOUDSDK_CONFIG` points at an empty "
        "directory, so no credentials of this machine stand in.\n"
        "- One local cloud for all: the project's Vertex AI emulator and gcp-storage-emulator, in the bench "
        "process; each function is a fresh `functions-framework` process (FunctionProcess) with the same "
        "environment and the same Cloud Scheduler-shaped request (the spec as the deployer uploads it: canonical JSON, pinned `#generation`).\n"
        "- The SDK reference imports `google.cloud.aiplatform` at module level, as the recipe does, and calls "
        '`aiplatform.init(api_endpoint=<emulator>, api_transport="rest")` (application default credentials) '
        "then `PipelineJob(...).submit(service_account=...)`. Each request names a fresh, absent pipeline-root "
        "bucket: for an existing one the SDK asks the real Resource Manager who owns it.\n"
        "- No timed process carries the network guard (an audit hook on every socket call would slow it). The "
        "untimed, profiled start of each function does: bench/netguard refuses and counts any connection or DNS "
        "lookup outside 127.0.0.1, and so does the bench process itself (the deployer's calls).\n"
        "- Why earlier runs (up to commit 307593d) read 1.08–1.13× the floor, which flattered vertex-cron: they served every function from the development "
        "virtualenv, where `google-cloud-functions` (a deployer dependency) and functions-framework both install "
        "`google/cloud/functions/`. The client library's `__init__.py` won, so functions-framework's own start-up "
        "(`event_conversion` → `google.cloud.functions.context`) imported the whole functions_v1 client (about "
        "230 ms by issue 16's measurement) into the floor and vertex-cron alike, which pushed every ratio toward 1. They "
        "also compiled each source at start (no build step), checked no token and fetched no access token. "
        "Production installs only `function/requirements.txt`, and so does this bench now. Measured this way the "
        "trigger first read 1.37–1.47× (issue 16): `requests` with urllib3, charset_normalizer and idna (~57 ms "
        "of the first firing) and the trigger's own modules; the function now talks HTTP over http.client, which "
        "the runtime has already loaded, and loads what only some firings need (croniter's rules, template URIs, "
        "google-auth) lazily.\n"
        f"- Reproduce: `make bench` (a full run takes a few minutes, more the first time: the virtualenvs, and the herd under a quota about ten more per retry setting: six simulated hours of sweeps); "
        f"`python -m bench --smoke` is the quick check `make test` runs.{skipped}\n"
    )
