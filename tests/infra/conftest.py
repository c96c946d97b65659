"""infra/*.tf read as data: the module, and every IAM grant it makes, resolved to
(identity, scope, permissions) in the terms of vertex_cron.permissions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import hcl2
import pytest
from hcl2 import SerializationOptions
from vertex_cron.permissions import Scope

INFRA = Path(__file__).resolve().parents[2] / "infra"

_CUSTOM_ROLE = re.compile(r'google_project_iam_custom_role\.vertex_cron\["(\w+)"\]\.id')
_SA_MEMBER = re.compile(r'^\$\{google_service_account\.vertex_cron\["(\w+)"\]\.member\}$')
_SA_NAME = re.compile(r'google_service_account\.vertex_cron\[(?:"(\w+)"|each\.key)\]\.name')
_TOSET_LITERAL = re.compile(r"^\$\{toset\(\[(.*)\]\)\}$")


@dataclass(frozen=True)
class Grant:
    """One role binding: `identity` holds `role` on `scope` (under `condition`, if any)."""

    address: str
    identity: str
    scope: Scope
    role: str  # a custom role key from roles.tf, or the raw role expression
    condition: str | None


class Module:
    def __init__(self, directory: Path) -> None:
        options = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
        self.directory = directory
        self.blocks: dict[str, list] = {}
        for path in sorted(directory.glob("*.tf")):
            with path.open() as f:
                for kind, entries in hcl2.load(f, serialization_options=options).items():
                    self.blocks.setdefault(kind, []).extend(entries)

    def resources(self, kind: str) -> dict[str, dict]:
        return {
            name: body
            for entry in self.blocks.get("resource", [])
            for k, named in entry.items()
            if k == kind
            for name, body in named.items()
        }

    def named(self, kind: str) -> dict[str, dict]:
        """Top-level `variable`/`output` blocks by name; `locals` merged into one dict."""
        return {name: body for entry in self.blocks.get(kind, []) for name, body in entry.items()}

    def custom_roles(self) -> dict[str, frozenset[str]]:
        return {key: frozenset(role["permissions"]) for key, role in self.named("locals")["custom_roles"].items()}

    def grants(self) -> list[Grant]:
        kinds = (
            "google_project_iam_member",
            "google_storage_bucket_iam_member",
            "google_artifact_registry_repository_iam_member",
            "google_service_account_iam_member",
        )
        return [
            grant
            for kind in kinds
            for name, body in self.resources(kind).items()
            for grant in _grants(kind, name, body)
        ]


def _grants(kind: str, name: str, body: dict) -> list[Grant]:
    role_ref = _CUSTOM_ROLE.search(body["role"])
    role = role_ref.group(1) if role_ref else body["role"]
    condition = body["condition"][0] if "condition" in body else None
    expression = condition["expression"] if condition else None
    identity = _identity(body["member"])
    if kind == "google_service_account_iam_member":
        sa = _SA_NAME.search(body["service_account_id"])
        if sa.group(1):
            return [Grant(f"{kind}.{name}", identity, Scope(f"{sa.group(1)}-sa"), role, expression)]
        return [
            Grant(f'{kind}.{name}["{t}"]', identity, Scope(f"{t}-sa"), role, expression)
            for t in _each_keys(body["for_each"])
        ]
    if kind == "google_artifact_registry_repository_iam_member":
        function_images = "google_artifact_registry_repository.function_images" in body["repository"]
        scope = Scope.BUILD_REPOSITORY if function_images else Scope.PIPELINE_REPOSITORY
    elif condition:
        scope = Scope(condition["title"])
    elif kind == "google_storage_bucket_iam_member":
        scope = Scope.BUCKET
    else:
        scope = Scope.PROJECT
    return [Grant(f"{kind}.{name}", identity, scope, role, expression)]


def _identity(member: str) -> str:
    if member == "${var.deployer_member}":
        return "deployer"
    match = _SA_MEMBER.match(member)
    assert match, f"grant to an unexpected member {member!r}"
    return match.group(1)


def _each_keys(for_each: str) -> list[str]:
    match = _TOSET_LITERAL.match(for_each)
    assert match, f"for_each over something other than a literal set: {for_each!r}"
    return re.findall(r'"(\w+)"', match.group(1))


@pytest.fixture(scope="session")
def module() -> Module:
    return Module(INFRA)
