"""The local cloud every measurement runs against: the Vertex AI emulator, the Cloud
Storage emulator holding the compiled pipeline, a metadata server giving the functions
their access token as on Cloud Run, and the environment a function gets."""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

import requests
from vertex_cron import spec_file
from vertex_cron.models import SpecObject, spec_prefix
from vertex_cron_local.emulator import Emulator
from vertex_cron_local.metadata_server import MetadataServer
from vertex_cron_local.storage import StorageEmulator
from vertex_cron_local.token_issuer import LocalIssuer
from vertex_cron_trigger.oidc import STRIPPED_SIGNATURE
from vertex_cron_trigger.timefmt import format_rfc3339

REPO = Path(__file__).resolve().parents[1]
# kfp 2's default output format; the deployer uploads it as canonical JSON.
SPEC_FILE = REPO / "examples" / "pipeline.yaml"
PROJECT, REGION = "bench-project", "us-central1"
SPEC_BUCKET = "bench-project-vertex-cron"
WORKLOAD_SA = f"vertex-cron-workload@{PROJECT}.iam.gserviceaccount.com"
SCHEDULER_SA = f"vertex-cron-scheduler@{PROJECT}.iam.gserviceaccount.com"
FUNCTION_SA = f"vertex-cron-function@{PROJECT}.iam.gserviceaccount.com"
# The function's URL as the deployer sets it in VERTEX_CRON_AUDIENCE and the jobs' oidcToken.audience.
AUDIENCE = "https://vertex-cron-trigger-123456789012.us-central1.run.app"
NETGUARD_DIR = Path(__file__).resolve().parent / "netguard"
REQUEST_TIMEOUT = (5.0, 120.0)


class LocalCloud:
    """Started emulators plus the spec, uploaded once as the deployer would (pinned URI)."""

    def __init__(self, *, latency_seconds: float = 0.0) -> None:
        self.vertex = Emulator(latency_seconds=latency_seconds)
        self.storage = StorageEmulator()
        self.issuer = LocalIssuer()
        self.metadata = MetadataServer(project=PROJECT, service_account=FUNCTION_SA)
        # An empty gcloud configuration: no machine's own application default credentials
        # may stand in for the metadata server's token.
        self._gcloud_config = tempfile.TemporaryDirectory(prefix="vertex-cron-bench-gcloud-")
        self.spec_uri = ""
        self._root_buckets: list[str] = []  # handed out by trigger_body, allowed by function_env

    def __enter__(self) -> LocalCloud:
        self.vertex.start()
        self.storage.start()
        self.metadata.start()
        self.storage.create_bucket(SPEC_BUCKET)
        spec_object, _ = spec_file.load(SPEC_FILE, prefix=spec_prefix(PROJECT, REGION))
        self.spec_uri = f"gs://{SPEC_BUCKET}/{spec_object.object_name}#{self._upload(spec_object)}"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.metadata.stop()
        self.storage.stop()
        self.vertex.stop()
        self._gcloud_config.cleanup()

    def _upload(self, spec: SpecObject) -> int:
        response = requests.post(
            f"{self.storage.url}/upload/storage/v1/b/{SPEC_BUCKET}/o",
            params={"uploadType": "media", "name": spec.object_name},
            data=spec.data,
            # Not spec.content_type: gcp-storage-emulator parses a media upload sent as
            # application/json into a dict and fails; the function reads bytes either way.
            headers={"Content-Type": "application/octet-stream"},
            timeout=REQUEST_TIMEOUT,
        )
        response.raise_for_status()
        return int(response.json()["generation"])

    def function_env(self, **extra: str) -> dict[str, str]:
        """The environment the deployer gives the trigger on Cloud Run, pointed at the
        emulators: tokens are checked (VERTEX_CRON_ALLOWED_INVOKERS) and K_SERVICE says the
        platform already verified their signature. Every call to the emulators carries the
        metadata server's access token, fetched on the first call, as every call to Google
        does on Cloud Run (VERTEX_CRON_EMULATOR_CREDENTIALS=adc; the SDK reference uses
        application default credentials anyway). Sources are byte-compiled beforehand, as
        the build does; nothing more is written at start-up."""
        return {
            "PYTHONDONTWRITEBYTECODE": "1",
            "K_SERVICE": "vertex-cron-trigger",
            "VERTEX_CRON_PROJECT": PROJECT,
            "VERTEX_CRON_REGION": REGION,
            "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
            "VERTEX_CRON_SPEC_BUCKET": SPEC_BUCKET,
            "VERTEX_CRON_ALLOWED_INVOKERS": SCHEDULER_SA,
            "VERTEX_CRON_AUDIENCE": AUDIENCE,  # on Cloud Run the function never takes it from the request
            # As the deployer sets it: the buckets of the bodies' pipeline roots (make them first).
            "VERTEX_CRON_PIPELINE_ROOT_BUCKETS": ",".join([SPEC_BUCKET, *self._root_buckets]),
            "VERTEX_CRON_EMULATOR_HOST": self.vertex.url,
            "STORAGE_EMULATOR_HOST": self.storage.url,
            "VERTEX_CRON_EMULATOR_CREDENTIALS": "adc",
            "CLOUDSDK_CONFIG": self._gcloud_config.name,
            **self.metadata.env(),
            **extra,
        }

    def forwarded_token(self) -> str:
        """Cloud Scheduler's ID token for the function (audience AUDIENCE, its URL as the
        deployer knows it), as Cloud Run forwards it: the signature checked by the platform
        and replaced by STRIPPED_SIGNATURE."""
        signed = self.issuer.mint(audience=AUDIENCE, email=SCHEDULER_SA)
        return f"{signed.rsplit('.', 1)[0]}.{STRIPPED_SIGNATURE}"

    def trigger_body(self, schedule: str, *, first_firing: datetime) -> bytes:
        """What Cloud Scheduler posts for a daily schedule deployed an hour before its
        `first_firing`, with the fields the deployer writes (its cron, catch_up_since). The
        pipeline root is a fresh, absent bucket: the SDK reference checks an existing one with
        Resource Manager (a real Google call)."""
        self._root_buckets.append(f"bench-root-{uuid.uuid4().hex[:20]}")
        return json.dumps(
            {
                "schedule": schedule,
                "spec_uri": self.spec_uri,
                "cron": f"{first_firing.minute} {first_firing.hour} * * *",
                "catch_up_since": format_rfc3339(first_firing - timedelta(hours=1)),
                "parameter_values": {"run_date": "{{schedule_time:%Y-%m-%d}}"},
                "pipeline_root": f"gs://{self._root_buckets[-1]}/pipeline-root",
            }
        ).encode()

    def job_names(self, prefix: str) -> list[str]:
        return [job["name"] for job in self.vertex.pipeline_jobs() if job["name"].rsplit("/", 1)[-1].startswith(prefix)]


def fire(url: str, body: bytes, *, token: str, schedule_time: str) -> requests.Response:
    """One delivery, with Cloud Scheduler's headers."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/octet-stream",
        "X-CloudScheduler-ScheduleTime": schedule_time,
    }
    return requests.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT)
