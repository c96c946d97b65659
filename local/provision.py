"""A project as `terraform apply` of infra/ leaves it, set up in the local emulators.

So that `vertex-cron doctor` against the local stack sees a project like a real one after
`terraform apply`, not an empty one. infra/*.tf is not run here: tests/infra proves it
grants exactly permissions.py's GRANTS, so everything is derived from permissions.py:
every REQUIRED_APIS entry enabled, infra's service accounts (`vertex-cron-IDENTITY`), the
custom roles `vertexCron_ROLE`, one binding per grant where iam.tf binds it (prefix grants
with iam.tf's IAM condition), and what testIamPermissions reports for the deployer. Plus
what Google itself adds when infra/apis.tf enables Cloud Scheduler: its service agent's
role on the project.

`infra_state(...)` computes that state as plain data (tests break one part of it to get a
"broken" project) and `write(...)` puts it in the emulators; `provision_project` does both.
Everything written replaces what was there, so provisioning again (a restarted stack
with a reused state directory) converges, as a second `terraform apply` would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vertex_cron.doctor import IDENTITY_SETTING, SA_SCOPE_IDENTITY, _prefix_condition
from vertex_cron.permissions import (
    GRANTS,
    OBJECT_PREFIXES,
    REQUIRED_APIS,
    SCHEDULER_AGENT_ROLE,
    Grant,
    Scope,
    role_permissions,
    scheduler_agent,
)
from vertex_cron_local.emulator import Emulator
from vertex_cron_local.emulator.common import project_number
from vertex_cron_local.storage import StorageEmulator

# The member the local stack's caller stands for: the emulators' caller is anonymous, so
# its grants (infra's deployer_member) need a name of their own.
LOCAL_DEPLOYER_MEMBER = "user:developer@example.com"

_BUCKET_RESOURCE = "projects/_/buckets/"  # IAM's name for a bucket; its policy lives in storage
_ON_PROJECT = (Scope.PROJECT, Scope.FUNCTION_SOURCES)
_ON_BUCKET = (Scope.BUCKET, *OBJECT_PREFIXES)


@dataclass(frozen=True)
class InfraState:
    """What the emulators hold for a provisioned project. Policies and caller permissions
    are keyed by IAM resource name: `projects/P`, `projects/P/serviceAccounts/EMAIL` and
    `projects/_/buckets/B` (which goes to the storage emulator)."""

    project: str
    apis: frozenset[str]
    service_accounts: frozenset[str]
    roles: Mapping[str, frozenset[str]]
    policies: Mapping[str, tuple[dict[str, Any], ...]]
    caller_permissions: Mapping[str, frozenset[str]]


def infra_service_accounts(project: str) -> dict[str, str]:
    """identity -> email of the service accounts infra/service_accounts.tf creates."""
    return {identity: f"vertex-cron-{identity}@{project}.iam.gserviceaccount.com" for identity in IDENTITY_SETTING}


def iam_resource(scope: Scope, *, project: str, bucket: str, service_accounts: Mapping[str, str]) -> str | None:
    """The IAM resource whose policy carries a grant on `scope`; None for the Artifact
    Registry repository, which the emulators do not have (doctor does not read it)."""
    if scope in _ON_PROJECT:
        return f"projects/{project}"
    if scope in _ON_BUCKET:
        return _BUCKET_RESOURCE + bucket
    if scope in SA_SCOPE_IDENTITY:
        return f"projects/{project}/serviceAccounts/{service_accounts[SA_SCOPE_IDENTITY[scope]]}"
    return None


def infra_state(
    *,
    project: str,
    region: str,
    bucket: str,
    service_accounts: Mapping[str, str],
    deployer_member: str,
    grants: Iterable[Grant] = GRANTS,
) -> InfraState:
    """The state infra/ creates with these inputs; `grants` leaves some out (tests)."""
    agent = {"role": SCHEDULER_AGENT_ROLE, "members": [f"serviceAccount:{scheduler_agent(project_number(project))}"]}
    policies: dict[str, list[dict[str, Any]]] = {f"projects/{project}": [agent]}
    caller: dict[str, set[str]] = {}
    for grant in grants:
        resource = iam_resource(grant.scope, project=project, bucket=bucket, service_accounts=service_accounts)
        if resource is None:
            continue
        member = (
            deployer_member if grant.identity == "deployer" else f"serviceAccount:{service_accounts[grant.identity]}"
        )
        binding: dict[str, Any] = {"role": _role_name(project, grant), "members": [member]}
        condition = _condition(grant, project=project, region=region, bucket=bucket)
        if condition is not None:
            binding["condition"] = condition
        _merge(policies.setdefault(resource, []), binding)
        # testIamPermissions tests the caller (the deployer) and never reports what only a
        # conditional grant gives, as on Google Cloud.
        if grant.identity == "deployer" and condition is None:
            caller.setdefault(resource, set()).update(role_permissions(grant.role))
    return InfraState(
        project=project,
        apis=frozenset(api for api, _ in REQUIRED_APIS),
        service_accounts=frozenset(service_accounts.values()),
        roles={_role_name(project, g): role_permissions(g.role) for g in GRANTS},
        policies={resource: tuple(bindings) for resource, bindings in policies.items()},
        caller_permissions={resource: frozenset(held) for resource, held in caller.items()},
    )


def write(state: InfraState, emulator: Emulator, storage: StorageEmulator) -> None:
    """Put `state` into the emulators, replacing each policy and caller answer it names."""
    emulator.enable_services(state.project, *sorted(state.apis))
    for email in sorted(state.service_accounts):
        emulator.add_service_account(state.project, email)
    for role, permissions in state.roles.items():
        emulator.put_role(role, permissions)
    for resource, bindings in state.policies.items():
        if resource.startswith(_BUCKET_RESOURCE):
            storage.bucket_policies[resource.removeprefix(_BUCKET_RESOURCE)] = list(bindings)
        else:
            emulator.set_policy(resource, list(bindings))
    for resource, held in state.caller_permissions.items():
        if resource.startswith(_BUCKET_RESOURCE):
            storage.caller_permissions[resource.removeprefix(_BUCKET_RESOURCE)] = set(held)
        else:
            emulator.caller_permissions[resource] = set(held)


def provision_project(
    emulator: Emulator,
    storage: StorageEmulator,
    *,
    project: str,
    region: str,
    bucket: str,
    service_accounts: Mapping[str, str],
    deployer_member: str,
) -> None:
    """Make the emulated `project` look as it does after `terraform apply` of infra/."""
    state = infra_state(
        project=project,
        region=region,
        bucket=bucket,
        service_accounts=service_accounts,
        deployer_member=deployer_member,
    )
    write(state, emulator, storage)


def _role_name(project: str, grant: Grant) -> str:
    return f"projects/{project}/roles/{grant.role_id}"


def _condition(grant: Grant, *, project: str, region: str, bucket: str) -> dict[str, str] | None:
    """iam.tf's condition on this grant, titled after its scope as there."""
    if grant.scope in OBJECT_PREFIXES:
        listing = "storage.objects.list" in role_permissions(grant.role)
        expression = _prefix_condition(bucket, OBJECT_PREFIXES[grant.scope], listing=listing)
    elif grant.scope is Scope.FUNCTION_SOURCES:
        # infra/build.tf's function_sources_bucket: Cloud Functions creates it on first deploy
        sources = f"gcf-v2-sources-{project_number(project)}-{region}"
        expression = f'resource.name.startsWith("projects/_/buckets/{sources}/objects/")'
    else:
        return None
    return {"title": grant.scope.value, "expression": expression}


def _merge(bindings: list[dict[str, Any]], binding: dict[str, Any]) -> None:
    """Add `binding`; a role bound twice under the same condition is one binding with both
    members, as IAM stores the iam_member resources of iam.tf."""
    same = next(
        (b for b in bindings if b["role"] == binding["role"] and b.get("condition") == binding.get("condition")), None
    )
    if same is None:
        bindings.append(binding)
    elif binding["members"][0] not in same["members"]:
        same["members"].append(binding["members"][0])
