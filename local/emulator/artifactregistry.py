"""Artifact Registry v1 for KFP repositories: what `kfp.registry.RegistryClient` calls.

Two surfaces, both on the emulator's one port:

- The REST API (`artifactregistry.googleapis.com`, real paths under /v1): repositories
  create (a done Operation) and get; packages get/list; versions get/list; tags
  create/get/list/patch/delete. Requests are checked against the artifactregistry v1
  Discovery document like every emulated API's (discovery.py).
- The KFP host `https://LOCATION-kfp.pkg.dev/PROJECT/REPO`, which has no googleapis path.
  Its one mapping, used by the deployer and by this emulator alike: the host becomes the
  first path segment, `{VERTEX_CRON_EMULATOR_HOST}/LOCATION-kfp.pkg.dev/PROJECT/REPO/...`.
  `POST` there is kfp's upload (multipart: file field `content`, form field `tags`,
  comma-separated), answered with the text `PACKAGE/sha256:DIGEST`; `GET .../PACKAGE/REF`
  downloads a version by `sha256:` digest or by tag.

A version is named `sha256:` + the SHA-256 of the uploaded bytes; a tag points at one
version of its package, and an upload's tags move to the new version. The package is named
after the pipeline (`pipelineInfo.name` of the uploaded YAML or JSON document). Sources
for each behaviour: docs/fidelity.md, "Artifact Registry (KFP)".
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
from typing import Any

import yaml

from .common import ApiError, b64, deep, invalid, not_found, page, parse_update_mask, rfc3339, unb64
from .routing import Request, Response, Route
from .store import Store

_REPOSITORIES = r"projects/(?P<project>[^/:]+)/locations/(?P<location>[^/:]+)/repositories"
_REPOSITORY = rf"{_REPOSITORIES}/(?P<repository>[^/:]+)"
_PACKAGE = rf"{_REPOSITORY}/packages/(?P<package>[^/:]+)"
_KFP_REPOSITORY = r"/(?P<location>[a-z0-9-]+)-kfp\.pkg\.dev/(?P<project>[^/]+)/(?P<repository>[^/]+)"
_VERSION_ID = re.compile(r"sha256:[0-9a-f]{64}")
_TAG_ID = re.compile(r"[A-Za-z0-9._~:@-]{1,128}")
_VERSION_PREFIX = "sha256:"


def _json_body(raw: bytes) -> dict[str, Any]:
    """A JSON object body; its fields were checked against the Discovery document on the way
    in (discovery.py, as for every emulated API)."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise invalid(f"Invalid JSON payload received. {exc}") from None
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received. Expected a JSON object.")
    return body


