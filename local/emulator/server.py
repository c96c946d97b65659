"""The strict control-plane REST emulator: HTTP server, routing, call log, faults, state.

One `Emulator` serves every Google control-plane API vertex-cron uses, on one port, with
the real REST paths and JSON (see the service mixins). Control endpoints (never counted
as API calls, never subject to faults or latency):

    GET  /_emulator/calls    -> {"calls": [{"method", "path", "status"}...], "mutating": N,
                                 "violations": [...]}: departures from Google's Discovery
                                 documents (discovery.py); the refused ones were answered 400
    POST /_emulator/reset    -> clears state, call log and faults
    POST /_emulator/faults   -> adds a fault rule (JSON as in faults.py); DELETE clears them.
                                A `lose_answer` rule serves the request, then resets the
                                connection: the change is made but its answer is lost
    GET  /_emulator/faults   -> the rules
    POST /_emulator/pipelineJobs:fail -> {"matching": REGEX, "message", "code"}: runs whose id
                                matches end FAILED with that `error` (vertex.py), e.g. to
                                see the sweep's `run_failed` line in `vertex-cron local`
    GET  /_emulator/health   -> {"ok": true}
    POST /_emulator/token    -> {"token": ...} an ID token from `oidc_issuer` for
                                {"audience", "email"}: what Cloud Scheduler would send, so a
                                hand-made curl can pass the function's token check locally

Counting: `mutating_calls()` counts requests whose method is not GET/HEAD to any path
outside /_emulator/ — Google API calls *and* the function source upload PUT (a write to
Cloud Storage through the signed URL). So a no-op redeploy (no generateUploadUrl, no
upload, no create/patch) counts 0. Requests spoiled by an injected fault are logged and
counted too (they reached "Google").
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .artifactregistry import ArtifactRegistryMixin
from .background_server import BackgroundHTTPServer
from .common import ApiError, deep, message_types, status_name_for_http
from .discovery import Violation, refusal, validator
from .faults import FaultInjector
from .functions import FunctionsMixin
from .iam import IamMixin
from .resourcemanager import ResourceManagerMixin
from .scheduler import SchedulerMixin
from .serviceusage import ServiceUsageMixin
from .vertex import VertexMixin

log = logging.getLogger(__name__)

STATE_FILE = "emulator-state.json"
STATE_VERSION = 1
CERTS_PATH = "/oauth2/v1/certs"  # Google's v1 format: {kid: PEM certificate}
JWKS_PATH = "/oauth2/v3/certs"  # the same keys as a JWK Set (Google's v3 format, its jwks_uri)

# System parameters every Google REST API accepts in the query string.
_SYSTEM_PARAMS = {
    "$alt", "alt", "prettyPrint", "$prettyPrint", "key", "fields", "$fields", "quotaUser",
    "$.xgafv", "access_token", "callback", "$callback", "upload_protocol", "uploadType",
    "oauth_token", "userIp", "$userProject",
}  # fmt: skip

_RESET = object()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    headers: dict[str, str]
    base_url: str


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(payload, indent=None).encode(),
        {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
    )


def _empty_state() -> dict[str, Any]:
    return {
        "pipelineJobs": {},
        "pipelineFailRules": [],
        "schedulerJobs": {},
        "functions": {},
        "operations": {},
        "services": {},
        "policies": {},
        "uploads": {},
        "uploadSlots": {},
        "serviceAccounts": {},
        "roles": {},
        "enabledServices": {},
        "artifactRegistry": {"repositories": {}, "packages": {}, "versions": {}, "tags": {}},
    }


class Emulator(
    VertexMixin,
    SchedulerMixin,
    FunctionsMixin,
    IamMixin,
    ResourceManagerMixin,
    ServiceUsageMixin,
    ArtifactRegistryMixin,
):
    """Vertex AI pipelineJobs, Cloud Scheduler, Functions v2 (+ upload, operations),
    Run v2 services/IAM and Artifact Registry KFP repositories (artifactregistry.py, with the
    `LOCATION-kfp.pkg.dev` host under its own path) over real REST paths on
    http://127.0.0.1:PORT; for `doctor` also IAM v1
    service accounts/roles, Resource Manager project IAM and Service Usage (iam.py,
    resourcemanager.py, serviceusage.py; `caller_permissions` answers testIamPermissions).

    Knobs: `pipeline_pending_seconds` / `pipeline_running_seconds` (job state progression),
    `pipeline_cancel_seconds`, `function_deploy_seconds` (how long a Functions operation
    stays not-done), `latency_seconds` (slept on every API call), `clock` (epoch seconds).

    Hooks (set as attributes, default None):
    - `on_function_deployed(function: dict, source_zip: bytes) -> str`: called (outside the
      emulator lock) when a create/update operation completes; returns the URL stored in
      `serviceConfig.uri` and `url`. Raising makes the operation fail (build error).
    - `on_function_deleted(function: dict) -> None`: called (outside the emulator lock) when
      a delete operation completes, before it reports done. Exceptions are logged.
    - `on_scheduler_run(job: dict) -> object` (its result is ignored): called synchronously by `jobs:run` before the
      response is sent (make it quick, or hand off to a thread). Exceptions are logged.
    - `oidc_issuer`: a LocalIssuer whose keys GET /oauth2/v1/certs (PEM certificates) and
      GET /oauth2/v3/certs (a JWK Set) serve.
    """

    def __init__(
        self,
        *,
        state_dir: Path | str | None = None,
        latency_seconds: float = 0.0,
        port: int = 0,
        host: str = "127.0.0.1",
        pipeline_pending_seconds: float = 0.5,
        pipeline_running_seconds: float = 1.0,
        pipeline_cancel_seconds: float = 0.0,
        function_deploy_seconds: float = 0.3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.latency_seconds = latency_seconds
        self.pipeline_pending_seconds = pipeline_pending_seconds
        self.pipeline_running_seconds = pipeline_running_seconds
        self.pipeline_cancel_seconds = pipeline_cancel_seconds
        self.function_deploy_seconds = function_deploy_seconds
        self.clock = clock
        self.faults = FaultInjector()
        self.calls: list[tuple[str, str, int]] = []
        self.violations: list[Violation] = []  # every request is checked against Google's Discovery documents
        self.oidc_issuer: Any = None
        self.certs_max_age_seconds = 300
        self.on_function_deployed: Callable[[dict[str, Any], bytes], str] | None = None
        self.on_function_deleted: Callable[[dict[str, Any]], None] | None = None
        self.on_scheduler_run: Callable[[dict[str, Any]], object] | None = None
        self.caller_permissions: dict[str, set[str]] = {}  # testIamPermissions answers (iam.py)
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._calls_lock = threading.Lock()
        self._state: dict[str, Any] = _empty_state()
        self._dirty = False
        self._server: _Server | None = None
        self._routes = [
            (method, re.compile(pattern), handler, allowed, body_type)
            for method, pattern, handler, allowed, body_type in (
                *self._vertex_routes(),
                *self._scheduler_routes(),
                *self._functions_routes(),
                *self._iam_routes(),
                *self._resourcemanager_routes(),
                *self._serviceusage_routes(),
                *self._artifactregistry_routes(),
                ("GET", re.escape(CERTS_PATH), self._certs, set(), None),
                ("GET", re.escape(JWKS_PATH), self._certs, set(), None),
            )
        ]

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("Emulator is not started")
        return self._server.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def start(self) -> None:
        if self._server is not None:
            return
        message_types()  # import the proto types before the first request
        validator()  # and load the Discovery documents
        self._load()
        self._server = _Server((self._host, self._port), _Handler)
        self._server.emulator = self
        self._server.start("emulator")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        self._save()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def _touch(self) -> None:
        self._dirty = True

    @property
    def state_file(self) -> Path | None:
        return self.state_dir / STATE_FILE if self.state_dir is not None else None

    def _load(self) -> None:
        path = self.state_file
        if path is None or not path.exists():
            return
        data = json.loads(path.read_text())
        if data.get("version") != STATE_VERSION:
            raise RuntimeError(f"{path}: unsupported emulator state version {data.get('version')!r}")
        state = _empty_state()
        state.update(data["state"])
        # A hook that was running when the previous process stopped never finished:
        # let the operation complete again on the next read.
        for rec in state["operations"].values():
            rec["meta"].pop("completing", None)
        with self._lock:
            self._state = state
            self._dirty = False

    def _save(self) -> None:
        path = self.state_file
        if path is None:
            return
        with self._lock:
            if not self._dirty and path.exists():
                return
            payload = json.dumps({"version": STATE_VERSION, "state": self._state}, sort_keys=True)
            self._dirty = False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(payload)
        os.replace(tmp, path)

    def reset(self) -> None:
        """Forget every resource, the call log and all fault rules."""
        with self._lock:
            self._state = _empty_state()
            self._touch()
        self.clear_calls()
        self.faults.clear()
        self._save()

    # -- call log ------------------------------------------------------------------------

    def mutating_calls(self) -> int:
        """Requests other than GET/HEAD to non-control paths (see the module docstring)."""
        with self._calls_lock:
            return sum(1 for method, _path, _status in self.calls if method not in {"GET", "HEAD"})

    def clear_calls(self) -> None:
        with self._calls_lock:
            self.calls.clear()
            self.violations.clear()

    def _log_call(self, method: str, path: str, status: int) -> None:
        with self._calls_lock:
            self.calls.append((method, path, status))

    # -- request handling ----------------------------------------------------------------

    def handle(self, req: Request) -> Response | object:
        if req.path.startswith("/_emulator/"):
            try:
                return self._control(req)
            except ApiError as exc:
                return _json_response(exc.http_status, exc.body())
        rule = self.faults.take(req.method, req.path)
        if self.latency_seconds > 0:
            time.sleep(self.latency_seconds)
        if rule is not None:
            if rule.delay_seconds > 0:
                time.sleep(rule.delay_seconds)
            if rule.reset_connection:
                self._log_call(req.method, req.path, 0)
                return _RESET
            if rule.status is not None:
                status = status_name_for_http(rule.status)
                message = rule.message or f"Injected fault: {status}."
                self._log_call(req.method, req.path, rule.status)
                return _json_response(
                    rule.status, {"error": {"code": rule.status, "message": message, "status": status}}
                )
        response = self._route(req)
        self._log_call(req.method, req.path, response.status)
        if rule is not None and rule.lose_answer:
            self._save_if_dirty()
            return _RESET
        self._save_if_dirty()
        return response

    def _save_if_dirty(self) -> None:
        if self._dirty:
            try:
                self._save()
            except OSError:
                log.exception("could not save emulator state")

    def _route(self, req: Request) -> Response:
        try:
            for method, regex, handler, allowed, body_type in self._routes:
                m = regex.fullmatch(req.path)
                if m is None or method != req.method:
                    continue
                unknown = [
                    k
                    for k in req.query
                    if k not in allowed and k not in _SYSTEM_PARAMS and not self._nested_param_ok(k, allowed)
                ]
                if unknown:
                    raise ApiError(
                        "INVALID_ARGUMENT",
                        f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot bind query parameter. '
                        f"Field '{unknown[0]}' could not be found in request message.",
                    )
                self._check_discovery(req, handler)
                if body_type is not None:
                    from .common import parse_body

                    parse_body(req.body, body_type, allow_empty=True)
                result = handler(req, **m.groupdict())
                if isinstance(result, Response):
                    return result
                return _json_response(200, result)
            raise ApiError(
                "NOT_FOUND", f"The requested URL {req.path} (method {req.method}) was not found on this server."
            )
        except ApiError as exc:
            return _json_response(exc.http_status, exc.body())
        except Exception as exc:  # a bug in the emulator: still answer Google-shaped
            log.exception("emulator error on %s %s", req.method, req.path)
            return _json_response(
                500, {"error": {"code": 500, "message": f"Emulator internal error: {exc!r}", "status": "INTERNAL"}}
            )

    def _check_discovery(self, req: Request, handler: Any) -> None:
        """Record how the request departs from Google's Discovery documents; refuse what Google would."""
        # Not Google API methods, so no document describes them: Google's OAuth2 signing keys,
        # the signed Cloud Storage URL that generateUploadUrl hands out, and a KFP repository's
        # own host (LOCATION-kfp.pkg.dev, kfp's upload and download; artifactregistry.py).
        if handler in (self._certs, self._fn_upload_put, self._kfp_upload, self._kfp_download):
            return
        found = validator().check(req.method, req.path, req.query, req.body, req.headers.get("content-type", ""))
        if found:
            with self._calls_lock:
                self.violations.extend(found)
        message = refusal(found)
        if message is not None:
            raise ApiError("INVALID_ARGUMENT", message)

    @staticmethod
    def _nested_param_ok(key: str, allowed: set[str]) -> bool:
        return any(key.startswith(prefix + ".") for prefix in allowed)

    def _certs(self, req: Request) -> Response:
        if self.oidc_issuer is None:
            raise ApiError("NOT_FOUND", "No OIDC issuer is configured on this emulator.")
        document = self.oidc_issuer.jwks() if req.path == JWKS_PATH else self.oidc_issuer.certs_document()
        return _json_response(
            200,
            document,
            {"Cache-Control": f"public, max-age={int(self.certs_max_age_seconds)}, must-revalidate, no-transform"},
        )

    def _control(self, req: Request) -> Response:
        what = req.path[len("/_emulator/") :].strip("/")
        if what == "health" and req.method == "GET":
            return _json_response(200, {"ok": True})
        if what == "calls" and req.method == "GET":
            with self._calls_lock:
                calls = [{"method": m, "path": p, "status": s} for m, p, s in self.calls]
                violations = [v.to_json() for v in self.violations]
            return _json_response(200, {"calls": calls, "mutating": self.mutating_calls(), "violations": violations})
        if what == "calls" and req.method == "DELETE":
            self.clear_calls()
            return _json_response(200, {})
        if what == "reset" and req.method == "POST":
            self.reset()
            return _json_response(200, {})
        if what == "faults" and req.method == "POST":
            try:
                data = json.loads(req.body or b"{}")
                rule = self.faults.add_json(data)
            except ValueError as exc:
                raise ApiError("INVALID_ARGUMENT", f"Bad fault rule: {exc}") from None
            return _json_response(200, rule.to_json())
        if what == "faults" and req.method == "GET":
            return _json_response(200, {"faults": [r.to_json() for r in self.faults.rules]})
        if what == "faults" and req.method == "DELETE":
            self.faults.clear()
            return _json_response(200, {})
        if what == "pipelineJobs:fail" and req.method == "POST":
            data = json.loads(req.body or b"{}")
            if not isinstance(data.get("matching"), str) or not isinstance(data.get("code", 9), int):
                raise ApiError("INVALID_ARGUMENT", 'Expected {"matching": REGEX, ["message": TEXT], ["code": INT]}.')
            self.fail_pipeline_jobs(data["matching"], data.get("message", "The pipeline failed."), data.get("code", 9))
            self._save()
            return _json_response(200, {})
        if what == "token" and req.method == "POST":
            if self.oidc_issuer is None:
                raise ApiError("NOT_FOUND", "No OIDC issuer is configured on this emulator.")
            data = json.loads(req.body or b"{}")
            if not isinstance(data.get("audience"), str) or not isinstance(data.get("email"), str):
                raise ApiError("INVALID_ARGUMENT", 'Expected {"audience": URL, "email": SERVICE_ACCOUNT}.')
            return _json_response(200, {"token": self.oidc_issuer.mint(audience=data["audience"], email=data["email"])})
        if what == "state" and req.method == "GET":
            with self._lock:
                return _json_response(200, deep(self._state))
        raise ApiError("NOT_FOUND", f"Unknown emulator control endpoint {req.method} {req.path}.")


class _Server(BackgroundHTTPServer):
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
    # holds the body until the client's delayed ACK, about 40 ms on every keep-alive call.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        req = Request(
            method=method,
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            base_url=f"http://{host}",
        )
        result = self.server.emulator.handle(req)
        if result is _RESET:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass
            return
        if not isinstance(result, Response):
            raise TypeError(f"a route returned {type(result).__name__}, not a Response")
        self.send_response(result.status)
        for key, value in result.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(result.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(result.body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")
