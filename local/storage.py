"""Cloud Storage for the local stack: gcp-storage-emulator in a thread, in memory or on disk.

`StorageEmulator` runs the gcp-storage-emulator package's own request handler behind a
thin wrapper that makes it behave like GCS where vertex-cron depends on it:

- Preconditions. The package ignores them; here `ifGenerationMatch` (0 = "only if the
  object does not exist"), `ifGenerationNotMatch`, `ifMetagenerationMatch` and
  `ifMetagenerationNotMatch` are enforced on uploads (media, multipart, resumable: at
  initiation and again when the final chunk arrives), deletes, metadata reads and media
  downloads. A failed precondition is 412 `conditionNotMet`, except that a failed
  `if*NotMatch` on a read is 304 Not Modified, as in GCS. Check-and-write is atomic:
  the wrapper serialises requests to the package (it is not thread-safe anyway).
- Generations. The bucket is not versioned, so only the live generation exists:
  `?generation=N` (metadata, `alt=media`, /download/...) serves the object only when N
  is its current generation and answers 404 otherwise (the package ignored N).
- Bucket IAM. `GET /b/BUCKET/iam` answers `storage.bucket_policies[BUCKET]` (bindings;
  conditional ones need `optionsRequestedPolicyVersion=3`, as in GCS) and
  `GET /b/BUCKET/iam/testPermissions?permissions=..` answers from
  `storage.caller_permissions[BUCKET]` (what the anonymous caller holds); the package has neither.
- Google's schema. Every JSON-API request is checked against the storage.v1 Discovery
  document (emulator/discovery.py): what it does not allow is answered 400 `invalid`, and
  every departure is kept in `storage.violations` (also in GET /_emulator/calls).
- Faults. `storage.faults` is the same `FaultInjector` as the control-plane emulator's:
  the next N matching requests get a GCS-shaped error, or a delay ("slow reads"), or a
  reset connection, or are served with their answer lost (`lose_answer`). Also over HTTP:
  POST /_emulator/faults (JSON rule), DELETE clears.

Requests are served concurrently (a delayed request does not block others); only the
package's handler runs under the lock.

Persistence. With `data_dir`, the package keeps object bytes and their metadata
(generation included) on disk, so a new StorageEmulator on the same directory serves the
same objects at the same generations: a pinned `gs://B/O#GENERATION` stays readable
across restarts. The wrapper's own state (bucket IAM, caller permissions, faults, the
preconditions of unfinished resumable uploads) is not kept.
"""

from __future__ import annotations

import email.policy
import io
import json
import logging
import re
import socket
import struct
import threading
from email.parser import BytesParser
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from vertex_cron_local.emulator.background_server import BackgroundHTTPServer, read_body
from vertex_cron_local.emulator.discovery import Violation, refusal, validator
from vertex_cron_local.emulator.faults import FaultInjector

log = logging.getLogger(__name__)

_PRECONDITION_MESSAGE = "At least one of the pre-conditions you specified did not hold."
_REASONS = {
    400: "invalid",
    401: "required",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "badGateway",
    503: "backendError",
    504: "gatewayTimeout",
}
_OBJECT_SUFFIXES = ("/acl", "/compose", "/restore")


def _gcs_error(code: int, message: str, *, reason: str | None = None, location: str | None = None) -> bytes:
    err: dict[str, Any] = {
        "message": message,
        "domain": "global",
        "reason": reason or _REASONS.get(code, "backendError"),
    }
    if location:
        err["locationType"] = "header"
        err["location"] = location
    return json.dumps({"error": {"code": code, "message": message, "errors": [err]}}).encode()


def _object_target(path: str) -> tuple[str, str] | None:
    """(bucket, object) for a JSON-API object path (metadata, media or /download/)."""
    for prefix in ("/download/storage/v1/b/", "/storage/v1/b/", "/b/"):
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            bucket, sep, tail = rest.partition("/o/")
            if not sep or not tail or "/" in bucket:
                return None
            if "/copyTo/b/" in tail or "/rewriteTo/b/" in tail or tail.endswith(_OBJECT_SUFFIXES):
                return None
            return bucket, unquote(tail)
    return None


_BUCKET_IAM = re.compile(r"(?:/storage/v1)?/b/(?P<bucket>[^/]+)/iam(?P<test>/testPermissions)?")


