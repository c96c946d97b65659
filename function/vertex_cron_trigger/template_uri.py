"""Artifact Registry KFP URIs: `https://REGION-kfp.pkg.dev/PROJECT/REPO/PACKAGE/{TAG|sha256:DIGEST}`.

The deployer accepts either reference and resolves a tag once, at deploy time; the function
accepts only the pinned form (`sha256:` + 64 hex digits), so nothing resolves a tag at run
time. Shapes: the host is kfp's own `_KNOWN_HOSTS_REGEX` (`LOCATION-kfp.pkg.dev/PROJECT/REPO`);
a version is `sha256:` + the digest of the uploaded bytes (kubeflow/pipelines#7382) and a tag
may not start with `sha256:` (kfp RegistryClient._validate_tag); a tag's characters are those
the Artifact Registry Tag resource allows ([a-zA-Z0-9-._~:@], artifactregistry v1 Discovery).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION_PREFIX = "sha256:"
_URI_RE = re.compile(
    r"https://(?P<location>[a-z][a-z0-9-]{0,62})-kfp\.pkg\.dev"
    r"/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"/(?P<repository>[a-z][a-z0-9-]{0,62})"
    r"/(?P<package>[a-z0-9][a-z0-9._-]{0,127})"
    r"/(?P<reference>[A-Za-z0-9._~:@-]{1,128})"
)
_VERSION_RE = re.compile(r"sha256:[0-9a-f]{64}")
FORMS = "https://REGION-kfp.pkg.dev/PROJECT/REPO/PACKAGE/{TAG|sha256:DIGEST}"


@dataclass(frozen=True)
class TemplateUri:
    location: str
    project: str
    repository: str
    package: str
    reference: str  # a tag, or a version `sha256:<64 hex>`

    @property
    def is_pinned(self) -> bool:
        return self.reference.startswith(VERSION_PREFIX)

    @property
    def host(self) -> str:
        """kfp RegistryClient's `host`: the repository's URL."""
        return f"https://{self.location}-kfp.pkg.dev/{self.project}/{self.repository}"

    @property
    def repository_name(self) -> str:
        """The repository's Artifact Registry resource name."""
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"

    @property
    def package_name(self) -> str:
        return f"{self.repository_name}/packages/{self.package}"

    def pinned(self, version: str) -> TemplateUri:
        return TemplateUri(self.location, self.project, self.repository, self.package, version)

    def __str__(self) -> str:
        return f"{self.host}/{self.package}/{self.reference}"


def parse_template_uri(uri: str) -> TemplateUri | None:
    """The parts of an Artifact Registry KFP URI; None when `uri` is not one."""
    match = _URI_RE.fullmatch(uri)
    if match is None:
        return None
    parsed = TemplateUri(**match.groupdict())
    if parsed.is_pinned and not _VERSION_RE.fullmatch(parsed.reference):
        return None  # `sha256:` is never a tag, and a version is exactly 64 lowercase hex digits
    return parsed
