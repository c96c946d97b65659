"""THE seam to Google: Vertex AI v1 REST, the Cloud Storage JSON API and the OIDC certs,
over `requests` (the client libraries cost 0.7-1.9 s of cold start; this costs ~nothing).

Sessions are built lazily, once per process, and reused for their connection pools:
an AuthorizedSession with application default credentials, or a plain unauthenticated
Session for a base URL given by VERTEX_CRON_EMULATOR_HOST / STORAGE_EMULATOR_HOST.
Every failure leaves this module as an `errors.*` exception (`raise ... from exc`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .errors import ConfigError, SpecNotFound, TriggerError, UpstreamRejected, UpstreamUnavailable
from .settings import Settings

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
STORAGE_BASE = "https://storage.googleapis.com"
# (connect, read) seconds: well inside Scheduler's attempt deadline, so a slow upstream
# becomes a 503 Scheduler retries rather than a cut connection.
VERTEX_TIMEOUT = (5.0, 60.0)
STORAGE_TIMEOUT = (5.0, 20.0)
CERTS_TIMEOUT = (5.0, 10.0)
DEFAULT_CERTS_MAX_AGE = 300.0
ACTIVE_STATES = ("PIPELINE_STATE_QUEUED", "PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING")
_MAX_AGE = re.compile(r"max-age=(\d+)")
_TRANSIENT = {408, 429, 500, 502, 503, 504}
# Whose permissions the errors name, unless the caller says otherwise (the Luigi task does).
FUNCTION_CALLER = "the function's service account"


class GoogleRest:
    """`caller` names the identity behind the calls in permission errors, so the fix they
    suggest grants the role to the right account."""

    def __init__(self, settings: Settings, *, caller: str = FUNCTION_CALLER) -> None:
        self._settings = settings
        self._caller = caller
        self._lock = threading.Lock()
        self._sessions: dict[str, Any] = {}
        self.vertex_base = settings.vertex_emulator or f"https://{settings.region}-aiplatform.googleapis.com"
        self.storage_base = settings.storage_emulator or STORAGE_BASE

    # -- Vertex AI -------------------------------------------------------------------

    def create_pipeline_job(self, job_id: str, job: Mapping[str, Any]) -> bool:
        """True when created, False when it already existed (ALREADY_EXISTS is success)."""
        url = f"{self.vertex_base}/v1/{self._settings.parent}/pipelineJobs"
        response = self._call(
            "vertex", "POST", url, params={"pipelineJobId": job_id}, json=job, timeout=VERTEX_TIMEOUT
        )
        if response.status_code == 409:
            return False
        self._raise_for_vertex(response, "creating PipelineJob " + job_id)
        return True

    def get_pipeline_job(self, name: str) -> dict[str, Any] | None:
        """The PipelineJob `projects/P/locations/L/pipelineJobs/ID`, or None when it does not exist."""
        response = self._call("vertex", "GET", f"{self.vertex_base}/v1/{name}", timeout=VERTEX_TIMEOUT)
        if response.status_code == 404:
            return None
        self._raise_for_vertex(response, "reading PipelineJob " + name)
        return dict(response.json())

    def cancel_pipeline_job(self, name: str) -> None:
        """Ask Vertex AI to cancel; the job passes through CANCELLING to CANCELLED."""
        response = self._call("vertex", "POST", f"{self.vertex_base}/v1/{name}:cancel", json={}, timeout=VERTEX_TIMEOUT)
        self._raise_for_vertex(response, "cancelling PipelineJob " + name)

    def count_active_runs(self, schedule: str, *, excluding: str, limit: int) -> int:
        """Queued/pending/running jobs of `schedule` other than `excluding`, counted up to `limit`."""
        from .pipeline_job import SCHEDULE_LABEL

        states = " OR ".join(f'state="{state}"' for state in ACTIVE_STATES)
        params = {"filter": f'labels.{SCHEDULE_LABEL}="{schedule}" AND ({states})', "pageSize": limit + 1}
        url = f"{self.vertex_base}/v1/{self._settings.parent}/pipelineJobs"
        count = 0
        while count < limit:
            response = self._call("vertex", "GET", url, params=params, timeout=VERTEX_TIMEOUT)
            self._raise_for_vertex(response, f"listing the runs of schedule {schedule}")
            page = response.json()
            count += sum(1 for job in page.get("pipelineJobs", []) if not job.get("name", "").endswith("/" + excluding))
            if not page.get("nextPageToken"):
                break
            params["pageToken"] = page["nextPageToken"]
        return count

    def _raise_for_vertex(self, response: Any, action: str) -> None:
        if response.ok:
            return
        message = _google_message(response)
        if response.status_code == 403 and "actAs" in message:
            raise UpstreamRejected(
                f"{action}: {self._caller} cannot act as {self._settings.workload_sa}: "
                "grant it roles/iam.serviceAccountUser on that account"
            )
        if response.status_code == 403:
            raise UpstreamRejected(
                f"{action}: permission denied in {self._settings.parent}: grant {self._caller} "
                f"roles/aiplatform.user (Vertex AI said: {message})"
            )
        self._raise_common(response, action, message)

    # -- Cloud Storage ---------------------------------------------------------------

    def object_generation(self, bucket: str, name: str) -> int:
        response = self._call(
            "storage", "GET", self._object_url(bucket, name), params={"fields": "generation"}, timeout=STORAGE_TIMEOUT
        )
        self._raise_for_storage(response, bucket, name, None)
        return int(response.json()["generation"])

    def download_object(self, bucket: str, name: str, *, generation: int, max_bytes: int) -> bytes:
        from .errors import BadRequest

        response = self._call(
            "storage",
            "GET",
            self._object_url(bucket, name),
            params={"alt": "media", "generation": str(generation)},
            timeout=STORAGE_TIMEOUT,
            stream=True,
        )
        with response:
            self._raise_for_storage(response, bucket, name, generation)
            data = self._read(response, max_bytes + 1)
        if len(data) > max_bytes:
            raise BadRequest(f"gs://{bucket}/{name} is larger than {max_bytes} bytes", field="spec_uri")
        return data

    def upload_object(self, bucket: str, name: str, data: bytes, *, content_type: str) -> int:
        """Write the whole object in one request (atomic in GCS); returns its new generation."""
        response = self._call(
            "storage",
            "POST",
            f"{self.storage_base}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name},
            data=data,
            headers={"Content-Type": content_type},
            timeout=STORAGE_TIMEOUT,
        )
        if not response.ok:
            self._raise_common(response, f"writing gs://{bucket}/{name}", _google_message(response))
        return int(response.json()["generation"])

    def _object_url(self, bucket: str, name: str) -> str:
        return f"{self.storage_base}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"

    def _raise_for_storage(self, response: Any, bucket: str, name: str, generation: int | None) -> None:
        if response.ok:
            return
        uri = f"gs://{bucket}/{name}" + (f"#{generation}" if generation is not None else "")
        if response.status_code == 404:
            raise SpecNotFound(f"spec {uri} does not exist (upload it with `vertex-cron deploy`)", field="spec_uri")
        if response.status_code in (401, 403):
            raise UpstreamRejected(
                f"{self._caller} cannot read {uri}: grant it roles/storage.objectViewer "
                f"on gs://{bucket} (Cloud Storage said: {_google_message(response)})"
            )
        self._raise_common(response, f"reading {uri}", _google_message(response))

    # -- OIDC certs ------------------------------------------------------------------

    def fetch_certs(self) -> tuple[Mapping[str, str], float]:
        """(kid -> PEM certificate, seconds the response may be cached)."""
        url = self._settings.certs_url
        response = self._call("plain", "GET", url, timeout=CERTS_TIMEOUT)
        if not response.ok:
            self._raise_common(response, f"fetching OIDC certs from {url}", response.text[:200])
        try:
            certs = response.json()
        except ValueError as exc:
            raise UpstreamUnavailable(f"OIDC certs at {url} are not JSON") from exc
        if not isinstance(certs, dict):
            raise UpstreamUnavailable(f"OIDC certs at {url} are not a kid -> certificate mapping")
        match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        return certs, float(match.group(1)) if match else DEFAULT_CERTS_MAX_AGE

    # -- plumbing --------------------------------------------------------------------

    def _call(self, api: str, method: str, url: str, **kwargs: Any) -> Any:
        import requests
        from google.auth import exceptions as auth_exceptions

        try:
            return self._session(api).request(method, url, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise UpstreamUnavailable(f"{method} {url.split('?')[0]} failed ({type(exc).__name__}); retry later") from exc
        except auth_exceptions.RefreshError as exc:
            raise UpstreamUnavailable(f"could not refresh the application default credentials: {exc}") from exc
        except auth_exceptions.TransportError as exc:
            raise UpstreamUnavailable(f"{method} {url.split('?')[0]}: {exc}") from exc

    @staticmethod
    def _read(response: Any, limit: int) -> bytes:
        import requests

        try:
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
            return b"".join(chunks)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(f"reading a Cloud Storage download failed: {exc}") from exc

    def _session(self, api: str) -> Any:
        with self._lock:
            if api not in self._sessions:
                self._sessions[api] = self._build_session(api)
            return self._sessions[api]

    def _build_session(self, api: str) -> Any:
        import requests

        emulated = {"vertex": self._settings.vertex_emulator, "storage": self._settings.storage_emulator}
        if api == "plain" or emulated[api]:
            return requests.Session()
        return _authorized_session()

    @staticmethod
    def _raise_common(response: Any, action: str, message: str) -> None:
        error: Callable[[str], TriggerError] = (
            UpstreamUnavailable if response.status_code in _TRANSIENT else UpstreamRejected
        )
        raise error(f"{action}: HTTP {response.status_code}: {message}")


def _authorized_session() -> Any:
    import google.auth
    from google.auth import exceptions as auth_exceptions
    from google.auth.transport.requests import AuthorizedSession

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ConfigError(f"no application default credentials: {exc}") from exc
    return AuthorizedSession(credentials)


def _google_message(response: Any) -> str:
    """Google's `{"error": {"message": ...}}`, or the start of the body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]
