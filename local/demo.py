"""The `make demo` scenario: one schedule, one firing delivered twice, one PipelineJob; the
firing of the day before, which never reached the function, caught up by the sweep job.

It drives the real deployer API (the code `vertex-cron deploy/history/status/delete` runs)
against a LocalStack, lets the local Cloud Scheduler deliver the same firing twice (Cloud
Scheduler delivers at least once) and then the catch-up sweep job, and checks what a user
would: exactly one PipelineJob per firing, the duplicate recognised as such, the missed
firing created with its own day's parameters, the workload identity on the jobs, parameters
typed per spec.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from vertex_cron import api, config, cronexpr, desired, render
from vertex_cron.errors import VertexCronError
from vertex_cron.models import PipelineRun, ScheduleInput
from vertex_cron_local.dispatcher import Delivery
from vertex_cron_local.stack import LocalStack, LocalStackError
from vertex_cron_trigger.catch_up import SWEEP_CRON
from vertex_cron_trigger.pipeline_job import job_id
from vertex_cron_trigger.timefmt import format_rfc3339

DEMO_SPEC = Path("examples/pipeline.yaml")
SCHEDULE = "nightly-training"
CRON = "0 3 * * *"
TIME_ZONE = "Europe/Paris"
# As the CLI passes them (`--param K=V`): strings, typed by the function against the spec.
PARAMETERS = {"run_date": "{{schedule_time:%Y-%m-%d}}", "sample_rows": "5000"}
CATCH_UP = "2d"
STEPS = 9
# Long-running operations in the emulator finish in well under a second: poll often.
POLL_SECONDS = "0.1"

# The emulator moves a job PENDING -> RUNNING -> SUCCEEDED in about 1.5 s.
RUN_DEADLINE_SECONDS = 30
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

Echo = Callable[[str], None]


class DemoFailed(Exception):
    """An expectation did not hold (or the stack could not run); the message says which."""


def run_demo(echo: Echo, *, spec_path: Path = DEMO_SPEC) -> None:
    if not spec_path.is_file():
        raise DemoFailed(f"{spec_path} not found: run the demo from a vertex-cron checkout")
    echo("vertex-cron local demo: deployer -> Cloud Scheduler -> trigger function -> Vertex AI, all on this machine")
    try:
        with LocalStack() as stack:
            _scenario(echo, stack, spec_path)
    except LocalStackError as exc:
        raise DemoFailed(str(exc)) from exc
    except VertexCronError as exc:
        raise DemoFailed(f"the deployer failed: {exc}") from exc
    echo(
        "\nDemo passed: one firing delivered twice made exactly one PipelineJob, run as the workload identity;"
        " the firing Scheduler never delivered was caught up by the sweep."
    )


def _scenario(echo: Echo, stack: LocalStack, spec_path: Path) -> None:
    settings = config.resolve({}, {**stack.settings_env(), config.POLL_SECONDS_ENV: POLL_SECONDS})
    _step(echo, 1, "Local stack up (emulated Vertex AI, Cloud Scheduler, Functions v2, Run v2; Cloud Storage)")
    _indent(
        echo,
        f"control plane  {stack.emulator.url}\nCloud Storage  {stack.storage.url}\nbucket         gs://{stack.bucket}",
    )

    _step(echo, 2, f"Deploy schedule {SCHEDULE!r} with the deployer API (what `vertex-cron deploy` runs)")
    params = " ".join(f"--param {name}='{value}'" for name, value in PARAMETERS.items())
    _indent(
        echo,
        f"$ vertex-cron deploy {SCHEDULE} --spec {spec_path} --cron '{CRON}' --time-zone {TIME_ZONE} "
        f"--catch-up {CATCH_UP} {params}",
    )
    schedule = ScheduleInput(SCHEDULE, spec_path, CRON, time_zone=TIME_ZONE, parameters=PARAMETERS, catch_up=CATCH_UP)
    plan = api.deploy(settings, schedule)
    _indent(echo, render.plan(plan, "text", applied=True))

    job_name = desired.job_name(stack.project, stack.region, SCHEDULE)
    firing = _latest_firing(datetime.now(UTC))
    local_firing = firing.astimezone(ZoneInfo(TIME_ZONE))
    _step(
        echo,
        3,
        f"Cloud Scheduler delivers the firing of {local_firing:%Y-%m-%d %H:%M} {TIME_ZONE} (delivered now, as a late retry would be)",
    )
    _indent(
        echo,
        f"POST with X-CloudScheduler-ScheduleTime: {format_rfc3339(firing)} and an OIDC token for {stack.scheduler_sa}",
    )
    first = stack.scheduler.deliver(job_name, firing)
    _step(echo, 4, "Cloud Scheduler delivers the SAME firing again (it delivers at least once)")
    second = stack.scheduler.deliver(job_name, firing)
    answers = [_answer(first), _answer(second)]
    _indent(echo, _deliveries_table(answers))

    _step(echo, 5, "The PipelineJobs in (emulated) Vertex AI")
    # The firing's own job: were the demo to run across 03:00 Paris, the local scheduler would add the next one.
    jobs = [job for job in stack.emulator.pipeline_jobs() if job["name"].endswith("/" + job_id(SCHEDULE, firing))]
    for job in jobs:
        _indent(echo, _describe_job(job))

    missed = _latest_firing(firing)  # the day before, in Paris time (24 h or not across a DST change)
    swept = _catch_up(echo, stack, job_name, missed)

    _step(echo, 7, f"$ vertex-cron history {SCHEDULE}   (after the emulated runs have finished)")
    _indent(echo, render.runs(_finished_history(settings), "text"))

    _step(echo, 8, f"$ vertex-cron status {SCHEDULE}   (state, next run, recent firings at a glance)")
    _indent(echo, render.health(api.status(settings, [SCHEDULE]), "text"))

    _step(echo, 9, f"$ vertex-cron delete {SCHEDULE}")
    _indent(echo, render.plan(api.delete(settings, [SCHEDULE]), "text", applied=True))
    remaining = [status.name for status in api.list_schedules(settings)]

    _check(answers, jobs, remaining, stack.workload_sa, local_firing.strftime("%Y-%m-%d"))
    _check_caught_up(swept, stack, missed)


def _catch_up(echo: Echo, stack: LocalStack, job_name: str, missed: datetime) -> dict[str, Any]:
    """The firing the day before never reached the function; the sweep job creates its run."""
    local_missed = missed.astimezone(ZoneInfo(TIME_ZONE))
    _step(
        echo,
        6,
        f"The firing of {local_missed:%Y-%m-%d %H:%M} never reached the function (say it was down, and Scheduler "
        "gave up); the catch-up sweep job creates it",
    )
    # Stand-in for the days the demo does not wait: the schedule is made to look deployed
    # before that firing, as if catch-up had been on since (the deployer writes today's time).
    _set_catch_up_since(stack, job_name, missed)
    sweep_job = desired.sweep_job_name(stack.project, stack.region)
    sweep_time = cronexpr.previous_fire_times(SWEEP_CRON, "Etc/UTC", datetime.now(UTC), 1)[0]
    _indent(echo, f'POST {{"sweep": "catch_up"}} (job {sweep_job.rsplit("/", 1)[-1]}, every 10 minutes)')
    answer = _answer(stack.scheduler.deliver(sweep_job, sweep_time))
    _indent(echo, f"HTTP {answer['status']} {answer.get('outcome')}: {answer.get('message')}")
    for name in answer.get("created_jobs", []):
        _indent(echo, f"  + {name}")
    return answer


def _set_catch_up_since(stack: LocalStack, job_name: str, since: datetime) -> None:
    url = f"{stack.emulator.url}/v1/{job_name}"
    job = requests.get(url, timeout=30).json()
    body = json.loads(base64.b64decode(job["httpTarget"]["body"]))
    body["catch_up_since"] = format_rfc3339(since)
    target = {**job["httpTarget"], "body": base64.b64encode(json.dumps(body).encode()).decode()}
    requests.patch(url, params={"updateMask": "httpTarget"}, json={"httpTarget": target}, timeout=30).raise_for_status()


def _check_caught_up(swept: dict[str, Any], stack: LocalStack, missed: datetime) -> None:
    name = f"projects/{stack.project}/locations/{stack.region}/pipelineJobs/{job_id(SCHEDULE, missed)}"
    if swept["status"] != 200 or swept.get("outcome") != "swept" or swept.get("created_jobs") != [name]:
        raise DemoFailed(f"the sweep should create exactly the missed firing's run {name}; it answered {swept}")
    [job] = [job for job in stack.emulator.pipeline_jobs() if job["name"] == name]
    run_date = missed.astimezone(ZoneInfo(TIME_ZONE)).strftime("%Y-%m-%d")
    if job.get("runtimeConfig", {}).get("parameterValues", {}).get("run_date") != run_date:
        raise DemoFailed(f"the caught-up run should have its own day's run_date {run_date}: {job}")


def _finished_history(settings: config.DeployerSettings) -> list[PipelineRun]:
    """`history` once the run has left PENDING/RUNNING, so the table shows how it ended."""
    deadline = time.monotonic() + RUN_DEADLINE_SECONDS
    while True:
        runs = api.history(settings, SCHEDULE)
        if runs and all(run.state in FINAL_STATES for run in runs):
            return runs
        if time.monotonic() > deadline:
            raise DemoFailed(f"the PipelineJob did not finish within {RUN_DEADLINE_SECONDS} s: {runs}")
        time.sleep(0.2)


def _latest_firing(now: datetime) -> datetime:
    """The schedule's latest firing, already past: the function refuses a schedule time in the
    future (it would let a token holder pre-create later firings' job ids)."""
    return cronexpr.previous_fire_times(CRON, TIME_ZONE, now, 1)[0].astimezone(UTC)


def _answer(delivery: Delivery) -> dict[str, Any]:
    """The function's JSON answer, plus the HTTP status it came with."""
    try:
        body = json.loads(delivery.final.body)
    except ValueError:
        body = {"message": delivery.final.body}
    return {"status": delivery.final.status_code, **body}


def _deliveries_table(answers: list[dict[str, Any]]) -> str:
    rows = [
        (ordinal, str(a["status"]), a.get("outcome", "?"), a.get("message", ""))
        for ordinal, a in zip(("1st", "2nd"), answers, strict=False)
    ]
    return render.table(("DELIVERY", "HTTP", "OUTCOME", "FUNCTION SAYS"), rows)


def _describe_job(job: dict[str, Any]) -> str:
    values = job.get("runtimeConfig", {}).get("parameterValues", {})
    return "\n".join(
        [
            f"id              {job['name'].rsplit('/', 1)[-1]}",
            f"state           {job.get('state')}",
            f"serviceAccount  {job.get('serviceAccount')}",
            "parameterValues " + json.dumps({k: _wire_number(v) for k, v in values.items()}, sort_keys=True),
            "labels          " + json.dumps(job.get("labels", {}), sort_keys=True),
        ]
    )


def _wire_number(value: Any) -> Any:
    """protobuf Values are doubles; on the wire Google writes an integral one as `5000`."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _check(
    answers: list[dict[str, Any]], jobs: list[dict[str, Any]], remaining: list[str], workload_sa: str, run_date: str
) -> None:
    first, second = answers
    if first["status"] != 200 or first.get("outcome") != "created":
        raise DemoFailed(f"the first delivery should create the PipelineJob; the function answered {first}")
    if second["status"] != 200 or not second.get("duplicate"):
        raise DemoFailed(f"the second delivery should be flagged as a duplicate; the function answered {second}")
    if len(jobs) != 1:
        raise DemoFailed(f"expected exactly one PipelineJob, Vertex AI has {len(jobs)}")
    [job] = jobs
    if job.get("serviceAccount") != workload_sa:
        raise DemoFailed(
            f"the PipelineJob runs as {job.get('serviceAccount')!r}, not the workload identity {workload_sa}"
        )
    values = job.get("runtimeConfig", {}).get("parameterValues", {})
    if values.get("run_date") != run_date:
        raise DemoFailed(f"run_date should be the firing's date {run_date}, got {values.get('run_date')!r}")
    if values.get("sample_rows") != 5000 or isinstance(values.get("sample_rows"), str):
        raise DemoFailed(f"sample_rows should be the number 5000, got {values.get('sample_rows')!r}")
    if SCHEDULE in remaining:
        raise DemoFailed(f"the schedule {SCHEDULE!r} is still listed after delete")


def _step(echo: Echo, number: int, title: str) -> None:
    echo(f"\n[{number}/{STEPS}] {title}")


def _indent(echo: Echo, text: str) -> None:
    echo("\n".join(f"    {line}" if line else "" for line in text.splitlines()))
