"""The whole cloud side of vertex-cron on this machine, started and stopped together.

The deployer runs unchanged against it (see `settings_env()`): the control-plane
emulator plays Vertex AI, Cloud Scheduler, Functions v2 and Run v2; the storage emulator
plays Cloud Storage; every function the deployer uploads is served from exactly the
uploaded zip by functions-framework, byte-compiled and in a virtualenv of the zip's
requirements.txt only, as Cloud Build leaves it (function_env.py); the local scheduler
fires the jobs with ID tokens from the local issuer, which the function verifies against
the emulator's certs URL.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from vertex_cron_local.dispatcher import LocalScheduler, short_name
from vertex_cron_local.emulator import CERTS_PATH, Emulator
from vertex_cron_local.function_runner import FunctionProcess, extract_zip
from vertex_cron_local.provision import LOCAL_DEPLOYER_MEMBER, infra_service_accounts, provision_project
from vertex_cron_local.storage import StorageEmulator
from vertex_cron_local.token_issuer import LocalIssuer

from .function_env import compile_source, prepare

PORTS_FILE = "ports.json"


class LocalStackError(Exception):
    """The local stack could not start; the message says which part and why."""


class LocalStack:
    """Emulators + function processes + scheduler; a context manager that cleans up."""

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        time_scale: float = 1.0,
        project: str = "local-project",
        region: str = "us-central1",
        fire_new_jobs_now: bool = False,
    ) -> None:
        self.project = project
        self.region = region
        self.bucket = f"{project}-vertex-cron"  # infra's default bucket_name
        # The identities infra/service_accounts.tf creates (provisioned in _start).
        self.service_accounts = infra_service_accounts(project)
        self.workload_sa = self.service_accounts["workload"]
        self.function_sa = self.service_accounts["function"]
        self.scheduler_sa = self.service_accounts["scheduler"]
        self.build_sa = self.service_accounts["build"]
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._time_scale = time_scale
        self._fire_new_jobs_now = fire_new_jobs_now
        self._cleanup = contextlib.ExitStack()
        self._functions: dict[str, FunctionProcess] = {}
        self._functions_lock = threading.Lock()
        self.emulator: Emulator
        self.storage: StorageEmulator
        self.issuer: LocalIssuer
        self.scheduler: LocalScheduler

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException as exc:
            # Ctrl-C or a failure half way: stop what did start.
            self.stop()
            if isinstance(exc, Exception):
                raise LocalStackError(f"could not start the local stack: {exc}") from exc
            raise
        return self

    def _start(self) -> None:
        work_dir = self._state_dir or Path(
            self._cleanup.enter_context(tempfile.TemporaryDirectory(prefix="vertex-cron-local-"))
        )
        self._functions_dir = work_dir / "functions"
        self._functions_dir.mkdir(parents=True, exist_ok=True)

        ports = self._remembered_ports(work_dir / PORTS_FILE)
        self.issuer = LocalIssuer()
        self.emulator = Emulator(state_dir=self._state_dir, port=ports.get("emulator", 0))
        self.emulator.oidc_issuer = self.issuer
        self.emulator.on_function_deployed = self._serve_function
        self.emulator.on_function_deleted = self._retire_function
        self.emulator.start()
        self._cleanup.callback(self.emulator.stop)

        # Spec objects must outlive a restart too: Scheduler jobs pin them as gs://B/O#GENERATION.
        storage_dir = self._state_dir / "storage" if self._state_dir is not None else None
        self.storage = StorageEmulator(ports.get("storage", 0), data_dir=storage_dir)
        self.storage.start()
        self._cleanup.callback(self.storage.stop)
        self.storage.create_bucket(self.bucket)
        # The project as `terraform apply` of infra/ leaves it (APIs, identities, roles,
        # grants), so `vertex-cron doctor` passes; again on a restart, which converges.
        provision_project(
            self.emulator,
            self.storage,
            project=self.project,
            region=self.region,
            bucket=self.bucket,
            service_accounts=self.service_accounts,
            deployer_member=LOCAL_DEPLOYER_MEMBER,
        )
        (work_dir / PORTS_FILE).write_text(
            json.dumps({"emulator": self.emulator.port, "storage": urlsplit(self.storage.url).port})
        )

        self._cleanup.callback(self._stop_functions)
        self._relaunch_persisted_functions()

        self.scheduler = LocalScheduler(
            self.emulator, self.issuer, time_scale=self._time_scale, fire_new_jobs_now=self._fire_new_jobs_now
        )
        self.emulator.on_scheduler_run = lambda job: self.scheduler.fire_now(job["name"])
        self.scheduler.start()
        self._cleanup.callback(self.scheduler.stop)

    @staticmethod
    def _remembered_ports(path: Path) -> dict[str, int]:
        """A restart with the same state_dir reuses the ports, so the `export` lines a
        second terminal pasted stay valid."""
        return json.loads(path.read_text()) if path.exists() else {}

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe to call twice."""
        self._cleanup.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what a deployer needs ---------------------------------------------------------

    def settings_env(self) -> dict[str, str]:
        """The environment under which `vertex-cron ...` targets this stack."""
        return {
            "VERTEX_CRON_EMULATOR_HOST": self.emulator.url,
            "STORAGE_EMULATOR_HOST": self.storage.url,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "VERTEX_CRON_REGION": self.region,
            "VERTEX_CRON_BUCKET": self.bucket,
            "VERTEX_CRON_WORKLOAD_SA": self.workload_sa,
            "VERTEX_CRON_FUNCTION_SA": self.function_sa,
            "VERTEX_CRON_SCHEDULER_SA": self.scheduler_sa,
            "VERTEX_CRON_BUILD_SA": self.build_sa,
        }

    # -- functions ----------------------------------------------------------------------

    def _serve_function(self, function: dict[str, Any], source_zip: bytes) -> str:
        """on_function_deployed: serve exactly the uploaded zip; a redeploy keeps the URL."""
        with self._functions_lock:
            previous = self._functions.pop(function["name"], None)
            if previous is not None:
                previous.stop()
            return self._launch(function, source_zip, previous.port if previous is not None else None).url

    def _retire_function(self, function: dict[str, Any]) -> None:
        """on_function_deleted: a deleted function stops serving at once, as on Cloud Run,
        and its extracted source does not linger in the state directory."""
        with self._functions_lock:
            process = self._functions.pop(function["name"], None)
            if process is not None:
                process.stop()
            shutil.rmtree(self._source_dir(function), ignore_errors=True)

    def _launch(self, function: dict[str, Any], source_zip: bytes, port: int | None) -> FunctionProcess:
        source_dir = self._source_dir(function)
        shutil.rmtree(source_dir, ignore_errors=True)  # no file of an older deploy survives
        extract_zip(source_zip, source_dir)
        # The build: the zip's own requirements in a virtualenv of their own (made once per
        # requirements.txt, then cached), its source byte-compiled.
        environment = prepare(source_dir / "requirements.txt")
        compile_source(source_dir, environment)
        env = dict(function.get("serviceConfig", {}).get("environmentVariables", {}))
        env.update(
            VERTEX_CRON_EMULATOR_HOST=self.emulator.url,
            STORAGE_EMULATOR_HOST=self.storage.url,
            VERTEX_CRON_OIDC_CERTS_URL=self.emulator.url + CERTS_PATH,
        )
        process = FunctionProcess(source_dir, env, port=port, environment=environment)
        self._functions[function["name"]] = process
        process.start()
        return process

    def _source_dir(self, function: dict[str, Any]) -> Path:
        return self._functions_dir / short_name(function["name"])

    def _relaunch_persisted_functions(self) -> None:
        """With a reused state_dir, functions come back on their old ports, so the URLs in
        the persisted Scheduler jobs still reach them."""
        with self._functions_lock:
            for function in self.emulator.functions():
                if function.get("state") == "ACTIVE" and function.get("url"):
                    port = urlsplit(function["url"]).port
                    self._launch(function, self.emulator.function_source(function["name"]), port)

    def _stop_functions(self) -> None:
        with self._functions_lock:
            while self._functions:
                _, process = self._functions.popitem()
                process.stop()
