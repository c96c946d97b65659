"""Cloud Functions v2 (+ source upload, long-running operations) and Cloud Run v2 services/IAM.

Functions v2, like the real API:
- `functions:generateUploadUrl` returns a signed-URL look-alike on this emulator
  (`{base}/gcf-v2-uploads-NUMBER-REGION/UUID.zip?GoogleAccessId=..&Expires=..&Signature=..`)
  that takes the zip by PUT with `Content-Type: application/zip` (anything else: 403),
  and `storageSource {bucket, object}` to put in `buildConfig.source`.
- create / patch (updateMask) / delete return an Operation that is not done for
  `deploy_seconds` (create/patch report `stages`: BUILD, then SERVICE); it
  completes lazily when the operation, the function or the Run service is next read (or
  `functions()` is called). Meanwhile the function is
  DEPLOYING / DELETING, and another patch/delete of it is 409 ABORTED "unable to queue
  the operation" (a create of it is 409 ALREADY_EXISTS, as for any existing function).
- On completion of create/patch, the source zip is "built" (must be a zip; python
  runtimes need main.py) and `on_deployed(function, zip_bytes)` gives the URL
  (default: a realistic https://NAME-HASH-RC.a.run.app). `serviceConfig.uri` and `url`
  get it; `serviceConfig.service` is projects/P/locations/R/services/FUNCTION_ID, and that
  Run service now exists (GET, getIamPolicy, setIamPolicy). Server defaults are filled
  like the real API (timeoutSeconds 60, availableMemory 256M, LOG_EXECUTION_ID=true ...).
  `set_invoker_iam_disabled(service, True)` stands for `--no-invoker-iam-check`: the service
  then carries `invokerIamDisabled: true`, kept across redeploys of the function.
- On completion of delete, `on_deleted(function)` runs before the operation is
  marked done, so a caller that sees `done` knows the function no longer serves.

IAM (Run v2 services and Functions v2 functions): getIamPolicy / setIamPolicy with etag
concurrency control (a stale etag is 409 ABORTED; no etag overwrites), member and role
validation (a role of another product, e.g. roles/cloudfunctions.invoker on a Run
service, is 400), bindings normalised (sorted, de-duplicated, empty ones dropped, member
emails in lower case). A Run service's `urls` lists its deterministic URL and its `uri`.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

from .common import (
    LOCATION_PARENT,
    ApiError,
    apply_update_mask,
    b64,
    canonical,
    deep,
    invalid,
    is_email,
    masked_patch,
    not_found,
    page,
    parse_body,
    project_number,
    region_code,
    rfc3339,
    short_hash,
    unb64,
    validate_labels,
)
from .routing import Request, Response, Route
from .store import Store

log = logging.getLogger(__name__)

FUNCTION_ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_RUNTIME_RE = re.compile(r"^(python3\d{1,2}|nodejs\d{1,2}|go1\d{1,2}|java\d{2}|ruby\d{1,2}|php\d{1,2}|dotnet\d)$")
_MEMORY_RE = re.compile(r"^\d+(\.\d+)?(k|M|G|T|Ki|Mi|Gi|Ti)?$")
_RESERVED_ENV = {"FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "PORT"}
_MEMBER_RE = re.compile(
    r"^(allUsers|allAuthenticatedUsers"
    r"|(user|serviceAccount|group):[^@\s:]+@[^@\s:]+\.[^@\s:]+"
    r"|domain:[a-z0-9.-]+\.[a-z]+"
    r"|deleted:(user|serviceAccount|group):[^\s]+"
    r"|principal(Set)?://\S+"
    r"|project(Owner|Editor|Viewer):[a-z][a-z0-9-]+)$"
)
_BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
_FN_OUTPUT_ONLY = ("state", "updateTime", "createTime", "url", "stateMessages", "satisfiesPzs")
_FN_MUTABLE = {"description", "buildConfig", "serviceConfig", "eventTrigger", "labels", "kmsKeyName", "environment"}
_FUNCTIONS_OPERATION_METADATA = "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
_FUNCTION_TYPE = "type.googleapis.com/google.cloud.functions.v2.Function"


def _service_urls(service: str, uri: str) -> list[str]:
    """Every URL a Cloud Run service answers at: its deterministic
    https://SERVICE-PROJECT_NUMBER.REGION.run.app when that DNS label fits in 63 characters,
    and its hash-based one (`uri`)."""
    _, project, _, region, _, service_id = service.split("/")
    label = f"{service_id}-{project_number(project)}"
    deterministic = [f"https://{label}.{region}.run.app"] if len(label) <= 63 else []
    return [*deterministic, uri]


def _member_normal_form(member: str) -> str:
    """IAM ignores the case of a member's email or domain and stores it in lower case;
    allUsers, allAuthenticatedUsers and principal identifiers are case-sensitive."""
    prefix = "deleted:" if member.startswith("deleted:") else ""
    kind, separator, value = member[len(prefix) :].partition(":")
    if not separator or kind.startswith("principal"):
        return member
    return f"{prefix}{kind}:{value.lower()}"


class CloudFunctions:
    """Cloud Functions v2 and the Cloud Run v2 services it deploys, over the emulator's store.

    Hooks (default None): `on_deployed(function, source_zip) -> url` is called (outside the
    store's lock) when a create/update operation completes and gives the URL stored in
    `serviceConfig.uri` and `url`; raising makes the operation fail (a build error).
    `on_deleted(function)` is called (outside the lock) when a delete operation completes,
    before it reports done; exceptions are logged.
    """

    def __init__(self, store: Store, *, deploy_seconds: float) -> None:
        self.store = store
        self.deploy_seconds = deploy_seconds  # how long an operation stays not done
        self.on_deployed: Callable[[dict[str, Any], bytes], str] | None = None
        self.on_deleted: Callable[[dict[str, Any]], None] | None = None
        self._functions = store.collection("functions")
        self._operations = store.collection("operations")
        self._services = store.collection("services")
        self._policies = store.collection("policies")  # IAM policies, shared with iam.py's set-up
        self._uploads = store.collection("uploads")
        self._upload_slots = store.collection("uploadSlots")
        # Operations whose hooks run now; not saved: after a restart a due operation completes again.
        self._completing: set[str] = set()

    def routes(self) -> list[Route]:
        parent = rf"/v2/(?P<parent>{LOCATION_PARENT})/functions"
        fn = rf"/v2/(?P<name>{LOCATION_PARENT}/functions/[^/:]+)"
        svc = rf"/v2/(?P<name>{LOCATION_PARENT}/services/[^/:]+)"
        return [
            Route("POST", rf"{parent}:generateUploadUrl", self._fn_upload_url, body_type="GenerateUploadUrlRequest"),
            Route(
                "PUT",
                r"/(?P<bucket>gcf-v2-uploads-[a-z0-9-]+)/(?P<obj>[A-Za-z0-9-]+\.zip)",
                self._fn_upload_put,
                ("GoogleAccessId", "Expires", "Signature"),
                described=False,  # the signed Cloud Storage URL generateUploadUrl hands out
            ),
            Route("POST", parent, self._fn_create, ("functionId",)),
            Route("GET", parent, self._fn_list, ("pageSize", "pageToken", "filter", "orderBy")),
            Route("GET", fn, self._fn_get),
            Route("PATCH", fn, self._fn_patch, ("updateMask",)),
            Route("DELETE", fn, self._fn_delete),
            Route("GET", rf"{fn}:getIamPolicy", self._iam_get, ("options",)),
            Route("POST", rf"{fn}:setIamPolicy", self._iam_set),
            Route("GET", rf"/v2/(?P<name>{LOCATION_PARENT}/operations/[^/:]+)", self._op_get),
            Route("GET", svc, self._svc_get),
            Route("GET", rf"{svc}:getIamPolicy", self._iam_get, ("options",)),
            Route("POST", rf"{svc}:setIamPolicy", self._iam_set),
        ]

    # -- in-process API ------------------------------------------------------------------

    def functions(self) -> list[dict[str, Any]]:
        """Snapshot of every function (due operations completed first)."""
        self._fn_advance()
        with self.store.lock:
            return [deep(f) for f in self._functions.values()]

    def function_source(self, name: str) -> bytes:
        """The zip bytes the function was (last) deployed from."""
        with self.store.lock:
            fn = self._functions.get(name)
            if fn is None:
                raise KeyError(name)
            key = self._fn_source_key(fn)
            return unb64(self._uploads[key])

    def set_invoker_iam_disabled(self, service: str, disabled: bool) -> None:
        """What `gcloud run services update SERVICE --[no-]invoker-iam-check` leaves: run.v2
        Service.invokerIamDisabled (omitted when false, as proto3 JSON omits defaults)."""
        self._fn_advance()
        with self.store.lock:
            svc = self._services.get(service)
            if svc is None:
                raise KeyError(service)
            svc.pop("invokerIamDisabled", None)
            if disabled:
                svc["invokerIamDisabled"] = True
            self.store.touch()

    def iam_policy(self, resource: str) -> dict[str, Any]:
        """The IAM policy of a Run service or function (as getIamPolicy returns it)."""
        with self.store.lock:
            return deep(self._policies.get(resource, {"etag": "ACAB"}))

    # -- upload --------------------------------------------------------------------------

    def _fn_upload_url(self, req: Request, parent: str) -> Any:
        project, region = parent.split("/")[1], parent.split("/")[3]
        bucket = f"gcf-v2-uploads-{project_number(project)}-{region}"
        obj = f"{uuid.uuid4()}.zip"
        expires = int(self.store.now()) + 1800
        signature = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        access_id = f"service-{project_number(project)}@gcf-admin-robot.iam.gserviceaccount.com"
        with self.store.lock:
            self._upload_slots[f"{bucket}/{obj}"] = {"expires": expires, "signature": signature}
            self.store.touch()
        return {
            "uploadUrl": f"{req.base_url}/{bucket}/{obj}?GoogleAccessId={access_id}&Expires={expires}&Signature={signature}",
            "storageSource": {"bucket": bucket, "object": obj},
        }

    def _fn_upload_put(self, req: Request, bucket: str, obj: str) -> Any:
        key = f"{bucket}/{obj}"
        with self.store.lock:
            slot = self._upload_slots.get(key)
        signature = (req.query.get("Signature") or [""])[0]
        if slot is None or slot["signature"] != signature:
            return Response(
                403,
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code></Error>",
                {"Content-Type": "application/xml"},
            )
        if slot["expires"] < self.store.now():
            return Response(
                400,
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code></Error>",
                {"Content-Type": "application/xml"},
            )
        if (req.headers.get("content-type") or "").split(";")[0].strip() != "application/zip":
            return Response(
                403,
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code><Message>Content-Type must be application/zip</Message></Error>",
                {"Content-Type": "application/xml"},
            )
        if len(req.body) > 100 * 1024 * 1024:
            return Response(
                400,
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>EntityTooLarge</Code></Error>",
                {"Content-Type": "application/xml"},
            )
        with self.store.lock:
            self._uploads[key] = b64(req.body)
            self.store.touch()
        return Response(200, b"", {"ETag": f'"{short_hash(key, str(len(req.body)))}"'})

    # -- functions -----------------------------------------------------------------------

    @staticmethod
    def _fn_source_key(fn: dict[str, Any]) -> str:
        src = ((fn.get("buildConfig") or {}).get("source") or {}).get("storageSource") or {}
        return f"{src.get('bucket', '')}/{src.get('object', '')}"

    def _fn_validate(self, fn: dict[str, Any]) -> None:
        build = fn.get("buildConfig")
        if not build:
            raise invalid("Function.build_config is required.")
        runtime = build.get("runtime", "")
        if not _RUNTIME_RE.fullmatch(runtime):
            raise invalid(f'Invalid runtime "{runtime}" in build_config.runtime.')
        if not build.get("entryPoint"):
            raise invalid("build_config.entry_point is required.")
        source = build.get("source") or {}
        storage = source.get("storageSource")
        if storage is None and source.get("repoSource") is None:
            raise invalid("build_config.source is required (storage_source or repo_source).")
        if storage is not None:
            key = f"{storage.get('bucket', '')}/{storage.get('object', '')}"
            if key not in self._uploads:
                raise invalid(
                    f"build_config.source.storage_source: object gs://{key} not found; upload it to the URL from generateUploadUrl first."
                )
        service = fn.get("serviceConfig") or {}
        sa = service.get("serviceAccountEmail")
        if sa is not None and not is_email(sa):
            raise invalid(f'Invalid service_config.service_account_email "{sa}".')
        memory = service.get("availableMemory")
        if memory is not None and not _MEMORY_RE.fullmatch(memory):
            raise invalid(f'Invalid service_config.available_memory "{memory}".')
        timeout = service.get("timeoutSeconds")
        if timeout is not None and not 1 <= int(timeout) <= 3600:
            raise invalid("service_config.timeout_seconds must be between 1 and 3600.")
        for key in service.get("environmentVariables") or {}:
            if key in _RESERVED_ENV or key.startswith("X_GOOGLE_") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise invalid(f'Environment variable name "{key}" is reserved or invalid.')
        validate_labels(fn.get("labels"))

    def _fn_busy(self, name: str) -> None:
        """A second change while an operation on the function runs: Functions v2 answers
        409 ABORTED "unable to queue the operation" (docs/fidelity.md, Long-running operations)."""
        for rec in self._operations.values():
            if rec["meta"].get("function") == name and not rec["op"].get("done"):
                raise ApiError("ABORTED", "unable to queue the operation")

    def _fn_new_operation(
        self, parent: str, verb: str, target: str, request_resource: dict[str, Any] | None, meta: dict[str, Any]
    ) -> dict[str, Any]:
        now = self.store.now()
        op_name = f"{parent}/operations/operation-{int(now * 1000)}-{uuid.uuid4().hex[:12]}"
        metadata: dict[str, Any] = {
            "@type": _FUNCTIONS_OPERATION_METADATA,
            "createTime": rfc3339(now),
            "target": target,
            "verb": verb,
            "cancelRequested": False,
            "apiVersion": "v2",
            "operationType": {"create": "CREATE_FUNCTION", "update": "UPDATE_FUNCTION", "delete": "DELETE_FUNCTION"}[
                verb
            ],
        }
        if request_resource is not None:
            metadata["requestResource"] = {"@type": _FUNCTION_TYPE, **request_resource}
        if verb != "delete":
            metadata["stages"] = _deploy_stages(0.0)
        op = {"name": op_name, "metadata": metadata, "done": False}
        self._operations[op_name] = {
            "op": op,
            "meta": {
                **meta,
                "start": now,
                "due": now + self.deploy_seconds,
                "function": target,
                "verb": verb,
            },
        }
        self.store.touch()
        return deep(op)

    def _fn_create(self, req: Request, parent: str) -> Any:
        fn = parse_body(req.body, "Function")
        function_id = (req.query.get("functionId") or [""])[0]
        if not FUNCTION_ID_RE.fullmatch(function_id):
            raise invalid(
                f'Invalid function_id "{function_id}": lowercase letters, digits and hyphens, starting with a letter, at most 63 characters.'
            )
        name = f"{parent}/functions/{function_id}"
        if fn.get("name") and fn["name"] != name:
            raise invalid(f'Function name "{fn["name"]}" does not match parent and function_id ({name}).')
        for key in _FN_OUTPUT_ONLY:
            fn.pop(key, None)
        with self.store.lock:
            self._fn_validate(fn)
            if name in self._functions:
                raise ApiError(
                    "ALREADY_EXISTS",
                    f"Function {function_id} in region {parent.split('/')[3]} in project {parent.split('/')[1]} already exists",
                )
            fn["name"] = name
            fn.setdefault("environment", "GEN_2")
            now = rfc3339(self.store.now())
            visible = {**deep(fn), "state": "DEPLOYING", "createTime": now, "updateTime": now}
            self._functions[name] = visible
            return self._fn_new_operation(parent, "create", name, deep(fn), {"pending": fn})

    def _fn_get_or_404(self, name: str) -> dict[str, Any]:
        fn = self._functions.get(name)
        if fn is None:
            raise not_found(f"Resource '{name}' was not found")
        return fn

    def _fn_get(self, req: Request, name: str) -> Any:
        self._fn_advance()
        with self.store.lock:
            return deep(self._fn_get_or_404(name))

    def _fn_list(self, req: Request, parent: str) -> Any:
        self._fn_advance()
        with self.store.lock:
            fns = [deep(f) for n, f in self._functions.items() if n.startswith(parent + "/")]
        return page("functions", fns, req.query, key=parent)

    def _fn_patch(self, req: Request, name: str) -> Any:
        self._fn_advance()
        patch = parse_body(req.body, "Function")
        if patch.get("name") and patch["name"] != name:
            raise invalid(f'Function name in body "{patch["name"]}" does not match the URL.')
        patch, paths = masked_patch(patch, req.query, mutable=_FN_MUTABLE, ignored={*_FN_OUTPUT_ONLY, "name"})
        with self.store.lock:
            current = self._fn_get_or_404(name)
            self._fn_busy(name)
            base = {k: v for k, v in current.items() if k not in _FN_OUTPUT_ONLY}
            # Server-filled fields are recomputed on completion; drop them from the base.
            svc = base.get("serviceConfig") or {}
            for key in ("uri", "revision", "service"):
                svc.pop(key, None)
            build = base.get("buildConfig") or {}
            for key in ("build", "sourceProvenance"):
                build.pop(key, None)
            updated = apply_update_mask(base, patch, paths)
            updated["name"] = name
            self._fn_validate(updated)
            current["state"] = "DEPLOYING"
            current["updateTime"] = rfc3339(self.store.now())
            parent = name.rsplit("/functions/", 1)[0]
            return self._fn_new_operation(parent, "update", name, deep(updated), {"pending": updated})

    def _fn_delete(self, req: Request, name: str) -> Any:
        self._fn_advance()
        with self.store.lock:
            current = self._fn_get_or_404(name)
            self._fn_busy(name)
            current["state"] = "DELETING"
            current["updateTime"] = rfc3339(self.store.now())
            parent = name.rsplit("/functions/", 1)[0]
            return self._fn_new_operation(parent, "delete", name, None, {})

    def _op_get(self, req: Request, name: str) -> Any:
        self._fn_advance()
        with self.store.lock:
            rec = self._operations.get(name)
            if rec is None:
                raise not_found(f"Operation '{name}' was not found")
            op, meta = rec["op"], rec["meta"]
            if not op.get("done") and "stages" in op["metadata"]:
                span = max(meta["due"] - meta.get("start", meta["due"]), 1e-9)
                op["metadata"]["stages"] = _deploy_stages((self.store.now() - meta.get("start", meta["due"])) / span)
            return deep(op)

    # -- operation completion --------------------------------------------------------------

    def _fn_advance(self) -> None:
        """Complete every due operation; hooks run outside the lock."""
        now = self.store.now()
        with self.store.lock:
            due = [
                rec
                for name, rec in self._operations.items()
                if not rec["op"].get("done") and name not in self._completing and now >= rec["meta"]["due"]
            ]
            self._completing.update(rec["op"]["name"] for rec in due)
            work = [(rec, deep(rec["meta"].get("pending")), self._fn_zip_for(rec)) for rec in due]
        for rec, pending, source in work:
            if rec["meta"]["verb"] == "delete":
                self._fn_complete_delete(rec)
                continue
            url, error = None, None
            try:
                function = self._fn_deployed_shape(pending)
                self._fn_build_check(function, source)
                hook = self.on_deployed
                url = hook(deep(function), source) if hook is not None else None
            except Exception as exc:  # a build/deploy failure
                log.info("function deployment failed: %s", exc)
                error = f"Build failed: {exc}"
            with self.store.lock:
                self._fn_finish_deploy(rec, function if error is None else pending, url, error)

    def _fn_complete_delete(self, rec: dict[str, Any]) -> None:
        """Run on_deleted (outside the lock), then finish the operation. The
        deletion completes even if the hook fails: the function is gone from the API."""
        with self.store.lock:
            function = deep(self._functions.get(rec["meta"]["function"]))
        hook = self.on_deleted
        if hook is not None and function is not None:
            try:
                hook(function)
            except Exception:
                log.exception("on_deleted failed for %s", rec["meta"]["function"])
        with self.store.lock:
            self._fn_finish_delete(rec)

    def _fn_zip_for(self, rec: dict[str, Any]) -> bytes:
        pending = rec["meta"].get("pending")
        if not pending:
            return b""
        data = self._uploads.get(self._fn_source_key(pending))
        return unb64(data) if data else b""

    @staticmethod
    def _fn_build_check(function: dict[str, Any], source: bytes) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(source)) as zf:
                names = set(zf.namelist())
        except zipfile.BadZipFile:
            raise ValueError("the uploaded source is not a zip archive") from None
        runtime = function["buildConfig"]["runtime"]
        if runtime.startswith("python") and "main.py" not in names:
            raise ValueError("File main.py that is expected to define function doesn't exist")
        if runtime.startswith("python") and "requirements.txt" not in names:
            log.info("source has no requirements.txt")

    def _fn_deployed_shape(self, pending: dict[str, Any]) -> dict[str, Any]:
        """The function as the real API shows it after a successful deploy (server defaults)."""
        fn = deep(pending)
        name = fn["name"]
        _, project, _, region, _, function_id = name.split("/")
        number = project_number(project)
        build = fn.setdefault("buildConfig", {})
        build["build"] = f"projects/{number}/locations/{region}/builds/{uuid.uuid4()}"
        build.setdefault("dockerRegistry", "ARTIFACT_REGISTRY")
        build.setdefault(
            "serviceAccount", f"projects/{project}/serviceAccounts/{number}-compute@developer.gserviceaccount.com"
        )
        storage = (build.get("source") or {}).get("storageSource")
        if storage is not None:
            storage.setdefault("generation", str(int(self.store.now() * 1_000_000)))
            build["sourceProvenance"] = {"resolvedStorageSource": deep(storage)}
        svc = fn.setdefault("serviceConfig", {})
        svc.setdefault("timeoutSeconds", 60)
        svc.setdefault("availableMemory", "256M")
        svc.setdefault("availableCpu", "0.1666")
        svc.setdefault("maxInstanceCount", 100)
        svc.setdefault("maxInstanceRequestConcurrency", 1)
        svc.setdefault("ingressSettings", "ALLOW_ALL")
        svc.setdefault("allTrafficOnLatestRevision", True)
        svc.setdefault("serviceAccountEmail", f"{number}-compute@developer.gserviceaccount.com")
        env = svc.setdefault("environmentVariables", {})
        env.setdefault("LOG_EXECUTION_ID", "true")
        svc["service"] = f"projects/{project}/locations/{region}/services/{function_id}"
        svc["revision"] = (
            f"{function_id}-{int(self.store.now()) % 100000:05d}-{short_hash(name, str(self.store.now()), length=3)}"
        )
        default_uri = f"https://{function_id}-{short_hash(project, length=10)}-{region_code(region)}.a.run.app"
        svc["uri"] = default_uri
        fn["url"] = f"https://{region}-{project}.cloudfunctions.net/{function_id}"
        fn.setdefault("environment", "GEN_2")
        return fn

    def _fn_finish_deploy(
        self, rec: dict[str, Any], function: dict[str, Any], url: str | None, error: str | None
    ) -> None:
        op, meta = rec["op"], rec["meta"]
        name = meta["function"]
        now = self.store.now()
        current = self._functions.get(name)
        op["metadata"]["endTime"] = rfc3339(now)
        op["done"] = True
        self._completing.discard(op["name"])
        meta.pop("pending", None)
        if error is not None:
            op["error"] = {"code": 3, "message": error}
            if current is not None:
                current["state"] = "FAILED"
                current["stateMessages"] = [{"severity": "ERROR", "type": "BuildFailed", "message": error}]
                current["updateTime"] = rfc3339(now)
            self.store.touch()
            return
        if url:
            function["serviceConfig"]["uri"] = url
            function["url"] = url
        if "stages" in op["metadata"]:
            op["metadata"]["stages"] = _deploy_stages(1.0)
        function["state"] = "ACTIVE"
        function["createTime"] = (current or {}).get("createTime", rfc3339(now))
        function["updateTime"] = rfc3339(now)
        function = canonical(function, "Function")
        self._functions[name] = function
        self._svc_upsert(function)
        op["response"] = {"@type": _FUNCTION_TYPE, **deep(function)}
        self.store.touch()

    def _fn_finish_delete(self, rec: dict[str, Any]) -> None:
        op, meta = rec["op"], rec["meta"]
        name = meta["function"]
        fn = self._functions.pop(name, None)
        self._policies.pop(name, None)
        service = ((fn or {}).get("serviceConfig") or {}).get("service")
        if service:
            self._services.pop(service, None)
            self._policies.pop(service, None)
        op["metadata"]["endTime"] = rfc3339(self.store.now())
        op["done"] = True
        op["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
        self._completing.discard(op["name"])
        self.store.touch()

    # -- Cloud Run v2 services -------------------------------------------------------------

    def _svc_upsert(self, function: dict[str, Any]) -> None:
        svc_cfg = function["serviceConfig"]
        name = svc_cfg["service"]
        now = rfc3339(self.store.now())
        existing = self._services.get(name)
        generation = int((existing or {}).get("generation", "0")) + 1
        revision = f"{name}/revisions/{svc_cfg['revision']}"
        project = name.split("/")[1]
        service = {
            "name": name,
            "uid": (existing or {}).get("uid") or str(uuid.uuid4()),
            "generation": str(generation),
            "labels": {"goog-managed-by": "cloudfunctions", **(function.get("labels") or {})},
            "createTime": (existing or {}).get("createTime", now),
            "updateTime": now,
            "creator": f"service-{project_number(project)}@gcf-admin-robot.iam.gserviceaccount.com",
            "lastModifier": f"service-{project_number(project)}@gcf-admin-robot.iam.gserviceaccount.com",
            "ingress": {
                "ALLOW_ALL": "INGRESS_TRAFFIC_ALL",
                "ALLOW_INTERNAL_ONLY": "INGRESS_TRAFFIC_INTERNAL_ONLY",
                "ALLOW_INTERNAL_AND_GCLB": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            }.get(svc_cfg.get("ingressSettings", "ALLOW_ALL"), "INGRESS_TRAFFIC_ALL"),
            "launchStage": "GA",
            "template": {
                "revision": svc_cfg["revision"],
                "serviceAccount": svc_cfg.get("serviceAccountEmail", ""),
                "timeout": f"{svc_cfg.get('timeoutSeconds', 60)}s",
                "maxInstanceRequestConcurrency": svc_cfg.get("maxInstanceRequestConcurrency", 1),
                "containers": [
                    {
                        "image": f"{name.split('/')[3]}-docker.pkg.dev/{project}/gcf-artifacts/{name.rsplit('/', 1)[-1]}:version_{generation}",
                        "env": [
                            {"name": k, "value": v}
                            for k, v in sorted((svc_cfg.get("environmentVariables") or {}).items())
                        ],
                        "resources": {
                            "limits": {
                                "cpu": svc_cfg.get("availableCpu", "0.1666"),
                                "memory": svc_cfg.get("availableMemory", "256M"),
                            }
                        },
                    }
                ],
            },
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "observedGeneration": str(generation),
            "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
            "latestReadyRevision": revision,
            "latestCreatedRevision": revision,
            "trafficStatuses": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "uri": svc_cfg["uri"],
            "urls": _service_urls(name, svc_cfg["uri"]),
            "etag": f'"{short_hash(name, str(generation), length=12)}"',
        }
        if (existing or {}).get("invokerIamDisabled"):
            # A service-level setting, not the revision template: a redeploy keeps it.
            service["invokerIamDisabled"] = True
        self._services[name] = canonical(service, "Service")

    def _svc_get(self, req: Request, name: str) -> Any:
        self._fn_advance()
        with self.store.lock:
            svc = self._services.get(name)
            if svc is None:
                raise not_found(
                    f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'SERVICE' in region '{name.split('/')[3]}' in project '{name.split('/')[1]}' does not exist."
                )
            return deep(svc)

    # -- IAM -------------------------------------------------------------------------------

    def _iam_resource_exists(self, name: str) -> bool:
        if "/services/" in name:
            return name in self._services
        return name in self._functions

    def _iam_get(self, req: Request, name: str) -> Any:
        self._fn_advance()
        version_text = (req.query.get("options.requestedPolicyVersion") or ["0"])[0]
        if version_text not in {"0", "1", "3"}:
            raise invalid(f"Invalid requested policy version {version_text}: must be 0, 1 or 3.")
        with self.store.lock:
            if not self._iam_resource_exists(name):
                raise not_found(f"Resource {name} does not exist.")
            return deep(self._policies.get(name, {"etag": "ACAB"}))

    def _iam_set(self, req: Request, name: str) -> Any:
        self._fn_advance()
        request = parse_body(req.body, "SetIamPolicyRequest")
        if "policy" not in request:
            raise invalid("SetIamPolicyRequest.policy is required.")
        policy = request["policy"]
        kind = "run" if "/services/" in name else "cloudfunctions"
        version = int(policy.get("version", 0))
        if version not in {0, 1, 3}:
            raise invalid(f"Invalid policy version {version}.")
        merged: dict[tuple[str, str], set[str]] = {}
        conditions: dict[tuple[str, str], Any] = {}
        for binding in policy.get("bindings") or []:
            role = binding.get("role", "")
            if not (
                re.fullmatch(r"roles/[A-Za-z0-9_.]+", role)
                or re.fullmatch(r"(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+", role)
            ):
                raise invalid(f"Role {role!r} is not a valid role name.")
            if role.startswith("roles/") and role not in _BASIC_ROLES and not role.startswith(f"roles/{kind}."):
                raise invalid(f"Role {role} is not supported for this resource.")
            for member in binding.get("members") or []:
                if not _MEMBER_RE.fullmatch(member):
                    raise invalid(f"Invalid member {member!r} in binding for {role}.")
            binding["members"] = [_member_normal_form(member) for member in binding.get("members") or []]
            if binding.get("condition") is not None and version < 3:
                raise invalid("Conditional role bindings require policy version 3.")
            cond = binding.get("condition")
            key = (role, repr(cond))
            merged.setdefault(key, set()).update(binding.get("members") or [])
            conditions[key] = cond
        bindings = []
        for key in sorted(merged):
            if not merged[key]:
                continue
            stored: dict[str, Any] = {"role": key[0], "members": sorted(merged[key])}
            if conditions[key] is not None:
                stored["condition"] = conditions[key]
            bindings.append(stored)
        with self.store.lock:
            if not self._iam_resource_exists(name):
                raise not_found(f"Resource {name} does not exist.")
            current = self._policies.get(name, {"etag": "ACAB"})
            if policy.get("etag") and policy["etag"] != current["etag"]:
                raise ApiError(
                    "ABORTED",
                    "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
                )
            new: dict[str, Any] = {"etag": base64.b64encode(b"\x07" + os.urandom(7)).decode()}
            if bindings:
                new["version"] = max(version, 1)
                new["bindings"] = bindings
            self._policies[name] = canonical(new, "Policy")
            self.store.touch()
            return deep(self._policies[name])


def _deploy_stages(progress: float) -> list[dict[str, Any]]:
    """`OperationMetadata.stages` of a create/update `progress` (0..1) of the way through:
    the build in its first half, the Cloud Run service in its second (Stage names and
    states: the v2 Discovery document; "Build in progress": a real operation's metadata,
    docs/fidelity.md). The service stage's own messages are not known, so none is made up."""
    if progress >= 1.0:
        return [{"name": "BUILD", "state": "COMPLETE"}, {"name": "SERVICE", "state": "COMPLETE"}]
    if progress >= 0.5:
        return [{"name": "BUILD", "state": "COMPLETE"}, {"name": "SERVICE", "state": "IN_PROGRESS"}]
    if progress > 0.0:
        return [
            {"name": "BUILD", "message": "Build in progress", "state": "IN_PROGRESS"},
            {"name": "SERVICE", "state": "NOT_STARTED"},
        ]
    return [{"name": "BUILD", "state": "NOT_STARTED"}, {"name": "SERVICE", "state": "NOT_STARTED"}]
