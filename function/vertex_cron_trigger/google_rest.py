"""THE seam to Google: Vertex AI v1 REST, the Cloud Storage JSON API, Cloud Scheduler v1
(read-only, for the catch-up sweep) and the OIDC certs, over http.client (transport.py; the
client libraries cost 0.7-1.9 s of cold start, `requests` ~57 ms, this nothing the runtime
has not already loaded).

Calls to Google carry an access token of the application default credentials
(access_tokens.py), fetched on first use, once per process, and refreshed once after a 401.
A base URL given by VERTEX_CRON_EMULATOR_HOST / STORAGE_EMULATOR_HOST is called
unauthenticated, unless VERTEX_CRON_EMULATOR_CREDENTIALS=adc asks for the token there too
(the benchmark, so a cold start pays for it as on Cloud Run). The OIDC certs are public.
Every failure leaves this module as an `errors.*` exception (`raise ... from exc`).

Transient (UpstreamUnavailable -> 503, Scheduler retries): HTTP 408, 429, 409 ABORTED and
every 5xx but 501; any transport.HttpFailure while sending or reading (timeouts, resets,
TLS failures, a body that breaks off); a 2xx whose body is not the JSON expected; a token
the metadata server does not give. Permanent (UpstreamRejected -> 500): every other status.
A URL that cannot be sent is a ConfigError: it is built from the environment.
An upload with `ifGenerationMatch` that finds another generation live (412) is ConditionNotMet.
On PipelineJob create, a 409 is a duplicate only when Google's error body says
`"status": "ALREADY_EXISTS"`; any other 409 is transient, so a firing is never lost.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from . import deadline, strict_json
from .access_tokens import AccessTokens, application_default
from .errors import (
    ConditionNotMet,
    ConfigError,
    SpecNotFound,
    TriggerError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from .oidc import signing_keys
from .settings import Settings
from .transport import Connections, HttpFailure, InvalidUrl, Response

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
STORAGE_BASE = "https://storage.googleapis.com"
SCHEDULER_BASE = "https://cloudscheduler.googleapis.com"
SCHEDULER_PAGE_SIZE = 500  # the most jobs.list returns per page (v1 Discovery, pageSize)
# (connect, read) seconds: well inside Scheduler's attempt deadline, so a slow upstream
# becomes a 503 Scheduler retries rather than a cut connection.
VERTEX_TIMEOUT = (5.0, 60.0)
STORAGE_TIMEOUT = (5.0, 20.0)
CERTS_TIMEOUT = (5.0, 10.0)
DEFAULT_CERTS_MAX_AGE = 300.0
MAX_CERTS_MAX_AGE = 24 * 3600.0  # Google rotates its keys every few days
LIST_PAGE_SIZE = 100  # pages of a larger max_concurrent_runs are followed
# What the runs listed are read for (the sweep's candidates and reports, the active count):
# without a readMask every run comes with its whole pipelineSpec and runtimeConfig.
LIST_READ_MASK = "name,state,createTime,endTime,labels,error"
ACTIVE_STATES = ("PIPELINE_STATE_QUEUED", "PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING")
_MAX_AGE = re.compile(r"max-age=([0-9]{1,12})")
_GENERATION = re.compile(r"[0-9]{1,19}")
_TRANSIENT_4XX = frozenset({408, 429})
_NOT_TRANSIENT_5XX = frozenset({501})  # UNIMPLEMENTED: retrying cannot help
# Vertex AI refuses a PipelineJob whose serviceAccount the caller may not act as with 400
# INVALID_ARGUMENT "You do not have permission to act as service_account: SA. (or it may not
# exist)." (python-aiplatform#1073); IAM's own shape is a 403 naming iam.serviceAccounts.actAs.
_ACT_AS_DENIED = re.compile(r"permission to act as|actAs")
# Whose permissions the errors name, unless the caller says otherwise (the Luigi task does).
FUNCTION_CALLER = "the function's service account"


class GoogleRest:
    """`caller` names the identity behind the calls in permission errors, so the fix they
    suggest grants the role to the right account."""

    def __init__(self, settings: Settings, *, caller: str = FUNCTION_CALLER) -> None:
        self._settings = settings
        self._caller = caller
        self._lock = threading.Lock()
        self._connections = Connections()
        self._tokens: AccessTokens | None = None  # built on the first authenticated call
        self.vertex_base = settings.vertex_emulator or f"https://{settings.region}-aiplatform.googleapis.com"
        self.storage_base = settings.storage_emulator or STORAGE_BASE
        # The control-plane emulator serves Scheduler beside Vertex AI, as for the deployer.
        self.scheduler_base = settings.vertex_emulator or SCHEDULER_BASE

    # -- Vertex AI -------------------------------------------------------------------

    def create_pipeline_job(self, job_id: str, job: Mapping[str, Any]) -> bool:
        """True when created, False when it already existed (ALREADY_EXISTS is success)."""
        url = f"{self.vertex_base}/v1/{self._settings.parent}/pipelineJobs"
        response = self._call("vertex", "POST", url, params={"pipelineJobId": job_id}, json=job, timeout=VERTEX_TIMEOUT)
        action = "creating PipelineJob " + job_id
        if response.status_code == 409:
            status, message = _google_error(response)
            if status == "ALREADY_EXISTS":
                return False
            # ABORTED (a concurrent change), or a 409 that does not prove the job exists:
            # answering "duplicate" would lose the firing; a retry learns the truth.
            raise UpstreamUnavailable(f"{action}: HTTP 409 {status or '(no Google status)'}: {message}")
        self._raise_for_vertex(response, action)
        return True

    def get_pipeline_job(self, name: str) -> dict[str, Any] | None:
        """The PipelineJob `projects/P/locations/L/pipelineJobs/ID`, or None when it does not exist."""
        response = self._call("vertex", "GET", f"{self.vertex_base}/v1/{name}", timeout=VERTEX_TIMEOUT)
        if response.status_code == 404:
            return None
        self._raise_for_vertex(response, "reading PipelineJob " + name)
        return _json_object(response, "reading PipelineJob " + name)

    def cancel_pipeline_job(self, name: str) -> None:
        """Ask Vertex AI to cancel; the job passes through CANCELLING to CANCELLED."""
        response = self._call("vertex", "POST", f"{self.vertex_base}/v1/{name}:cancel", json={}, timeout=VERTEX_TIMEOUT)
        self._raise_for_vertex(response, "cancelling PipelineJob " + name)

    def count_active_runs(self, schedule: str, *, excluding: str, limit: int) -> int:
        """Queued/pending/running jobs of `schedule` other than `excluding`, counted up to `limit`."""
        from .pipeline_job import SCHEDULE_LABEL

        states = " OR ".join(f'state="{state}"' for state in ACTIVE_STATES)
        count = 0
        for jobs in self._pipeline_job_pages(
            f'labels.{SCHEDULE_LABEL}="{schedule}" AND ({states})',
            page_size=min(limit + 1, LIST_PAGE_SIZE),
            action=f"listing the runs of schedule {schedule}",
        ):
            count += sum(1 for job in jobs if not str(job.get("name", "")).endswith("/" + excluding))
            if count >= limit:
                break
        return count

    def list_pipeline_jobs(self, filter_: str, *, action: str) -> list[dict[str, Any]]:
        """Every PipelineJob of the region matching the AIP-160 `filter_`, all pages."""
        return [
            job for jobs in self._pipeline_job_pages(filter_, page_size=LIST_PAGE_SIZE, action=action) for job in jobs
        ]

    def newest_pipeline_jobs(self, filter_: str, *, count: int, action: str) -> list[dict[str, Any]]:
        """The `count` most recently created PipelineJobs matching `filter_`, newest first."""
        return next(self._pipeline_job_pages(filter_, page_size=count, action=action, order_by="create_time desc"))

    def _pipeline_job_pages(
        self, filter_: str, *, page_size: int, action: str, order_by: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        params = {"filter": filter_, "pageSize": page_size, "readMask": LIST_READ_MASK}
        if order_by:
            params["orderBy"] = order_by
        url = f"{self.vertex_base}/v1/{self._settings.parent}/pipelineJobs"
        while True:
            response = self._call("vertex", "GET", url, params=params, timeout=VERTEX_TIMEOUT)
            self._raise_for_vertex(response, action)
            page = _json_object(response, action)
            yield _objects(page, "pipelineJobs", action)
            token = _page_token(page, action)
            if not token:
                return
            params["pageToken"] = token

    def _raise_for_vertex(self, response: Response, action: str) -> None:
        if response.ok:
            return
        status, message = _google_error(response)
        if response.status_code in (400, 403) and _ACT_AS_DENIED.search(message):
            raise UpstreamRejected(
                f"{action}: {self._caller} cannot act as {self._settings.workload_sa}: grant it "
                f"roles/iam.serviceAccountUser on that account, and check that it exists (Vertex AI said: {message})"
            )
        if response.status_code == 403:
            raise UpstreamRejected(
                f"{action}: permission denied in {self._settings.parent}: grant {self._caller} "
                f"roles/aiplatform.user (Vertex AI said: {message})"
            )
        _raise_common(action, response.status_code, status, message)

    # -- Cloud Scheduler (read-only: the catch-up sweep) --------------------------------

    def list_scheduler_jobs(self) -> list[dict[str, Any]]:
        """Every Cloud Scheduler job of the region (v1 `jobs.list`, all pages)."""
        url = f"{self.scheduler_base}/v1/{self._settings.parent}/jobs"
        params: dict[str, Any] = {"pageSize": SCHEDULER_PAGE_SIZE}
        action = f"listing the Cloud Scheduler jobs of {self._settings.parent}"
        jobs: list[dict[str, Any]] = []
        while True:
            response = self._call("scheduler", "GET", url, params=params, timeout=VERTEX_TIMEOUT)
            if response.status_code == 403:
                raise UpstreamRejected(
                    f"{action}: permission denied: grant {self._caller} roles/cloudscheduler.viewer "
                    f"(Cloud Scheduler said: {_google_error(response)[1]})"
                )
            if not response.ok:
                _raise_common(action, response.status_code, *_google_error(response))
            page = _json_object(response, action)
            jobs += _objects(page, "jobs", action)
            token = _page_token(page, action)
            if not token:
                return jobs
            params["pageToken"] = token

    # -- Cloud Storage ---------------------------------------------------------------

    def object_generation(self, bucket: str, name: str) -> int:
        response = self._metadata(bucket, name)
        self._raise_for_storage(response, bucket, name, None)
        return _generation(response, f"reading the metadata of gs://{bucket}/{name}")

    def download_object(self, bucket: str, name: str, *, generation: int, max_bytes: int) -> bytes:
        from .errors import BadRequest

        with self._media(bucket, name, generation) as response:
            self._raise_for_storage(response, bucket, name, generation)
            data = self._read(response, max_bytes + 1, f"reading gs://{bucket}/{name}#{generation}")
        if len(data) > max_bytes:
            raise BadRequest(f"gs://{bucket}/{name} is larger than {max_bytes} bytes", field="spec_uri")
        return data

    def upload_object(
        self, bucket: str, name: str, data: bytes, *, content_type: str, if_generation_match: int | None = None
    ) -> int:
        """Write the whole object in one request (atomic in GCS); returns its new generation.
        With `if_generation_match` (0: only if absent) a write that finds another generation
        live raises ConditionNotMet (412 conditionNotMet) and changes nothing."""
        params = {"uploadType": "media", "name": name}
        if if_generation_match is not None:
            params["ifGenerationMatch"] = str(if_generation_match)
        response = self._call(
            "storage",
            "POST",
            f"{self.storage_base}/upload/storage/v1/b/{bucket}/o",
            params=params,
            data=data,
            headers={"Content-Type": content_type},
            timeout=STORAGE_TIMEOUT,
        )
        action = f"writing gs://{bucket}/{name}"
        if response.status_code == 412:
            raise ConditionNotMet(f"{action}: generation {if_generation_match} is no longer the live one")
        self._raise_for_own_object(response, action, "storage.objects.create and storage.objects.delete")
        return _generation(response, action)

    def read_object(self, bucket: str, name: str, *, max_bytes: int) -> tuple[bytes, int] | None:
        """(bytes, generation) of a small object vertex-cron keeps for itself, or None when it
        does not exist: its live generation, then the bytes of exactly that generation, so the
        pair is consistent (the object changing in between is a 503: read again)."""
        generation = self.live_generation(bucket, name)
        if generation == 0:
            return None
        action = f"reading gs://{bucket}/{name}#{generation}"
        with self._media(bucket, name, generation) as response:
            if response.status_code == 404:
                raise UpstreamUnavailable(f"{action}: it changed while being read; retry later")
            self._raise_for_own_object(response, action, "storage.objects.get")
            data = self._read(response, max_bytes + 1, action)
        if len(data) > max_bytes:
            raise UpstreamRejected(f"{action}: larger than {max_bytes} bytes; it is not one vertex-cron wrote")
        return data, generation

    def live_generation(self, bucket: str, name: str) -> int:
        """The object's live generation, 0 when it does not exist (as ifGenerationMatch=0 means)."""
        action = f"reading the metadata of gs://{bucket}/{name}"
        response = self._metadata(bucket, name)
        if response.status_code == 404:
            return 0
        self._raise_for_own_object(response, action, "storage.objects.get")
        return _generation(response, action)

    def _metadata(self, bucket: str, name: str) -> Response:
        """The object's generation (objects.get with `fields`), unchecked."""
        return self._call(
            "storage", "GET", self._object_url(bucket, name), params={"fields": "generation"}, timeout=STORAGE_TIMEOUT
        )

    def _media(self, bucket: str, name: str, generation: int) -> Response:
        """The bytes of exactly that generation, streamed and unchecked; close it."""
        return self._call(
            "storage",
            "GET",
            self._object_url(bucket, name),
            params={"alt": "media", "generation": str(generation)},
            timeout=STORAGE_TIMEOUT,
            stream=True,
        )

    def _object_url(self, bucket: str, name: str) -> str:
        return f"{self.storage_base}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"

    def _raise_for_own_object(self, response: Response, action: str, permissions: str) -> None:
        """Errors on an object vertex-cron keeps for itself (not a spec the user named)."""
        if response.ok:
            return
        status, message = _google_error(response)
        if response.status_code in (401, 403):
            raise UpstreamRejected(
                f"{action}: permission denied: grant {self._caller} {permissions} on that object's prefix "
                f"(Cloud Storage said: {message})"
            )
        _raise_common(action, response.status_code, status, message)

    def _raise_for_storage(self, response: Response, bucket: str, name: str, generation: int | None) -> None:
        if response.ok:
            return
        uri = f"gs://{bucket}/{name}" + (f"#{generation}" if generation is not None else "")
        if response.status_code == 404:
            raise SpecNotFound(f"spec {uri} does not exist (upload it with `vertex-cron deploy`)", field="spec_uri")
        status, message = _google_error(response)
        if response.status_code in (401, 403):
            raise UpstreamRejected(
                f"{self._caller} cannot read {uri}: grant it roles/storage.objectViewer "
                f"on gs://{bucket} (Cloud Storage said: {message})"
            )
        _raise_common(f"reading {uri}", response.status_code, status, message)

    # -- OIDC certs ------------------------------------------------------------------

    def fetch_certs(self) -> tuple[Mapping[str, str], float]:
        """(kid -> PEM certificate or public key, seconds the response may be cached), from
        either of Google's formats (oidc.signing_keys)."""
        url = self._settings.certs_url
        response = self._call("plain", "GET", url, timeout=CERTS_TIMEOUT)
        action = f"fetching OIDC certs from {url}"
        if not response.ok:
            _raise_common(action, response.status_code, *_google_error(response))
        certs = signing_keys(_json_object(response, action), url=url)
        match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        max_age = min(float(match.group(1)), MAX_CERTS_MAX_AGE) if match else DEFAULT_CERTS_MAX_AGE
        return certs, max_age

    # -- plumbing --------------------------------------------------------------------

    def _call(self, api: str, method: str, url: str, *, timeout: tuple[float, float], **kwargs: Any) -> Response:
        path = url.split("?")[0]  # the query may hold a filter or a page token
        where = f"{method} {path}"
        timeout = _within_deadline(timeout, where)
        tokens = self._tokens_for(api)
        try:
            response = self._send(tokens, method, url, timeout=timeout, **kwargs)
            if response.status_code == 401 and tokens is not None:
                # The token expired early or was revoked: refresh it once, as google-auth's
                # AuthorizedSession did.
                response.close()
                tokens.invalidate()
                response = self._send(tokens, method, url, timeout=timeout, **kwargs)
            return response
        except InvalidUrl as exc:
            raise ConfigError(
                f"{method} {path!r:.200}: the URL is invalid ({exc}); check "
                "VERTEX_CRON_PROJECT, VERTEX_CRON_REGION, VERTEX_CRON_OIDC_CERTS_URL and the emulator hosts"
            ) from exc
        except HttpFailure as exc:
            # Timeouts, resets, TLS failures, a body that breaks off: the request may succeed
            # if Scheduler tries again.
            raise UpstreamUnavailable(f"{where} failed ({type(exc).__name__}); retry later") from exc

    def _send(
        self,
        tokens: AccessTokens | None,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Response:
        if tokens is not None:
            headers = {**(headers or {}), "Authorization": tokens.authorization()}
        return self._connections.request(method, url, headers=headers, **kwargs)

    @staticmethod
    def _read(response: Response, limit: int, action: str) -> bytes:
        """At most `limit` bytes of a streamed body. `read1` returns what has arrived (one read
        of the socket), so a body trickling in is stopped at the request's deadline,
        overrunning it by at most one read timeout."""
        chunks, size = [], 0
        try:
            while size < limit:
                left = deadline.remaining()
                if left is not None and left <= 0:
                    raise UpstreamUnavailable(
                        f"{action}: stopped after {size} bytes, {deadline.describe()}; retry later"
                    )
                chunk = response.read1(min(64 * 1024, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except HttpFailure as exc:  # a timeout, a reset, a body cut short
            raise UpstreamUnavailable(f"reading a Cloud Storage download failed ({type(exc).__name__}: {exc})") from exc
        return b"".join(chunks)

    def _tokens_for(self, api: str) -> AccessTokens | None:
        """None for the public certs and an emulator called unauthenticated; else the
        process's one source of tokens, shared by every API."""
        emulated = {
            "vertex": self._settings.vertex_emulator,
            "scheduler": self._settings.vertex_emulator,
            "storage": self._settings.storage_emulator,
        }
        if api == "plain" or (emulated[api] and not self._settings.emulator_credentials):
            return None
        with self._lock:
            if self._tokens is None:
                self._tokens = application_default(self._connections, [CLOUD_PLATFORM_SCOPE])
            return self._tokens


def _raise_common(action: str, http_status: int, google_status: str | None, message: str) -> None:
    error: Callable[[str], TriggerError] = (
        UpstreamUnavailable if is_transient(http_status, google_status) else UpstreamRejected
    )
    raise error(f"{action}: HTTP {http_status}: {message}")


def _within_deadline(timeout: tuple[float, float], action: str) -> tuple[float, float]:
    """`timeout` shrunk to what is left of the request's deadline; a 503 once it has passed."""
    left = deadline.remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise UpstreamUnavailable(f"{action}: not sent, {deadline.describe()}; retry later")
    return min(timeout[0], left), min(timeout[1], left)


def is_transient(http_status: int, google_status: str | None = None) -> bool:
    """Worth a retry: 408, 429, 409 ABORTED and every 5xx but 501 UNIMPLEMENTED."""
    if http_status == 409:
        return google_status == "ABORTED"
    return http_status in _TRANSIENT_4XX or (500 <= http_status <= 599 and http_status not in _NOT_TRANSIENT_5XX)


def _google_error(response: Response) -> tuple[str | None, str]:
    """(`error.status`, `error.message`) of Google's `{"error": {...}}` body; without that
    shape (None, the start of the body). Never raises: the body may break off mid-read."""
    try:
        text = response.text
    except HttpFailure as exc:
        return None, f"(the error body could not be read: {type(exc).__name__})"
    try:
        error = strict_json.loads(text)["error"]
        status, message = error.get("status"), error["message"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None, text[:300]
    return (status if isinstance(status, str) else None), str(message)[:1000]


def _json_object(response: Response, action: str) -> dict[str, Any]:
    """A 2xx body that must be a JSON object; anything else (a proxy's HTML page, a body
    cut short) is treated as an outage, since a retry may well get the real answer."""
    try:
        body = strict_json.loads(response.content)
    except (ValueError, RecursionError, HttpFailure) as exc:
        raise UpstreamUnavailable(f"{action}: the answer is not JSON ({type(exc).__name__})") from exc
    if not isinstance(body, dict):
        raise UpstreamUnavailable(f"{action}: the answer is not a JSON object")
    return body


def _objects(page: Mapping[str, Any], key: str, action: str) -> list[dict[str, Any]]:
    items = page.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UpstreamUnavailable(f"{action}: {key} in the answer is not a list of objects")
    return items


def _page_token(page: Mapping[str, Any], action: str) -> str | None:
    token = page.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise UpstreamUnavailable(f"{action}: nextPageToken in the answer is not a string")
    return token or None


def _generation(response: Response, action: str) -> int:
    generation = _json_object(response, action).get("generation")
    if (
        isinstance(generation, bool)
        or not isinstance(generation, (int, str))
        or not _GENERATION.fullmatch(str(generation))
    ):
        raise UpstreamUnavailable(f"{action}: the answer has no generation number")
    return int(generation)
