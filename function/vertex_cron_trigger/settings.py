"""The function's environment (see ARCHITECTURE.md), read once per process and lazily,
so importing the module costs nothing and a misconfiguration surfaces as a JSON 500."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import NamedTuple

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
# An email address as IAM writes principals: local part, @, a dotted domain.
_EMAIL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")

DEFAULT_CATCH_UP_MAX_RUNS = 20
MAX_CATCH_UP_MAX_RUNS = 1000

REQUIRED = (
    "VERTEX_CRON_PROJECT",
    "VERTEX_CRON_REGION",
    "VERTEX_CRON_WORKLOAD_SA",
    "VERTEX_CRON_SPEC_BUCKET",
)


class Settings(NamedTuple):
    project: str
    region: str
    workload_sa: str
    spec_bucket: str
    allowed_invokers: frozenset[str]
    audiences: tuple[str, ...]  # empty (never on Cloud Run with invokers): the request URL
    certs_url: str
    vertex_emulator: str | None
    storage_emulator: str | None
    on_cloud_run: bool  # K_SERVICE set: the platform already checked the signature
    # The buckets runs may write their outputs to (their pipeline roots): those the deployer
    # configured, and only the spec bucket when none are set.
    pipeline_root_buckets: frozenset[str] = frozenset()
    # The most runs one catch-up sweep creates (VERTEX_CRON_CATCH_UP_MAX_RUNS): after an outage
    # of days the backlog is worked off a few runs per sweep instead of flooding Vertex AI.
    catch_up_max_runs: int = DEFAULT_CATCH_UP_MAX_RUNS
    # VERTEX_CRON_EMULATOR_CREDENTIALS=adc: the emulators get the application default
    # credentials' token too, as Google does (the benchmark pays for it as Cloud Run would).
    emulator_credentials: bool = False

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        from .errors import ConfigError

        for name in REQUIRED:
            if not env.get(name, "").strip():
                raise ConfigError(f"environment variable {name} is not set; the deployer sets it")
        allowed_invokers = _allowed_invokers(env.get("VERTEX_CRON_ALLOWED_INVOKERS"))
        audiences = tuple(_csv_list("VERTEX_CRON_AUDIENCE", env.get("VERTEX_CRON_AUDIENCE")))
        on_cloud_run = bool(env.get("K_SERVICE"))
        if on_cloud_run and allowed_invokers and not audiences:
            # Without it the audience would be read from the request's Host header, which
            # the caller chooses: the token check must not rest on that in production.
            raise ConfigError(
                "environment variable VERTEX_CRON_AUDIENCE is not set; on Cloud Run the token "
                "audience is never taken from the request (the deployer sets it to the function's URLs)"
            )
        return cls(
            project=env["VERTEX_CRON_PROJECT"].strip(),
            region=env["VERTEX_CRON_REGION"].strip(),
            workload_sa=env["VERTEX_CRON_WORKLOAD_SA"].strip(),
            spec_bucket=env["VERTEX_CRON_SPEC_BUCKET"].strip(),
            allowed_invokers=allowed_invokers,
            audiences=audiences,
            certs_url=_certs_url(env.get("VERTEX_CRON_OIDC_CERTS_URL")),
            vertex_emulator=_url(env.get("VERTEX_CRON_EMULATOR_HOST")),
            storage_emulator=_url(env.get("STORAGE_EMULATOR_HOST")),
            on_cloud_run=on_cloud_run,
            pipeline_root_buckets=_pipeline_root_buckets(env),
            catch_up_max_runs=_catch_up_max_runs(env.get("VERTEX_CRON_CATCH_UP_MAX_RUNS")),
            emulator_credentials=_emulator_credentials(env),
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
            emulator_credentials=_emulator_credentials(env),
        )


@functools.cache
def settings() -> Settings:
    """The process's settings; a ConfigError is not cached, so fixing the env is enough."""
    return Settings.from_env(os.environ)


def _csv_list(name: str, value: str | None) -> list[str]:
    """A comma-separated variable. Unset or empty means "not set"; set to nothing but commas
    and blanks (" , ", a template that rendered empty) it is an error, never "not set"."""
    from .errors import ConfigError

    if value is None or value == "":
        return []
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ConfigError(
            f"environment variable {name} is set to {value!r:.40} but names nothing; "
            "give comma-separated values or leave it unset"
        )
    return items


def _pipeline_root_buckets(env: Mapping[str, str]) -> frozenset[str]:
    from .errors import ConfigError
    from .spec_uri import is_bucket_name

    buckets = _csv_list("VERTEX_CRON_PIPELINE_ROOT_BUCKETS", env.get("VERTEX_CRON_PIPELINE_ROOT_BUCKETS"))
    malformed = [bucket for bucket in buckets if not is_bucket_name(bucket)]
    if malformed:
        raise ConfigError(
            f"environment variable VERTEX_CRON_PIPELINE_ROOT_BUCKETS: {malformed[0]!r:.100} is not a bucket "
            "name (expected comma-separated bucket names, without gs://)"
        )
    return frozenset(buckets) or frozenset({env["VERTEX_CRON_SPEC_BUCKET"].strip()})


def _catch_up_max_runs(value: str | None) -> int:
    from .errors import ConfigError

    text = (value or "").strip()
    if not text:
        return DEFAULT_CATCH_UP_MAX_RUNS
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_CATCH_UP_MAX_RUNS:
        raise ConfigError(
            f"environment variable VERTEX_CRON_CATCH_UP_MAX_RUNS must be a whole number from 1 to "
            f"{MAX_CATCH_UP_MAX_RUNS}, got {text!r:.40}"
        )
    return int(text)


def _allowed_invokers(value: str | None) -> frozenset[str]:
    """Empty: tokens are not checked. A variable that is set must name at least one
    well-formed email, since a value that parses to nothing would silently turn the token
    check off."""
    from .errors import ConfigError

    emails = _csv_list("VERTEX_CRON_ALLOWED_INVOKERS", value)
    malformed = [email for email in emails if not _EMAIL_RE.fullmatch(email)]
    if malformed:
        raise ConfigError(
            f"environment variable VERTEX_CRON_ALLOWED_INVOKERS: {malformed[0]!r:.100} is not an "
            "email address (expected comma-separated service account emails)"
        )
    return frozenset(email.lower() for email in emails)


def _emulator_credentials(env: Mapping[str, str]) -> bool:
    from .errors import ConfigError

    value = env.get("VERTEX_CRON_EMULATOR_CREDENTIALS", "").strip().lower()
    if value not in ("", "none", "adc"):
        raise ConfigError(
            f"environment variable VERTEX_CRON_EMULATOR_CREDENTIALS must be adc or none, got {value!r:.40}"
        )
    return value == "adc"


def _certs_url(value: str | None) -> str:
    from .errors import ConfigError

    url = (value or "").strip()
    if not url:
        return GOOGLE_CERTS_URL
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s]*)?", url):
        raise ConfigError(f"environment variable VERTEX_CRON_OIDC_CERTS_URL must be an http(s) URL, got {url!r:.100}")
    return url


def _url(value: str | None) -> str | None:
    value = (value or "").strip().rstrip("/")
    if not value:
        return None
    # STORAGE_EMULATOR_HOST is conventionally given with or without a scheme.
    return value if "://" in value else f"http://{value}"
