"""Luigi integration (`pip install 'vertex-cron[luigi]'`): Luigi says when, Vertex AI says how.

`VertexPipelineTask` submits a compiled KFP pipeline as a Vertex AI PipelineJob through the
trigger function's own code (spec loading, parameter typing, labels, the seam to Google),
waits for it, and records the finished run as JSON in its output target.

Identity of a run. The job id is derived from the Luigi task id (`keyed_job_id`: a readable
prefix plus a hash), so a worker that dies and a Luigi retry of a task whose run is still
queued or running attach to that run instead of starting another. A run that has ended, or
is being cancelled, is never attached to: Luigi runs a task only when its output is missing,
so a run that SUCCEEDED but whose record is gone (deleted to recompute, as Luigi users do)
gets a new run, and so does one that FAILED or was CANCELLED. The new run takes the next id
of the same deterministic sequence (`ID`, `ID-2`, `ID-3`, ...), so concurrent workers still
agree on one run. The lookup and the create are retried on transient errors (429, 5xx,
timeouts) with the same id, so a create whose answer was lost is attached to, not repeated.

Interruption. Ctrl-C (KeyboardInterrupt) or SIGTERM (Luigi's worker timeout, a stopped
container) while waiting cancels the PipelineJob before the task stops; so does the death of
the Luigi worker process that forked this task (`--workers N`), so an orphaned task process
never goes on polling or writes a record nobody will read.

Errors: VertexCronError -> VertexPipelineError (could not submit or wait; the reason names
the setting, spec, parameter or upstream failure) -> PipelineRunFailed (the run ended
FAILED/CANCELLED; carries the job's error) and PipelineInterrupted (SIGTERM while waiting).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import luigi
from luigi.freezing import recursively_unfreeze
from vertex_cron_trigger.errors import SpecNotFound, TriggerError, UpstreamUnavailable
from vertex_cron_trigger.google_rest import GoogleRest
from vertex_cron_trigger.parameters import coerce_parameters
from vertex_cron_trigger.pipeline_job import LUIGI_TASK_LABEL, keyed_job_id, label_value, pipeline_job_body
from vertex_cron_trigger.placeholders import has_placeholders
from vertex_cron_trigger.settings import Settings
from vertex_cron_trigger.spec import PipelineSpec, parse_spec
from vertex_cron_trigger.spec_store import SpecStore
from vertex_cron_trigger.spec_uri import parse_spec_uri

from . import config
from .errors import VertexCronError

# Luigi configures this logger for its command line; its own contrib modules log here too.
logger = logging.getLogger("luigi-interface")
_T = TypeVar("_T")

SUCCEEDED = "PIPELINE_STATE_SUCCEEDED"
ENDED_UNSUCCESSFULLY = frozenset({"PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"})
TERMINAL_STATES = ENDED_UNSUCCESSFULLY | {SUCCEEDED}
# A run in these states is not the task's run any more: a new attempt submits the next id.
# CANCELLING means an earlier attempt was interrupted and asked to stop it; it may still end
# SUCCEEDED, FAILED or CANCELLED (PipelineState in the aiplatform v1 protos), and a task that
# followed it would most likely fail, so the attempt starts the next run instead.
NOT_ATTACHABLE = TERMINAL_STATES | {"PIPELINE_STATE_CANCELLING"}
_TASK_DONE_STATES = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELLED", "NOT_TRIGGERED"})
# Each attempt of a task whose output is missing may take the next id; past this, someone must look.
MAX_RUNS_PER_TASK = 100
# Submission (the lookup and the create) is retried this often on a transient error, waiting
# the task's poll delays in between; the same job id each time, so a lost answer is harmless.
SUBMIT_ATTEMPTS = 5
MAX_RECORD_BYTES = 1024 * 1024
# Who the runtime's permission errors tell users to grant roles to: the task runs with
# the worker's application default credentials, not the function's service account.
CALLER = "the account of your credentials"
CONSOLE_URL = "https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/{id}?project={project}"


class VertexPipelineError(VertexCronError):
    """The task could not submit its PipelineJob or follow it."""


class PipelineRunFailed(VertexPipelineError):
    """The PipelineJob ended FAILED or CANCELLED; the message is the job's error."""

    def __init__(self, job: Mapping[str, Any]) -> None:
        error = (job.get("error") or {}).get("message") or "no error message"
        state = str(job.get("state", "")).removeprefix("PIPELINE_STATE_")
        super().__init__(f"PipelineJob {job.get('name')} ended {state}: {error}")
        self.job = dict(job)


class PipelineInterrupted(VertexPipelineError):
    """SIGTERM arrived while waiting (the PipelineJob has been asked to cancel)."""


