"""What the reliability tests share: the function as the deployer ships it, its environment,
Cloud Scheduler's request, a front that breaks answers the emulators cannot break, and the
questions a user asks afterwards (which jobs exist, what did the log say)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PROJECT, REGION = "rel-project", "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
WORKLOAD_SA = f"vertex-cron-workload@{PROJECT}.iam.gserviceaccount.com"
INVOKER = f"vertex-cron-scheduler@{PROJECT}.iam.gserviceaccount.com"
FIRING = "2024-05-01T02:00:00Z"
EXAMPLE_ROOT_BUCKET = "vertex-cron-demo-artifacts"  # of the examples' defaultPipelineRoot
SPEC_OBJECT = "specs/nightly.yaml"
TRICKLE_SECONDS = 0.05  # between the bytes of a trickled reply: far below any read timeout


def function_env(emulator: Any, storage_emulator: Any, bucket: str, **overrides: str) -> dict[str, str]:
    """The environment the deployer gives the function, pointed at the emulators."""
    return {
        "VERTEX_CRON_PROJECT": PROJECT,
        "VERTEX_CRON_REGION": REGION,
        "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
        "VERTEX_CRON_SPEC_BUCKET": bucket,
        # The tests' bodies mostly leave pipeline_root out, so runs write to the example's
        # defaultPipelineRoot: allowed here as a deployment with a schedule there would allow it.
        "VERTEX_CRON_PIPELINE_ROOT_BUCKETS": f"{bucket},{EXAMPLE_ROOT_BUCKET}",
        "VERTEX_CRON_EMULATOR_HOST": emulator.url,
        "STORAGE_EMULATOR_HOST": storage_emulator.url,
        "VERTEX_CRON_OIDC_CERTS_URL": emulator.url + "/oauth2/v1/certs",
        **overrides,
    }


def storage_bucket(storage_url: str, bucket: str) -> Any:
    """A bucket of the Cloud Storage emulator, through the real google-cloud-storage client."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": storage_url}
    )
    return client.bucket(bucket)


def upload(storage_url: str, bucket: str, name: str, data: bytes) -> int:
    """Write the object; returns its generation (for a pinned `gs://B/O#GENERATION`)."""
    blob = storage_bucket(storage_url, bucket).blob(name)
    blob.upload_from_string(data)
    return int(blob.generation)


def shipped_function(destination: Path) -> Path:
    """The function source exactly as `vertex-cron deploy` uploads it: the deployer's zip,
    extracted the way the local stack extracts it. Serving this (not function/ itself) makes
    a packaging defect (a module left out of the zip) fail the suite."""
    from vertex_cron import function_source
    from vertex_cron_local.function_runner import extract_zip

    source = extract_zip(function_source.build().zip_bytes, destination)
    assert (source / "main.py").is_file() and (source / "requirements.txt").is_file()
    return source


def body_for(spec_uri: str, **fields: Any) -> dict[str, Any]:
    return {
        "schedule": "nightly",
        "spec_uri": spec_uri,
        "parameter_values": {"run_date": "{{schedule_time:%Y-%m-%d}}"},
        **fields,
    }


def scheduler_headers(*, schedule_time: str | None = FIRING, token: str | None = None) -> dict[str, str]:
    """Cloud Scheduler's request headers (its default content type, the firing, the token)."""
    headers = {"Content-Type": "application/octet-stream"}
    if schedule_time:
        headers["X-CloudScheduler-ScheduleTime"] = schedule_time
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def fire(url: str, body: Mapping[str, Any] | bytes, **header_args: Any) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(url, data=data, headers=scheduler_headers(**header_args), timeout=60)


def job_names(emulator: Any) -> list[str]:
    return sorted(job["name"] for job in emulator.pipeline_jobs())


# -- a front that breaks answers ------------------------------------------------------------


@dataclass
class _Break:
    method: str
    path: re.Pattern[str]
    kind: str  # "answer": reply without forwarding; "cut": forward, then cut the reply mid-body;
    # "trickle": forward, then send the reply's body a byte at a time
    status: int = 0
    payload: Any = None
    times: int = 1


