"""The function's environment (see ARCHITECTURE.md), read once per process and lazily,
so importing the module costs nothing and a misconfiguration surfaces as a JSON 500."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"

REQUIRED = (
    "VERTEX_CRON_PROJECT",
    "VERTEX_CRON_REGION",
    "VERTEX_CRON_WORKLOAD_SA",
    "VERTEX_CRON_SPEC_BUCKET",
)


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    workload_sa: str
    spec_bucket: str
    allowed_invokers: frozenset[str]
    audiences: tuple[str, ...]  # empty: derive from the request URL
    certs_url: str
    vertex_emulator: str | None
    storage_emulator: str | None
    on_cloud_run: bool  # K_SERVICE set: the platform already checked the signature

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        from .errors import ConfigError

        for name in REQUIRED:
            if not env.get(name, "").strip():
                raise ConfigError(f"environment variable {name} is not set; the deployer sets it")
        return cls(
            project=env["VERTEX_CRON_PROJECT"].strip(),
            region=env["VERTEX_CRON_REGION"].strip(),
            workload_sa=env["VERTEX_CRON_WORKLOAD_SA"].strip(),
            spec_bucket=env["VERTEX_CRON_SPEC_BUCKET"].strip(),
            allowed_invokers=frozenset(_csv(env.get("VERTEX_CRON_ALLOWED_INVOKERS"), lower=True)),
            audiences=tuple(_csv(env.get("VERTEX_CRON_AUDIENCE"))),
            certs_url=env.get("VERTEX_CRON_OIDC_CERTS_URL", "").strip() or GOOGLE_CERTS_URL,
            vertex_emulator=_url(env.get("VERTEX_CRON_EMULATOR_HOST")),
            storage_emulator=_url(env.get("STORAGE_EMULATOR_HOST")),
            on_cloud_run=bool(env.get("K_SERVICE")),
        )

    @classmethod
    def for_submitter(cls, env: Mapping[str, str], *, project: str, region: str, workload_sa: str) -> Settings:
        """Settings for code that submits and follows PipelineJobs from outside the function
        (the Luigi task): where runs go, as whom, and the emulator variables of `env`.

        Never for the function's entry point: there is no spec bucket (an empty one, so a
        spec URI checked against it would be refused) and no invokers to verify tokens of.
        """
        return cls(
            project=project,
            region=region,
            workload_sa=workload_sa,
            spec_bucket="",
            allowed_invokers=frozenset(),
            audiences=(),
            certs_url=GOOGLE_CERTS_URL,
            vertex_emulator=_url(env.get("VERTEX_CRON_EMULATOR_HOST")),
            storage_emulator=_url(env.get("STORAGE_EMULATOR_HOST")),
            on_cloud_run=False,
        )


@functools.cache
def settings() -> Settings:
    """The process's settings; a ConfigError is not cached, so fixing the env is enough."""
    return Settings.from_env(os.environ)


def _csv(value: str | None, *, lower: bool = False) -> list[str]:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return [item.lower() for item in items] if lower else items


def _url(value: str | None) -> str | None:
    value = (value or "").strip().rstrip("/")
    if not value:
        return None
    # STORAGE_EMULATOR_HOST is conventionally given with or without a scheme.
    return value if "://" in value else f"http://{value}"