class VertexPipelineTask(luigi.Task):
    """Run a compiled KFP pipeline on Vertex AI and wait for it (see the module docstring).

    Subclass it and override `pipeline_parameters()` to compute values from your own
    Luigi parameters, or pass `parameter_values` directly.
    """

    spec = luigi.Parameter(
        description="compiled KFP pipeline (JSON or YAML): a local path or gs://BUCKET/OBJECT[#GENERATION]"
    )
    parameter_values: luigi.DictParameter = luigi.DictParameter(
        default={}, description="pipeline parameters, typed by the spec"
    )
    pipeline_root = luigi.OptionalParameter(default=None, description="gs:// output directory; default: the spec's")
    enable_caching = luigi.OptionalBoolParameter(default=None, description="override KFP step caching for every step")
    output_uri = luigi.OptionalParameter(
        default=None,
        significant=False,
        description="where the run record (JSON) goes: a local path or gs://; default PIPELINE_ROOT/vertex-cron-luigi/JOB_ID.json",
    )
    project = luigi.OptionalParameter(
        default=None,
        significant=False,
        description="default: VERTEX_CRON_PROJECT, GOOGLE_CLOUD_PROJECT, vertex-cron.toml",
    )
    region = luigi.OptionalParameter(
        default=None, significant=False, description="default: VERTEX_CRON_REGION, vertex-cron.toml"
    )
    workload_sa = luigi.OptionalParameter(
        default=None,
        significant=False,
        description="the run's service account; default: VERTEX_CRON_WORKLOAD_SA, vertex-cron.toml",
    )
    poll_initial_seconds = luigi.FloatParameter(default=5.0, significant=False, description="first wait between polls")
    poll_max_seconds = luigi.FloatParameter(default=60.0, significant=False, description="longest wait between polls")
    poll_backoff = luigi.FloatParameter(
        default=1.5, significant=False, description="each wait is this times the last, up to the longest"
    )

    def pipeline_parameters(self) -> Mapping[str, Any]:
        """The run's parameter values; override to derive them from other parameters."""
        return recursively_unfreeze(self.parameter_values)

    @property
    def job_id(self) -> str:
        """The first run's id; later runs (after a failure) append -2, -3, ..."""
        return keyed_job_id(self.task_id)

    def output(self) -> GcsTarget | luigi.LocalTarget:
        uri = self._record_uri()
        if not uri:
            raise VertexPipelineError(
                f"{self.task_id}: set output_uri or pipeline_root (where the run record goes), or override output()"
            )
        return GcsTarget(uri, lambda: self._rest) if uri.startswith("gs://") else luigi.LocalTarget(uri)

    def complete(self) -> bool:
        """An output that cannot be named (no output_uri or pipeline_root, a bad gs:// URI) is
        not complete, so Luigi runs the task and run() fails it with the reason: a task failure,
        which `--retcode-task-failed` sees (an error in complete() would only be a scheduling
        error, exit code 0 by default)."""
        try:
            return bool(super().complete())
        except VertexPipelineError:
            return False

    def on_failure(self, exception: BaseException) -> str:
        """What Luigi reports for a failed task: our errors are complete one-line reasons."""
        if isinstance(exception, VertexCronError):
            return f"{exception.reason}\n{exception.details}".strip()
        return str(super().on_failure(exception))

    def run(self) -> None:
        self.output()  # refuses an output it cannot name, before any job exists
        try:
            spec = self._load_spec()
            body = self._job_body(spec)
            name = self._submit_or_attach(body)
            try:
                with _sigterm_raises():
                    job = self._wait(name, spec)
            except (KeyboardInterrupt, PipelineInterrupted):
                self._cancel(name)
                raise
            if job["state"] != SUCCEEDED:
                raise PipelineRunFailed(job)
            record = {key: job.get(key) for key in ("name", "state", "createTime", "startTime", "endTime")}
            with self.output().open("w") as out:
                json.dump(record, out, indent=2)
        except TriggerError as exc:
            # The message is the whole story; the chain would only repeat it (a parameter error
            # came under the runtime's own ValueError/JSONDecodeError tracebacks).
            raise VertexPipelineError(exc.message) from None

    def _record_uri(self) -> str | None:
        if self.output_uri:
            return str(self.output_uri)
        if self.pipeline_root:
            return f"{self.pipeline_root.rstrip('/')}/vertex-cron-luigi/{self.job_id}.json"
        return None

    # -- submission ------------------------------------------------------------------

    @cached_property
    def _settings(self) -> Settings:
        try:
            resolved = config.resolve(
                {"project": self.project, "region": self.region, "workload_sa": self.workload_sa},
                os.environ,
                config.load_file_values(None, cwd=Path.cwd()),
            )
            where, workload_sa = resolved.project_region(), resolved.workload_identity()
        except VertexCronError as exc:
            raise VertexPipelineError(f"{self.task_id}: {exc.reason}", details=exc.details) from exc
        return Settings.for_submitter(os.environ, project=where.project, region=where.region, workload_sa=workload_sa)

    @cached_property
    def _rest(self) -> GoogleRest:
        return GoogleRest(self._settings, caller=CALLER)

    def _load_spec(self) -> PipelineSpec:
        if self.spec.startswith("gs://"):
            return SpecStore(self._rest).load(parse_spec_uri(self.spec))
        try:
            data = Path(self.spec).read_bytes()
        except OSError as exc:
            raise VertexPipelineError(f"cannot read the pipeline spec {self.spec}: {exc.strerror}") from exc
        return parse_spec(data, source=self.spec)

    def _job_body(self, spec: PipelineSpec) -> dict[str, Any]:
        pipeline_root = self.pipeline_root or spec.default_pipeline_root
        if not pipeline_root:
            raise VertexPipelineError(f"{self.task_id}: pipeline_root is required: the spec has no defaultPipelineRoot")
        return pipeline_job_body(
            spec=spec,
            display_name=self.task_id[:128],
            labels={LUIGI_TASK_LABEL: label_value(self.task_family)},
            parameter_values=coerce_parameters(spec, {**spec.preset_values, **self._parameter_values()}),
            pipeline_root=pipeline_root,
            service_account=self._settings.workload_sa,
            enable_caching=self.enable_caching,
        )

    def _parameter_values(self) -> Mapping[str, Any]:
        """`pipeline_parameters()`, refusing `{{...}}`: the function fills placeholders with a
        schedule's firing time, and a Luigi task has no firing; its dates come from its own
        parameters, so a placeholder here would reach the pipeline as literal text."""
        values = self.pipeline_parameters()
        for name, value in values.items():
            if has_placeholders(value):
                raise VertexPipelineError(
                    f"{self.task_id}: parameter_values.{name} is {value!r:.200}: {{{{...}}}} placeholders are for "
                    "schedules (filled with the firing's time); pass the date from a Luigi parameter "
                    "instead (override pipeline_parameters())"
                )
        return values

    def _submit_or_attach(self, body: Mapping[str, Any]) -> str:
        """The resource name of the run this task follows: the first id of its sequence that is
        free (a new run) or queued/running (attached to). ALREADY_EXISTS from a concurrent
        worker is the same run, so it is attached to as well."""
        for attempt in range(1, MAX_RUNS_PER_TASK + 1):
            the_id = self.job_id if attempt == 1 else f"{self.job_id}-{attempt}"
            name = f"{self._settings.parent}/pipelineJobs/{the_id}"
            existing = self._transient_retried(functools.partial(self._rest.get_pipeline_job, name))
            if existing is None:
                created = self._transient_retried(functools.partial(self._rest.create_pipeline_job, the_id, body))
                logger.info("%s PipelineJob %s", "created" if created else "attached to", name)
                return name
            if existing.get("state") not in NOT_ATTACHABLE:
                logger.info("attached to PipelineJob %s (%s)", name, existing.get("state"))
                return name
            logger.info("PipelineJob %s is %s: not this attempt's run", name, existing.get("state"))
        raise VertexPipelineError(
            f"{self.task_id}: already has {MAX_RUNS_PER_TASK} PipelineJobs ({self.job_id} to "
            f"{self.job_id}-{MAX_RUNS_PER_TASK}); not submitting another"
        )

    def _transient_retried(self, call: Callable[[], _T]) -> _T:
        """`call`, again after the poll delays while it fails transiently, SUBMIT_ATTEMPTS times at most."""
        delay = self.poll_initial_seconds
        for _ in range(SUBMIT_ATTEMPTS - 1):
            try:
                return call()
            except UpstreamUnavailable as exc:
                logger.warning("%s; trying again in %.1f s", exc.message, delay)
            time.sleep(delay)
            delay = min(delay * self.poll_backoff, self.poll_max_seconds)
        return call()

    # -- waiting ---------------------------------------------------------------------

    def _wait(self, name: str, spec: PipelineSpec) -> dict[str, Any]:
        delay = self.poll_initial_seconds
        worker = multiprocessing.parent_process()  # the Luigi worker, when it forked this task (--workers N)
        while True:
            if worker is not None and not worker.is_alive():
                raise PipelineInterrupted("the Luigi worker process that started this task has died")
            try:
                job = self._rest.get_pipeline_job(name)
            except UpstreamUnavailable as exc:
                logger.warning("%s; polling again in %.1f s", exc.message, delay)
            else:
                if job is None:
                    raise VertexPipelineError(f"PipelineJob {name} no longer exists (deleted while running?)")
                self._report(job, spec)
                if job.get("state") in TERMINAL_STATES:
                    return job
            if worker is None:
                time.sleep(delay)
            else:  # sleeps `delay`, but wakes at once when the worker dies
                multiprocessing.connection.wait([worker.sentinel], timeout=delay)
            delay = min(delay * self.poll_backoff, self.poll_max_seconds)

    def _report(self, job: Mapping[str, Any], spec: PipelineSpec) -> None:
        state = str(job.get("state", "PIPELINE_STATE_UNSPECIFIED")).removeprefix("PIPELINE_STATE_")
        steps = _steps_done(job, spec)
        the_id = str(job["name"]).rsplit("/", 1)[-1]
        link = CONSOLE_URL.format(region=self._settings.region, id=the_id, project=self._settings.project)
        progress = f", {steps[0]}/{steps[1]} steps done" if steps else ""
        self.set_status_message(f"PipelineJob {the_id}: {state}{progress}\n{link}")  # type: ignore[misc]  # set by the worker at run time
        if state == "SUCCEEDED":
            self.set_progress_percentage(100)  # type: ignore[misc]  # set by the worker at run time
        elif steps:
            self.set_progress_percentage(100 * steps[0] // steps[1])  # type: ignore[misc]  # set by the worker at run time

    def _cancel(self, name: str) -> None:
        try:
            self._rest.cancel_pipeline_job(name)
        except TriggerError as exc:
            logger.error("could not cancel PipelineJob %s: %s", name, exc.message)
            return
        logger.warning("interrupted: asked Vertex AI to cancel PipelineJob %s", name)
        self.set_status_message(f"interrupted: cancelled PipelineJob {name}")  # type: ignore[misc]  # set by the worker at run time


def _steps_done(job: Mapping[str, Any], spec: PipelineSpec) -> tuple[int, int] | None:
    """(finished, all) tasks of the pipeline's root DAG from the job's task details; None
    until Vertex AI reports task details (it does once the DAG starts)."""
    steps = set((spec.pipeline_spec["root"].get("dag") or {}).get("tasks") or {})
    details = (job.get("jobDetail") or {}).get("taskDetails") or []
    if not steps or not details:
        return None
    finished = {d.get("taskName") for d in details if d.get("state") in _TASK_DONE_STATES}
    return len(steps & finished), len(steps)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM becomes PipelineInterrupted while waiting, so the job is cancelled first.
    Signal handlers can only be set from the main thread; elsewhere SIGTERM keeps its effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise PipelineInterrupted("received SIGTERM while waiting for the PipelineJob")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class GcsTarget(luigi.Target):
    """A small object in Cloud Storage, read and written whole over the trigger runtime's
    seam (luigi.contrib.gcs needs google-api-python-client, which vertex-cron does not ship)."""

    def __init__(self, uri: str, rest: Callable[[], GoogleRest]) -> None:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not bucket or not name:
            raise VertexPipelineError(f"{uri} is not gs://BUCKET/OBJECT")
        self.path = uri
        self._bucket, self._name, self._rest = bucket, name, rest

    def exists(self) -> bool:
        try:
            self._rest().object_generation(self._bucket, self._name)
        except SpecNotFound:
            return False
        return True

    def open(self, mode: str = "r") -> io.StringIO:
        if mode == "r":
            rest = self._rest()
            generation = rest.object_generation(self._bucket, self._name)
            data = rest.download_object(self._bucket, self._name, generation=generation, max_bytes=MAX_RECORD_BYTES)
            return io.StringIO(data.decode())
        if mode == "w":
            # Not application/json: gcp-storage-emulator parses such media uploads as JSON
            # and stores the wrong bytes; GCS itself does not care.
            return _UploadOnClose(
                lambda text: self._rest().upload_object(
                    self._bucket, self._name, text.encode(), content_type="text/plain; charset=utf-8"
                )
            )
        raise ValueError(f"mode must be 'r' or 'w', got {mode!r}")


class _UploadOnClose(io.StringIO):
    """Text buffer uploaded when its `with` block ends cleanly (never half-written)."""

    def __init__(self, upload: Callable[[str], Any]) -> None:
        super().__init__()
        self._upload = upload

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self._upload(self.getvalue())
        super().__exit__(exc_type, *rest)
