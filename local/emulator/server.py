"""The strict control-plane REST emulator: HTTP server, routing, call log, faults, control.

One `Emulator` serves every Google control-plane API vertex-cron uses, on one port, with
the real REST paths and JSON. Each API is one class with its routes (vertex.py,
scheduler.py, functions.py, iam.py, resourcemanager.py, serviceusage.py,
artifactregistry.py) over one shared `Store` (store.py); the Emulator composes them.
Control endpoints (never counted as API calls, never subject to faults or latency):

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
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .artifactregistry import ArtifactRegistry
from .background_server import BackgroundHTTPServer, read_body
from .common import ApiError, message_types, parse_body, status_name_for_http
from .discovery import Violation, refusal, validator
from .faults import FaultInjector
from .functions import CloudFunctions
from .iam import Iam
from .resourcemanager import ResourceManager
from .routing import Request, Response, json_response
from .scheduler import CloudScheduler
from .serviceusage import ServiceUsage
from .store import Store
from .vertex import VertexAI

log = logging.getLogger(__name__)

# System parameters every Google REST API accepts in the query string.
_SYSTEM_PARAMS = {
    "$alt", "alt", "prettyPrint", "$prettyPrint", "key", "fields", "$fields", "quotaUser",
    "$.xgafv", "access_token", "callback", "$callback", "upload_protocol", "uploadType",
    "oauth_token", "userIp", "$userProject",
}  # fmt: skip

_RESET = object()


class _Forwarded:
    """An Emulator attribute that is one of its APIs' (`api`.`name`): tests and the local stack
    reach every knob, hook and set-up method on the Emulator, whichever API owns it."""

    def __init__(self, api: str, name: str) -> None:
        self.api, self.name = api, name

    def __get__(self, emulator: Any, owner: type | None = None) -> Any:
        if emulator is None:  # looked up on the class (help(), inspect)
            return self
        return getattr(getattr(emulator, self.api), self.name)

    def __set__(self, emulator: Any, value: Any) -> None:
        setattr(getattr(emulator, self.api), self.name, value)


class Emulator:
    """Vertex AI pipelineJobs, Cloud Scheduler, Functions v2 (+ upload, operations), Run v2
    services/IAM and Artifact Registry KFP repositories (with the `LOCATION-kfp.pkg.dev` host
    under its own path) over real REST paths on http://127.0.0.1:PORT; for `doctor` also
    IAM v1 service accounts/roles, Resource Manager project IAM and Service Usage.

    Knobs: `pipeline_pending_seconds` / `pipeline_running_seconds` (job state progression),
    `pipeline_cancel_seconds`, `function_deploy_seconds` (how long a Functions operation
    stays not-done), `latency_seconds` (slept on every API call), `clock` (epoch seconds).

    Hooks (set as attributes, default None): `on_function_deployed(function, source_zip) ->
    url` and `on_function_deleted(function)` (functions.py), `on_scheduler_run(job)`
    (scheduler.py), `oidc_issuer`: a LocalIssuer whose keys GET /oauth2/v1/certs (PEM
    certificates) and GET /oauth2/v3/certs (a JWK Set) serve (iam.py).
    """

    # Setting a knob the Emulator does not name fails instead of silently changing nothing.
    __slots__ = (
        "store", "artifact_registry", "vertex", "scheduler", "cloud_functions", "iam", "resource_manager",
        "service_usage", "latency_seconds", "faults", "calls", "violations", "_host", "_port", "_calls_lock",
        "_server", "_routes",
    )  # fmt: skip

    # Each API's knobs, hooks and set-up methods, by the names tests and the local stack use.
    pipeline_pending_seconds = _Forwarded("vertex", "pending_seconds")
    pipeline_running_seconds = _Forwarded("vertex", "running_seconds")
    pipeline_cancel_seconds = _Forwarded("vertex", "cancel_seconds")
    pipeline_jobs = _Forwarded("vertex", "pipeline_jobs")
    fail_pipeline_jobs = _Forwarded("vertex", "fail_pipeline_jobs")
    set_pipeline_job_state = _Forwarded("vertex", "set_pipeline_job_state")
    pipeline_create_quota = _Forwarded("vertex", "create_quota")
    on_scheduler_run = _Forwarded("scheduler", "on_run")
    scheduler_jobs = _Forwarded("scheduler", "scheduler_jobs")
    record_scheduler_attempt = _Forwarded("scheduler", "record_scheduler_attempt")
    function_deploy_seconds = _Forwarded("cloud_functions", "deploy_seconds")
    on_function_deployed = _Forwarded("cloud_functions", "on_deployed")
    on_function_deleted = _Forwarded("cloud_functions", "on_deleted")
    functions = _Forwarded("cloud_functions", "functions")
    function_source = _Forwarded("cloud_functions", "function_source")
    set_invoker_iam_disabled = _Forwarded("cloud_functions", "set_invoker_iam_disabled")
    iam_policy = _Forwarded("cloud_functions", "iam_policy")
    oidc_issuer = _Forwarded("iam", "token_issuer")
    caller_permissions = _Forwarded("iam", "caller_permissions")
    add_service_account = _Forwarded("iam", "add_service_account")
    put_role = _Forwarded("iam", "put_role")
    set_policy = _Forwarded("iam", "set_policy")
    enable_services = _Forwarded("service_usage", "enable_services")
    clock = _Forwarded("store", "clock")
    now = _Forwarded("store", "now")

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
        self.store = Store(state_dir=state_dir, clock=clock)
        self.artifact_registry = ArtifactRegistry(self.store)
        self.vertex = VertexAI(
            self.store,
            self.artifact_registry,
            pending_seconds=pipeline_pending_seconds,
            running_seconds=pipeline_running_seconds,
            cancel_seconds=pipeline_cancel_seconds,
        )
        self.scheduler = CloudScheduler(self.store)
        self.cloud_functions = CloudFunctions(self.store, deploy_seconds=function_deploy_seconds)
        self.iam = Iam(self.store)
        self.resource_manager = ResourceManager(self.iam)
        self.service_usage = ServiceUsage(self.store)
        self.latency_seconds = latency_seconds
        self.faults = FaultInjector()
        self.calls: list[tuple[str, str, int]] = []
        self.violations: list[Violation] = []  # every request is checked against Google's Discovery documents
        self._host = host
        self._port = port
        self._calls_lock = threading.Lock()
        self._server: _Server | None = None
        self._routes = [
            (re.compile(route.pattern), route)
            for api in (
                self.vertex,
                self.scheduler,
                self.cloud_functions,
                self.iam,
                self.resource_manager,
                self.service_usage,
                self.artifact_registry,
            )
            for route in api.routes()
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
        self.store.load()
        self._server = _Server((self._host, self._port), _Handler)
        self._server.emulator = self
        self._server.start("emulator")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        self.store.save()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every resource, the call log and all fault rules."""
        self.store.reset()
        self.clear_calls()
        self.faults.clear()

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
                return json_response(exc.http_status, exc.body())
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
                return json_response(
                    rule.status, {"error": {"code": rule.status, "message": message, "status": status}}
                )
        response = self._route(req)
        self._log_call(req.method, req.path, response.status)
        self._save()
        return _RESET if rule is not None and rule.lose_answer else response

    def _save(self) -> None:
        try:
            self.store.save()
        except OSError:
            log.exception("could not save emulator state")

    def _route(self, req: Request) -> Response:
        try:
            for regex, route in self._routes:
                m = regex.fullmatch(req.path)
                if m is None or route.method != req.method:
                    continue
                unknown = [
                    k
                    for k in req.query
                    if k not in route.query and k not in _SYSTEM_PARAMS and not _nested_param_ok(k, route.query)
                ]
                if unknown:
                    raise ApiError(
                        "INVALID_ARGUMENT",
                        f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot bind query parameter. '
                        f"Field '{unknown[0]}' could not be found in request message.",
                    )
                if route.described:
                    self._check_discovery(req)
                if route.body_type is not None:
                    parse_body(req.body, route.body_type, allow_empty=True)
                result = route.handler(req, **m.groupdict())
                if isinstance(result, Response):
                    return result
                return json_response(200, result)
            raise ApiError(
                "NOT_FOUND", f"The requested URL {req.path} (method {req.method}) was not found on this server."
            )
        except ApiError as exc:
            return json_response(exc.http_status, exc.body())
        except Exception as exc:  # a bug in the emulator: still answer Google-shaped
            log.exception("emulator error on %s %s", req.method, req.path)
            return json_response(
                500, {"error": {"code": 500, "message": f"Emulator internal error: {exc!r}", "status": "INTERNAL"}}
            )

    def _check_discovery(self, req: Request) -> None:
        """Record how the request departs from Google's Discovery documents; refuse what Google would."""
        found = validator().check(req.method, req.path, req.query, req.body, req.headers.get("content-type", ""))
        if found:
            with self._calls_lock:
                self.violations.extend(found)
        message = refusal(found)
        if message is not None:
            raise ApiError("INVALID_ARGUMENT", message)

    def _control(self, req: Request) -> Response:
        what = req.path[len("/_emulator/") :].strip("/")
        if what == "health" and req.method == "GET":
            return json_response(200, {"ok": True})
        if what == "calls" and req.method == "GET":
            with self._calls_lock:
                calls = [{"method": m, "path": p, "status": s} for m, p, s in self.calls]
                violations = [v.to_json() for v in self.violations]
            return json_response(200, {"calls": calls, "mutating": self.mutating_calls(), "violations": violations})
        if what == "calls" and req.method == "DELETE":
            self.clear_calls()
            return json_response(200, {})
        if what == "reset" and req.method == "POST":
            self.reset()
            return json_response(200, {})
        if what == "faults" and req.method == "POST":
            try:
                data = json.loads(req.body or b"{}")
                rule = self.faults.add_json(data)
            except ValueError as exc:
                raise ApiError("INVALID_ARGUMENT", f"Bad fault rule: {exc}") from None
            return json_response(200, rule.to_json())
        if what == "faults" and req.method == "GET":
            return json_response(200, {"faults": [r.to_json() for r in self.faults.rules]})
        if what == "faults" and req.method == "DELETE":
            self.faults.clear()
            return json_response(200, {})
        if what == "pipelineJobs:fail" and req.method == "POST":
            data = json.loads(req.body or b"{}")
            if not isinstance(data.get("matching"), str) or not isinstance(data.get("code", 9), int):
                raise ApiError("INVALID_ARGUMENT", 'Expected {"matching": REGEX, ["message": TEXT], ["code": INT]}.')
            self.vertex.fail_pipeline_jobs(
                data["matching"], data.get("message", "The pipeline failed."), data.get("code", 9)
            )
            return json_response(200, {})
        if what == "token" and req.method == "POST":
            issuer = self.iam.token_issuer
            if issuer is None:
                raise ApiError("NOT_FOUND", "No OIDC issuer is configured on this emulator.")
            data = json.loads(req.body or b"{}")
            if not isinstance(data.get("audience"), str) or not isinstance(data.get("email"), str):
                raise ApiError("INVALID_ARGUMENT", 'Expected {"audience": URL, "email": SERVICE_ACCOUNT}.')
            return json_response(200, {"token": issuer.mint(audience=data["audience"], email=data["email"])})
        if what == "state" and req.method == "GET":
            return json_response(200, self.store.snapshot())
        raise ApiError("NOT_FOUND", f"Unknown emulator control endpoint {req.method} {req.path}.")


def _nested_param_ok(key: str, allowed: tuple[str, ...]) -> bool:
    return any(key.startswith(prefix + ".") for prefix in allowed)


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

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = read_body(self)
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
