"""A project set up the way infra/ sets it up, on the emulators, and ways to break it.

`setup_project(...)` writes vertex_cron_local.provision's infra state (derived from
permissions.GRANTS, which tests/infra proves equal to what infra/*.tf grants): every
required API enabled, the four service accounts, the custom roles, every binding (prefix
grants conditional, as in infra), and a caller holding what testIamPermissions would
report for the deployer. Its keyword arguments leave one thing out, or add one, to make a
"broken" variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner
from doctor_project import DEPLOYER, PROJECT, REGION, SA
from vertex_cron.cli import cli
from vertex_cron.permissions import GRANTS, Scope
from vertex_cron_local.provision import iam_resource, infra_state, write


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
        missing = set(missing_grants)
        state = infra_state(
            project=PROJECT,
            region=REGION,
            bucket=spec_bucket,
            service_accounts=SA,
            deployer_member=DEPLOYER,
            grants=[g for g in GRANTS if (g.identity, g.scope) not in missing],
        )
        lacks: dict[str | None, set[str]] = {}
        for scope, permission in caller_lacks:
            resource = iam_resource(scope, project=PROJECT, bucket=spec_bucket, service_accounts=SA)
            lacks.setdefault(resource, set()).add(permission)
        project = f"projects/{PROJECT}"
        write(
            replace(
                state,
                apis=state.apis - set(disabled_apis),
                service_accounts=state.service_accounts - {SA[identity] for identity in missing_sas},
                policies={**state.policies, project: (*state.policies.get(project, ()), *extra_project_bindings)},
                caller_permissions={
                    resource: held - lacks.get(resource, set()) for resource, held in state.caller_permissions.items()
                },
            ),
            emulator,
            storage_emulator,
        )

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
