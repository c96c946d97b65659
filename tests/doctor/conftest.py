"""A project set up the way infra/ sets it up, on the emulators, and ways to break it.

`setup_project(...)` builds the "healthy" state from vertex_cron.permissions.GRANTS (which
tests/infra proves equal to what infra/*.tf grants): every required API enabled, the four
service accounts, the custom roles, every binding (prefix grants conditional, as in infra),
and a caller holding what testIamPermissions would report for the deployer. Its keyword
arguments leave one thing out, or add one, to make a "broken" variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from click.testing import CliRunner

from vertex_cron.cli import cli
from doctor_project import (
    CONDITIONAL,
    ON_BUCKET,
    ON_PROJECT,
    PROJECT,
    REGION,
    SA,
    SA_SCOPES,
    member,
    sa_resource,
)

from vertex_cron.permissions import GRANTS, REQUIRED_APIS, Scope, names, role_permissions

@pytest.fixture
def setup_project(emulator, storage_emulator, spec_bucket) -> Callable[..., None]:
    def build(
        *,
        disabled_apis: Iterable[str] = (),
        missing_sas: Iterable[str] = (),
        missing_grants: Iterable[tuple[str, Scope]] = (),
        extra_project_bindings: Iterable[dict[str, Any]] = (),
        caller_lacks: Iterable[tuple[Scope, str]] = (),
    ) -> None:
        emulator.enable_services(PROJECT, *(api for api, _ in REQUIRED_APIS if api not in set(disabled_apis)))
        for identity, email in SA.items():
            if identity not in set(missing_sas):
                emulator.add_service_account(PROJECT, email)
        project: list[dict[str, Any]] = list(extra_project_bindings)
        bucket: list[dict[str, Any]] = []
        accounts: dict[str, list[dict[str, Any]]] = {}
        for grant in GRANTS:
            role = f"projects/{PROJECT}/roles/{grant.role_id}"
            emulator.put_role(role, role_permissions(grant.role))
            if (grant.identity, grant.scope) in set(missing_grants):
                continue
            binding: dict[str, Any] = {"role": role, "members": [member(grant.identity)]}
            if grant.scope in CONDITIONAL:
                binding["condition"] = {"title": grant.scope.value, "expression": "resource.name.startsWith(\"...\")"}
            if grant.scope in ON_PROJECT:
                project.append(binding)
            elif grant.scope in ON_BUCKET:
                bucket.append(binding)
            elif grant.scope in SA_SCOPES:
                accounts.setdefault(SA[SA_SCOPES[grant.scope]], []).append(binding)
        emulator.set_policy(f"projects/{PROJECT}", project)
        storage_emulator.bucket_policies[spec_bucket] = bucket
        for email, bindings in accounts.items():
            emulator.set_policy(sa_resource(email), bindings)
        # The caller is the deployer. testIamPermissions never reports prefix-conditioned grants.
        lacks = set(caller_lacks)
        emulator.caller_permissions[f"projects/{PROJECT}"] = {
            p for p in names("deployer", Scope.PROJECT) if (Scope.PROJECT, p) not in lacks}
        storage_emulator.caller_permissions[spec_bucket] = {
            p for p in names("deployer", Scope.BUCKET) if (Scope.BUCKET, p) not in lacks}
        for scope, identity in SA_SCOPES.items():
            emulator.caller_permissions[sa_resource(SA[identity])] = {
                p for p in names("deployer", scope) if (scope, p) not in lacks}

    return build


@pytest.fixture
def doctor_cli(emulator_env, spec_bucket, tmp_path, monkeypatch) -> Callable[..., Any]:
    """`doctor_cli("doctor", ...)`: the CLI in an empty directory, configured for SA and the bucket."""
    monkeypatch.chdir(tmp_path)
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "VERTEX_CRON_PROJECT": PROJECT,
        "VERTEX_CRON_REGION": REGION,
        "VERTEX_CRON_BUCKET": spec_bucket,
        "VERTEX_CRON_FUNCTION_SA": SA["function"],
        "VERTEX_CRON_SCHEDULER_SA": SA["scheduler"],
        "VERTEX_CRON_WORKLOAD_SA": SA["workload"],
        "VERTEX_CRON_BUILD_SA": SA["build"],
        "VERTEX_CRON_POLL_SECONDS": "0.02",
        **emulator_env,
    }

    def run(*args: str, **extra_env: str) -> Any:
        return CliRunner().invoke(cli, list(args), env={**env, **extra_env}, catch_exceptions=False)

    return run