class ArtifactRegistry:
    """Artifact Registry v1 KFP repositories, and their `LOCATION-kfp.pkg.dev` host, over the emulator's store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._registry = store.collection("artifactRegistry")

    def routes(self) -> list[Route]:
        return [
            Route("POST", rf"/v1/{_REPOSITORIES}", self._ar_repository_create, ("repositoryId",)),
            Route("GET", rf"/v1/{_REPOSITORY}", self._ar_repository_get),
            Route("GET", rf"/v1/{_REPOSITORY}/packages", self._ar_package_list, ("pageSize", "pageToken")),
            Route("GET", rf"/v1/{_PACKAGE}", self._ar_package_get),
            Route("GET", rf"/v1/{_PACKAGE}/versions", self._ar_version_list, ("pageSize", "pageToken")),
            Route("GET", rf"/v1/{_PACKAGE}/versions/(?P<version>[^/]+)", self._ar_version_get),
            Route("GET", rf"/v1/{_PACKAGE}/tags", self._ar_tag_list, ("pageSize", "pageToken")),
            Route("POST", rf"/v1/{_PACKAGE}/tags", self._ar_tag_create, ("tagId",)),
            Route("GET", rf"/v1/{_PACKAGE}/tags/(?P<tag>[^/]+)", self._ar_tag_get),
            Route("PATCH", rf"/v1/{_PACKAGE}/tags/(?P<tag>[^/]+)", self._ar_tag_patch, ("updateMask",)),
            Route("DELETE", rf"/v1/{_PACKAGE}/tags/(?P<tag>[^/]+)", self._ar_tag_delete),
            # The KFP host (kfp's upload and download) has no googleapis path and no Discovery document.
            Route("POST", _KFP_REPOSITORY, self._kfp_upload, described=False),
            Route(
                "GET",
                rf"{_KFP_REPOSITORY}/(?P<package>[^/]+)/(?P<reference>[^/]+)",
                self._kfp_download,
                described=False,
            ),
        ]

    # -- state -----------------------------------------------------------------------------

    @property
    def _ar(self) -> dict[str, dict[str, Any]]:
        """Repositories, packages, versions and tags, by name (each made again after a reset)."""
        for kind in ("repositories", "packages", "versions", "tags"):
            self._registry.setdefault(kind, {})
        return self._registry

    def _ar_stored(self, collection: str, name: str, what: str) -> dict[str, Any]:
        """The stored resource `name` of `collection`, or Artifact Registry's 404 naming `what`."""
        found = self._ar[collection].get(name)
        if found is None:
            raise not_found(f"Requested entity was not found. ({what})")
        return found

    def _ar_repository(self, project: str, location: str, repository: str) -> dict[str, Any]:
        name = f"projects/{project}/locations/{location}/repositories/{repository}"
        found = self._ar["repositories"].get(name)
        if found is None:
            raise not_found(f"Requested entity was not found. (repository {name})")
        return found

    def _ar_kfp_repository(self, project: str, location: str, repository: str) -> str:
        found = self._ar_repository(project, location, repository)
        if found.get("format") != "KFP":
            raise ApiError(
                "FAILED_PRECONDITION", f"Repository {found['name']} is a {found.get('format')} repository, not KFP."
            )
        return found["name"]

    def _ar_resolve(self, package: str, reference: str) -> dict[str, Any]:
        """The version record `reference` (a `sha256:` version or a tag) names in `package`."""
        if reference.startswith(_VERSION_PREFIX):
            version = self._ar["versions"].get(f"{package}/versions/{reference}")
        else:
            tag = self._ar["tags"].get(f"{package}/tags/{reference}")
            version = self._ar["versions"].get(tag["version"]) if tag else None
        if version is None:
            raise not_found(f"Requested entity was not found. ({package}: {reference})")
        return version

    def kfp_template_version(self, template_uri: str) -> str | None:
        """The version (`sha256:...`) an Artifact Registry KFP URI names, for Vertex AI's
        templateMetadata; None when the URI is not one. NOT_FOUND when nothing is there."""
        match = re.fullmatch(rf"https://{_KFP_REPOSITORY[1:]}/(?P<package>[^/]+)/(?P<reference>[^/]+)", template_uri)
        if match is None:
            return None
        parts = match.groupdict()
        with self.store.lock:
            repository = self._ar_kfp_repository(parts["project"], parts["location"], parts["repository"])
            return self._ar_resolve(f"{repository}/packages/{parts['package']}", parts["reference"])["name"].rsplit(
                "/", 1
            )[1]

    # -- REST: repositories, packages, versions, tags --------------------------------------

    def _ar_repository_create(self, req: Request, project: str, location: str) -> Any:
        body = _json_body(req.body)
        repository_id = (req.query.get("repositoryId") or [""])[0]
        if not re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", repository_id):
            raise invalid(f'Invalid repository id "{repository_id}".')
        name = f"projects/{project}/locations/{location}/repositories/{repository_id}"
        now = rfc3339(self.store.now())
        with self.store.lock:
            if name in self._ar["repositories"]:
                raise ApiError("ALREADY_EXISTS", f"the repository already exists: {name}")
            repository = {
                **body,
                "name": name,
                "format": body.get("format", "FORMAT_UNSPECIFIED"),
                "createTime": now,
                "updateTime": now,
            }
            self._ar["repositories"][name] = repository
            self.store.touch()
        return {
            "name": f"projects/{project}/locations/{location}/operations/create-{repository_id}",
            "done": True,
            "response": {"@type": "type.googleapis.com/google.devtools.artifactregistry.v1.Repository", **repository},
        }

    def _ar_repository_get(self, req: Request, project: str, location: str, repository: str) -> Any:
        with self.store.lock:
            return deep(self._ar_repository(project, location, repository))

    def _ar_package_get(self, req: Request, project: str, location: str, repository: str, package: str) -> Any:
        with self.store.lock:
            parent = self._ar_repository(project, location, repository)["name"]
            return deep(self._ar_stored("packages", f"{parent}/packages/{package}", f"package {package}"))

    def _ar_package_list(self, req: Request, project: str, location: str, repository: str) -> Any:
        with self.store.lock:
            parent = self._ar_repository(project, location, repository)["name"]
            items = [deep(p) for name, p in sorted(self._ar["packages"].items()) if name.startswith(f"{parent}/")]
        return self._ar_page("packages", items, req, parent)

    def _ar_version_get(
        self, req: Request, project: str, location: str, repository: str, package: str, version: str
    ) -> Any:
        with self.store.lock:
            parent = self._ar_repository(project, location, repository)["name"]
            name = f"{parent}/packages/{package}/versions/{version}"
            return self._ar_version_view(self._ar_stored("versions", name, f"version {version}"))

    def _ar_version_list(self, req: Request, project: str, location: str, repository: str, package: str) -> Any:
        with self.store.lock:
            parent = f"{self._ar_repository(project, location, repository)['name']}/packages/{package}"
            items = [
                self._ar_version_view(v)
                for name, v in sorted(self._ar["versions"].items())
                if name.startswith(f"{parent}/versions/")
            ]
        return self._ar_page("versions", items, req, parent)

    def _ar_version_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """A version as the API shows it: its tags related, its bytes not part of it."""
        view = {k: v for k, v in record.items() if k != "content"}
        related = [deep(t) for t in self._ar["tags"].values() if t["version"] == record["name"]]
        if related:
            view["relatedTags"] = sorted(related, key=lambda t: t["name"])
        return view

    def _ar_tag_list(self, req: Request, project: str, location: str, repository: str, package: str) -> Any:
        with self.store.lock:
            parent = f"{self._ar_repository(project, location, repository)['name']}/packages/{package}"
            items = [deep(t) for name, t in sorted(self._ar["tags"].items()) if name.startswith(f"{parent}/tags/")]
        return self._ar_page("tags", items, req, parent)

    def _ar_tag_get(self, req: Request, project: str, location: str, repository: str, package: str, tag: str) -> Any:
        with self.store.lock:
            parent = self._ar_repository(project, location, repository)["name"]
            return deep(self._ar_stored("tags", f"{parent}/packages/{package}/tags/{tag}", f"tag {tag}"))

    def _ar_tag_create(self, req: Request, project: str, location: str, repository: str, package: str) -> Any:
        body = _json_body(req.body)
        tag_id = (req.query.get("tagId") or [""])[0]
        with self.store.lock:
            parent = f"{self._ar_repository(project, location, repository)['name']}/packages/{package}"
            name = f"{parent}/tags/{tag_id}"
            if name in self._ar["tags"]:
                raise ApiError("ALREADY_EXISTS", f"Tag {tag_id} already exists.")
            self._ar_set_tag(parent, tag_id, body.get("version", ""))
            return deep(self._ar["tags"][name])

    def _ar_tag_patch(self, req: Request, project: str, location: str, repository: str, package: str, tag: str) -> Any:
        body = _json_body(req.body)
        mask = parse_update_mask(req.query)
        if mask is not None and set(mask) - {"version"}:
            raise invalid(f"Invalid update mask {mask}: only version can be updated.")
        with self.store.lock:
            parent = f"{self._ar_repository(project, location, repository)['name']}/packages/{package}"
            name = f"{parent}/tags/{tag}"
            if name not in self._ar["tags"]:
                raise not_found(f"Requested entity was not found. (tag {tag})")
            self._ar_set_tag(parent, tag, body.get("version", ""))
            return deep(self._ar["tags"][name])

    def _ar_tag_delete(self, req: Request, project: str, location: str, repository: str, package: str, tag: str) -> Any:
        with self.store.lock:
            parent = self._ar_repository(project, location, repository)["name"]
            if self._ar["tags"].pop(f"{parent}/packages/{package}/tags/{tag}", None) is None:
                raise not_found(f"Requested entity was not found. (tag {tag})")
            self.store.touch()
        return {}

    def _ar_set_tag(self, package: str, tag_id: str, version: str) -> None:
        """Point tag `tag_id` of `package` at `version` (a version resource name of that package)."""
        if not _TAG_ID.fullmatch(tag_id) or tag_id.startswith(_VERSION_PREFIX):
            raise invalid(f'Invalid tag id "{tag_id}".')
        if not version.startswith(f"{package}/versions/"):
            raise invalid(f'Invalid version "{version}": expected {package}/versions/VERSION.')
        if version not in self._ar["versions"]:
            raise not_found(f"Requested entity was not found. (version {version})")
        self._ar["tags"][f"{package}/tags/{tag_id}"] = {"name": f"{package}/tags/{tag_id}", "version": version}
        self.store.touch()

    def _ar_page(self, key: str, items: list[Any], req: Request, parent: str) -> dict[str, Any]:
        return page(key, items, req.query, key=f"{key}|{parent}")

    # -- the KFP host: upload and download ---------------------------------------------------

    def _kfp_upload(self, req: Request, project: str, location: str, repository: str) -> Response:
        content, tags = _multipart(req)
        package_id = _pipeline_name(content)
        digest = f"{_VERSION_PREFIX}{hashlib.sha256(content).hexdigest()}"
        now = rfc3339(self.store.now())
        with self.store.lock:
            parent = f"{self._ar_kfp_repository(project, location, repository)}/packages/{package_id}"
            package = self._ar["packages"].setdefault(parent, {"name": parent, "createTime": now})
            package["updateTime"] = now
            version = f"{parent}/versions/{digest}"
            self._ar["versions"][version] = {
                "name": version,
                "createTime": self._ar["versions"].get(version, {}).get("createTime", now),
                "updateTime": now,
                "content": b64(content),
            }
            for tag in tags:
                self._ar_set_tag(parent, tag, version)
            self.store.touch()
        return _text(f"{package_id}/{digest}")

    def _kfp_download(
        self, req: Request, project: str, location: str, repository: str, package: str, reference: str
    ) -> Response:
        with self.store.lock:
            parent = f"{self._ar_kfp_repository(project, location, repository)}/packages/{package}"
            content = unb64(self._ar_resolve(parent, reference)["content"])
        return _text(content, content_type="application/octet-stream")


def _text(data: str | bytes, *, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(200, data.encode() if isinstance(data, str) else data, {"Content-Type": content_type})


def _multipart(req: Request) -> tuple[bytes, list[str]]:
    """The `content` file and the comma-separated `tags` of kfp's upload form."""
    content_type = req.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise invalid(f"Expected a multipart/form-data upload, got {content_type or 'no Content-Type'}.")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + req.body
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name:
            fields[str(name)] = payload if isinstance(payload, bytes) else b""
    if "content" not in fields:
        raise invalid("The upload has no file field `content`.")
    tags = [t.strip() for t in fields.get("tags", b"").decode().split(",") if t.strip()]
    return fields["content"], tags


def _pipeline_name(content: bytes) -> str:
    """The package an upload goes to: the pipeline's name, as KFP compiles it into the spec."""
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError:
        document = None
    info = document.get("pipelineInfo") if isinstance(document, dict) else None
    name = info.get("name") if isinstance(info, dict) else None
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,127}", name):
        raise invalid("The uploaded file is not a KFP pipeline template: no valid pipelineInfo.name.")
    return name