class FaultFront:
    """An HTTP front for an emulator: forwards every request, except that the next request
    matching a rule meets a failure the emulators' fault rules (status, delay, reset) cannot
    express:

    - `answer(method, path, status, payload)`: Google answers with this JSON body and the
      request never reaches the emulator (e.g. a 409 with no Google `error.status`);
    - `cut(method, path)`: the request reaches the emulator (a create lands), then the reply
      is sent as `Transfer-Encoding: chunked`, its one chunk announced at full length, and the
      connection drops halfway through it (requests raises ChunkedEncodingError).
    - `trickle(method, path)`: the request reaches the emulator, then the reply's body comes
      one byte every TRICKLE_SECONDS, never slow enough for a read timeout, until the
      client hangs up.

    `path` is a regular expression searched in the unquoted URL path, as in faults.py.
    """

    def __init__(self, upstream: str) -> None:
        from vertex_cron_local.emulator.background_server import BackgroundHTTPServer

        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._breaks: list[_Break] = []
        self.broken: list[tuple[str, str]] = []  # (method, path) of every request it broke
        self._server = BackgroundHTTPServer(("127.0.0.1", 0), _FrontHandler)
        self._server.front = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> FaultFront:
        self._server.start("fault-front")
        return self

    def stop(self) -> None:
        self._server.stop()

    def answer(self, method: str, path: str, status: int, payload: Any, *, times: int = 1) -> None:
        self._add(_Break(method.upper(), re.compile(path), "answer", status, payload, times))

    def cut(self, method: str, path: str, *, times: int = 1) -> None:
        self._add(_Break(method.upper(), re.compile(path), "cut", times=times))

    def trickle(self, method: str, path: str, *, times: int = 1) -> None:
        self._add(_Break(method.upper(), re.compile(path), "trickle", times=times))

    def _add(self, rule: _Break) -> None:
        with self._lock:
            self._breaks.append(rule)

    def take(self, method: str, path: str) -> _Break | None:
        with self._lock:
            for rule in self._breaks:
                if rule.times > 0 and rule.method == method and rule.path.search(path):
                    rule.times -= 1
                    self.broken.append((method, path))
                    return rule
        return None


_HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "keep-alive"}
_NOT_COPIED_BACK = {
    "content-length",
    "connection",
    "transfer-encoding",
    "content-encoding",
    "date",
    "server",
    "keep-alive",
}


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        front: FaultFront = self.server.front  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rule = front.take(self.command, unquote(urlsplit(self.path).path))
        if rule is not None and rule.kind == "answer":
            self._reply(
                rule.status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(rule.payload).encode()
            )
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = requests.request(
            self.command, front.upstream + self.path, data=body, headers=headers, timeout=60, allow_redirects=False
        )
        copied = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_COPIED_BACK}
        if rule is None:
            self._reply(upstream.status_code, copied, upstream.content)
            return
        if rule.kind == "trickle":
            self._trickle(upstream.status_code, copied, upstream.content)
            return
        self._cut(upstream.status_code, copied, upstream.content)

    def _cut(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        """Announce the whole body as one chunk, send half of it, and hang up."""
        self._head(status, headers, "Transfer-Encoding", "chunked")
        self.wfile.write(b"%x\r\n" % len(content) + content[: len(content) // 2])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _trickle(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        self._head(status, headers, "Content-Length", str(len(content)))
        self.close_connection = True
        try:
            for index in range(len(content)):
                self.wfile.write(content[index : index + 1])
                self.wfile.flush()
                time.sleep(TRICKLE_SECONDS)
        except OSError:  # the client gave up: what a trickle is for
            pass

    def _reply(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        self._head(status, headers, "Content-Length", str(len(content)))
        if self.command != "HEAD":
            self.wfile.write(content)

    def _head(self, status: int, headers: Mapping[str, str], framing: str, framing_value: str) -> None:
        """The status line and headers, with the body's framing header (length or chunked)."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header(framing, framing_value)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any