def _upload_bucket(path: str) -> str | None:
    for prefix in ("/upload/storage/v1/b/", "/storage/v1/b/", "/b/"):
        if path.startswith(prefix) and path.endswith("/o"):
            bucket = path[len(prefix) : -2]
            if bucket and "/" not in bucket:
                return bucket
    return None


def _int_param(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values or values[0] == "":
        return None
    return int(values[0])


def _make_handler_class() -> Any:
    from gcp_storage_emulator.server import RequestHandler

    class _Handler(RequestHandler):
        """The package's handler, behind faults, preconditions and generation checks."""

        wrapper: StorageEmulator
        wfile: Any  # swapped for a buffer while a lost answer is served
        rfile: BinaryIO  # http.server's, which the untyped base class hides from mypy

        def do_GET(self) -> None:
            self._wrapped("GET", super().do_GET)

        def do_POST(self) -> None:
            self._wrapped("POST", super().do_POST)

        def do_PUT(self) -> None:
            self._wrapped("PUT", super().do_PUT)

        def do_PATCH(self) -> None:
            self._wrapped("PATCH", super().do_PATCH)

        def do_DELETE(self) -> None:
            self._wrapped("DELETE", super().do_DELETE)

        # -- helpers ---------------------------------------------------------------------

        def _send(self, status: int, body: bytes, content_type: str = "application/json; charset=UTF-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _buffer_body(self) -> bytes:
            """Read the whole body and put it back so the package can read it again."""
            chunked = (self.headers.get("Transfer-Encoding") or "").lower() == "chunked"
            body = read_body(self)
            if chunked:  # the package reads a Content-Length only
                del self.headers["Transfer-Encoding"]
                self.headers["Content-Length"] = str(len(body))
            self.rfile = io.BytesIO(body)
            return body

        def _wrapped(self, method: str, inner: Any) -> None:
            wrapper = self.wrapper
            parts = urlsplit(self.path)
            path = parts.path
            query = parse_qs(parts.query, keep_blank_values=True)
            method = (self.headers.get("x-http-method-override") or method).upper()
            body = self._buffer_body()
            if path.startswith("/_emulator/"):
                self._control(method, path, body)
                return
            wrapper._log_call(method, unquote(path))
            rule = wrapper.faults.take(method, unquote(path))
            if rule is not None:
                if rule.delay_seconds > 0:
                    threading.Event().wait(rule.delay_seconds)
                if rule.reset_connection:
                    self._reset()
                    return
                if rule.status is not None:
                    self._send(rule.status, _gcs_error(rule.status, rule.message or f"Injected fault ({rule.status})."))
                    return
                if rule.lose_answer:  # served, then the answer goes nowhere and the connection is reset
                    answer_to, self.wfile = self.wfile, io.BytesIO()
                    try:
                        self._serve(method, path, query, body, inner)
                    finally:
                        self.wfile = answer_to
                        self._reset()
                    return
            self._serve(method, path, query, body, inner)

        def _reset(self) -> None:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass

        def _serve(self, method: str, path: str, query: dict[str, list[str]], body: bytes, inner: Any) -> None:
            wrapper = self.wrapper
            found = validator().check(method, path, query, body, self.headers.get("Content-Type") or "")
            wrapper._record(found)
            message = refusal(found)
            if message is not None:
                self._send(400, _gcs_error(400, message))
                return
            with wrapper._lock:
                try:
                    verdict = self._bucket_iam(method, path, query) or self._check(method, path, query, body)
                except ValueError as exc:
                    self._send(400, _gcs_error(400, f"Invalid argument: {exc}"))
                    return
                if verdict is not None:
                    self._send(*verdict)
                    return
                storage = wrapper._storage
                before = set(storage.resumable) if method == "POST" else None
                inner()
                if before is not None and "upload_id" not in query:
                    conditions = self._conditions(query)
                    for upload_id in set(storage.resumable) - before:
                        if conditions:
                            wrapper._resumable_conditions[upload_id] = conditions

        def _bucket_iam(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, bytes] | None:
            match = _BUCKET_IAM.fullmatch(path)
            if match is None or method != "GET":
                return None
            bucket, test = match.group("bucket"), match.group("test")
            if not self.wrapper._storage.get_bucket(bucket):
                return 404, _gcs_error(404, "The specified bucket does not exist.", reason="notFound")
            if test:
                held = self.wrapper.caller_permissions.get(bucket, set())
                granted = [p for p in query.get("permissions", []) if p in held]
                return 200, json.dumps({"kind": "storage#testIamPermissionsResponse", "permissions": granted}).encode()
            bindings = self.wrapper.bucket_policies.get(bucket, [])
            version = _int_param(query, "optionsRequestedPolicyVersion") or 1
            if version < 3 and any("condition" in b for b in bindings):
                return 400, _gcs_error(
                    400,
                    "Cannot get legacy ACLs for a bucket that has uniform bucket-level access "
                    "enabled or conditional role bindings; request policy version 3.",
                )
            policy = {
                "kind": "storage#policy",
                "resourceId": f"projects/_/buckets/{bucket}",
                "version": 3 if version >= 3 else 1,
                "bindings": bindings,
                "etag": "CAE=",
            }
            return 200, json.dumps(policy).encode()

        @staticmethod
        def _conditions(query: dict[str, list[str]]) -> dict[str, int]:
            names = ("ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch")
            return {n: v for n in names if (v := _int_param(query, n)) is not None}

        def _current(self, bucket: str, name: str) -> dict[str, Any] | None:
            from gcp_storage_emulator.exceptions import NotFound

            try:
                return self.wrapper._storage.get_file_obj(bucket, name)
            except NotFound:
                return None

        def _evaluate(
            self, conditions: dict[str, int], obj: dict[str, Any] | None, *, read: bool
        ) -> tuple[int, bytes] | None:
            gen = int(obj["generation"]) if obj else None
            metagen = int(obj.get("metageneration", 1)) if obj else None
            failed_match = failed_not_match = None
            if "ifGenerationMatch" in conditions:
                want = conditions["ifGenerationMatch"]
                if (want == 0 and obj is not None) or (want != 0 and gen != want):
                    failed_match = "If-Match"
            if "ifMetagenerationMatch" in conditions and metagen != conditions["ifMetagenerationMatch"]:
                failed_match = failed_match or "If-Metageneration-Match"
            if "ifGenerationNotMatch" in conditions and obj is not None and gen == conditions["ifGenerationNotMatch"]:
                failed_not_match = "If-None-Match"
            if (
                "ifMetagenerationNotMatch" in conditions
                and obj is not None
                and metagen == conditions["ifMetagenerationNotMatch"]
            ):
                failed_not_match = failed_not_match or "If-Metageneration-None-Match"
            if failed_match:
                return 412, _gcs_error(412, _PRECONDITION_MESSAGE, reason="conditionNotMet", location=failed_match)
            if failed_not_match:
                if read:
                    return 304, b""
                return 412, _gcs_error(412, _PRECONDITION_MESSAGE, reason="conditionNotMet", location=failed_not_match)
            return None

        def _check(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, bytes] | None:
            conditions = self._conditions(query)
            # Uploads: simple/multipart/resumable initiation, and resumable chunks.
            upload_bucket = _upload_bucket(path)
            if upload_bucket is not None and method in {"POST", "PUT"}:
                if "upload_id" in query:
                    upload_id = query["upload_id"][0]
                    conditions = self.wrapper._resumable_conditions.get(upload_id, {})
                    if not conditions:
                        return None
                    pending = self.wrapper._storage.resumable.get(upload_id) or {}
                    name = pending.get("name")
                    if not name:
                        return None
                    return self._evaluate(conditions, self._current(upload_bucket, name), read=False)
                if not conditions:
                    return None
                name = self._upload_name(query, body)
                if name is None:
                    return None
                return self._evaluate(conditions, self._current(upload_bucket, name), read=False)
            target = _object_target(path)
            if target is None:
                return None
            bucket, name = target
            obj = self._current(bucket, name)
            generation = _int_param(query, "generation")
            if (
                generation is not None
                and method in {"GET", "DELETE", "PATCH"}
                and (obj is None or int(obj["generation"]) != generation)
            ):
                return 404, _gcs_error(404, f"No such object: {bucket}/{name}", reason="notFound")
            if conditions:
                if obj is None and method in {"GET", "DELETE", "PATCH"}:
                    return 404, _gcs_error(404, f"No such object: {bucket}/{name}", reason="notFound")
                return self._evaluate(conditions, obj, read=method == "GET")
            if obj is None and method == "GET":
                # The package answers an empty 404; give clients GCS's JSON body.
                if not self.wrapper._storage.get_bucket(bucket):
                    return 404, _gcs_error(404, "The specified bucket does not exist.", reason="notFound")
                return 404, _gcs_error(404, f"No such object: {bucket}/{name}", reason="notFound")
            return None

        def _upload_name(self, query: dict[str, list[str]], body: bytes) -> str | None:
            if query.get("name"):
                return query["name"][0]
            content_type = self.headers.get("Content-Type") or ""
            try:
                if content_type.startswith("multipart/"):
                    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
                    msg = BytesParser(policy=email.policy.default).parsebytes(head + body)
                    metadata_part = next(msg.iter_parts())  # multipart/related: metadata, then media
                    meta = json.loads(metadata_part.get_content())
                    return meta.get("name")
                if content_type.startswith("application/json") and body:
                    return json.loads(body).get("name")
            except (ValueError, IndexError, AttributeError, TypeError):
                return None
            return None

        def _control(self, method: str, path: str, body: bytes) -> None:
            what = path[len("/_emulator/") :].strip("/")
            wrapper = self.wrapper
            if what == "faults" and method == "POST":
                try:
                    rule = wrapper.faults.add_json(json.loads(body or b"{}"))
                except ValueError as exc:
                    self._send(400, _gcs_error(400, f"Bad fault rule: {exc}"))
                    return
                self._send(200, json.dumps(rule.to_json()).encode())
            elif what == "faults" and method == "DELETE":
                wrapper.faults.clear()
                self._send(200, b"{}")
            elif what == "faults" and method == "GET":
                self._send(200, json.dumps({"faults": [r.to_json() for r in wrapper.faults.rules]}).encode())
            elif what == "calls" and method == "GET":
                with wrapper._lock:
                    calls = [{"method": m, "path": p} for m, p in wrapper.calls]
                    violations = [v.to_json() for v in wrapper.violations]
                self._send(200, json.dumps({"calls": calls, "violations": violations}).encode())
            else:
                self._send(404, _gcs_error(404, f"Unknown control endpoint {method} {path}"))

    return _Handler


class StorageEmulator:
    """gcp-storage-emulator on http://127.0.0.1:PORT (port 0 = any free port), in memory,
    or kept in `data_dir` when given (see Persistence above).

    Point clients at it with STORAGE_EMULATOR_HOST=storage.url.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        project_number: str | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        self._host = host
        self._port = port
        # The package requires an absolute path.
        self._data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._project_number = project_number
        self.faults = FaultInjector()
        #: (method, path) of every request that reached the storage API
        self.calls: list[tuple[str, str]] = []
        #: how those requests departed from the storage.v1 Discovery document
        self.violations: list[Violation] = []
        self._lock = threading.RLock()
        self._resumable_conditions: dict[str, dict[str, int]] = {}
        #: bucket -> IAM bindings, and bucket -> permissions the caller holds (see the docstring)
        self.bucket_policies: dict[str, list[dict[str, Any]]] = {}
        self.caller_permissions: dict[str, set[str]] = {}
        self._storage: Any = None
        self._server: BackgroundHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("StorageEmulator is not started")
        return self._server.url

    def start(self) -> None:
        if self._server is not None:
            return
        from gcp_storage_emulator.storage import Storage

        validator()  # load the Discovery documents before the first request
        if self._data_dir is None:
            self._storage = Storage(use_memory_fs=True, project_number=self._project_number)
        else:
            self._storage = Storage(data_dir=str(self._data_dir), project_number=self._project_number)
        handler_cls = _make_handler_class()
        handler_cls.wrapper = self
        self._server = BackgroundHTTPServer((self._host, self._port), partial(handler_cls, self._storage))
        self._server.start("storage-emulator")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> StorageEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log_call(self, method: str, path: str) -> None:
        with self._lock:
            self.calls.append((method, path))

    def _record(self, violations: list[Violation]) -> None:
        if violations:
            with self._lock:
                self.violations.extend(violations)

    # -- direct access (no HTTP) ---------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        """Create a bucket (no-op if it exists)."""
        from gcp_storage_emulator.handlers import buckets

        with self._lock:
            buckets.create_bucket(name, self._storage)

    def wipe(self) -> None:
        """Delete every bucket and object."""
        with self._lock:
            self._storage.wipe(keep_buckets=False)
            self._resumable_conditions.clear()
