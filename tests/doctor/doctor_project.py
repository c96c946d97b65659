"""The demo project doctor's tests set up: names, and the members infra/ would bind."""

from __future__ import annotations

from vertex_cron_local.provision import infra_service_accounts

PROJECT = "demo-project"
REGION = "europe-west1"
DEPLOYER = "user:dev@example.com"
SA = infra_service_accounts(PROJECT)


def member(identity: str) -> str:
    return DEPLOYER if identity == "deployer" else f"serviceAccount:{SA[identity]}"
