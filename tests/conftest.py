"""Shared fixtures: the local emulators every wire-level test runs against.

Fixtures (names other test modules rely on):

- `emulator`          a fresh, started control-plane `Emulator` per test (stopped after),
                      with `emulator.oidc_issuer` = the session `oidc_issuer`.
- `storage_emulator`  one `StorageEmulator` (gcp-storage-emulator, in memory) per session.
- `spec_bucket`       a fresh bucket name, created in `storage_emulator`, per test.
- `oidc_issuer`       one `LocalIssuer` per session (RSA keygen is the slow part).
- `emulator_env`      monkeypatches VERTEX_CRON_EMULATOR_HOST=emulator.url and
                      STORAGE_EMULATOR_HOST=storage_emulator.url; returns them as a dict.
- `emulator_client`   a factory: `emulator_client(ClientClass)` builds a real GAPIC client
                      (transport="rest", AnonymousCredentials) pointed at the `emulator`.
                      The plain helper `make_emulator_client(ClientClass, emulator)` (import it
                      from vertex_cron_local.emulator.clients) does the same for any Emulator.
- `gapic_client_options` the `ClientOptions(api_endpoint=emulator.url)` for hand-built clients.
- `kfp_registry`      a factory: `kfp_registry(emulator_url, project, location, repository)`
                      creates that KFP repository and returns kfp's own `RegistryClient` for
                      it, every URL it calls mapped onto the emulator (docs/fidelity.md,
                      "Artifact Registry (KFP)"); `kfp_repository` (same arguments) returns
                      the host and RegistryClient options instead.
- `wait_until`        `wait_until(condition, what)` polls `condition` until it returns something
                      truthy and returns that value; fails naming `what` after a generous deadline.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from vertex_cron_local.emulator import Emulator
from vertex_cron_local.emulator.clients import make_emulator_client
from vertex_cron_local.storage import StorageEmulator
from vertex_cron_local.token_issuer import LocalIssuer

_bucket_counter = itertools.count(1)

# Generous: two cores are shared by several test runs at once, and a deadline is never
# a timing assertion, only the point at which a test stops waiting and fails.
WAIT_DEADLINE_SECONDS = 60.0


@pytest.fixture(scope="session")
def _proto_types() -> None:
    """Import the generated proto types once per session (keeps `emulator` startup cheap)."""
    from vertex_cron_local.emulator.common import message_types

    message_types()


@pytest.fixture(scope="session")
def oidc_issuer() -> LocalIssuer:
    """A session-wide local OIDC issuer (in-memory RSA key, Google v1 certs format)."""
    return LocalIssuer()


@pytest.fixture
def emulator(_proto_types: None, oidc_issuer: LocalIssuer) -> Iterator[Emulator]:
    """A fresh control-plane emulator on 127.0.0.1:random port, stopped after the test.

    Its GET /oauth2/v1/certs serves `oidc_issuer`'s certs.
    """
    emu = Emulator()
    emu.oidc_issuer = oidc_issuer
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[StorageEmulator]:
    """One in-memory Cloud Storage emulator for the session (use `spec_bucket` per test)."""
    storage = StorageEmulator()
    storage.start()
    try:
        yield storage
    finally:
        storage.stop()


@pytest.fixture
def spec_bucket(storage_emulator: StorageEmulator) -> str:
    """A bucket name unique to this test, already created in `storage_emulator`."""
    name = f"spec-bucket-{os.getpid()}-{next(_bucket_counter)}"
    storage_emulator.create_bucket(name)
    return name


@pytest.fixture
def emulator_env(
    emulator: Emulator, storage_emulator: StorageEmulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point code under test at the emulators through the documented variables."""
    env = {"VERTEX_CRON_EMULATOR_HOST": emulator.url, "STORAGE_EMULATOR_HOST": storage_emulator.url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def gapic_client_options(emulator: Emulator) -> Any:
    """`ClientOptions(api_endpoint=emulator.url)`; use with transport="rest" and AnonymousCredentials."""
    from google.api_core.client_options import ClientOptions

    return ClientOptions(api_endpoint=emulator.url)


@pytest.fixture
def emulator_client(emulator: Emulator) -> Callable[..., Any]:
    """Factory: `emulator_client(aiplatform_v1.PipelineServiceClient)` -> a REST client on `emulator`."""

    def build(client_class: type, **kwargs: Any) -> Any:
        return make_emulator_client(client_class, emulator, **kwargs)

    return build


@pytest.fixture
def kfp_repository(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """A new KFP repository on an emulator, as kfp's RegistryClient takes it: returns the
    repository's real host (`https://LOCATION-kfp.pkg.dev/PROJECT/REPO`) and the client
    options (`auth`, `config_file`) that point every URL kfp calls at the emulator. The kfp
    context file overrides each URL template of kfp/registry/context/kfp_pkg_dev.json: the
    REST API's on the emulator's /v1 paths, the KFP host's under
    `{emulator}/LOCATION-kfp.pkg.dev/...` (docs/fidelity.md, "Artifact Registry (KFP)")."""
    import json

    import requests
    from kfp.registry import ApiAuth

    def build(emulator_url: str, project: str, location: str, repository: str) -> tuple[str, dict[str, Any]]:
        api = f"{emulator_url}/v1/projects/{project}/locations/{location}/repositories"
        reply = requests.post(api, params={"repositoryId": repository}, json={"format": "KFP"}, timeout=30)
        assert reply.status_code == 200 and reply.json()["done"], reply.text
        kfp_host = f"{emulator_url}/{location}-kfp.pkg.dev/{project}/{repository}"
        package = f"{api}/{repository}/packages/{{package_name}}"
        context = {
            "upload_url": kfp_host,
            "download_version_url": f"{kfp_host}/{{package_name}}/{{version}}",
            "download_tag_url": f"{kfp_host}/{{package_name}}/{{tag}}",
            "get_package_url": package,
            "list_packages_url": f"{api}/{repository}/packages",
            "delete_package_url": package,
            "get_version_url": f"{package}/versions/{{version}}",
            "list_versions_url": f"{package}/versions",
            "delete_version_url": f"{package}/versions/{{version}}",
            "get_tag_url": f"{package}/tags/{{tag}}",
            "list_tags_url": f"{package}/tags",
            "create_tag_url": f"{package}/tags?tagId={{tag}}",
            "update_tag_url": f"{package}/tags/{{tag}}?updateMask=version",
            "delete_tag_url": f"{package}/tags/{{tag}}",
        }
        config = tmp_path_factory.mktemp("kfp") / "context.json"
        config.write_text(json.dumps(context))
        host = f"https://{location}-kfp.pkg.dev/{project}/{repository}"
        return host, {"auth": ApiAuth("local-token"), "config_file": str(config)}

    return build


@pytest.fixture
def kfp_registry(kfp_repository: Callable[..., Any]) -> Callable[..., Any]:
    """`kfp_registry(emulator_url, project, location, repository)`: kfp's own RegistryClient
    for a new KFP repository on the emulator (see `kfp_repository`)."""
    from kfp.registry import RegistryClient

    def build(emulator_url: str, project: str, location: str, repository: str) -> RegistryClient:
        host, options = kfp_repository(emulator_url, project, location, repository)
        return RegistryClient(host=host, **options)

    return build


def _wait_until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {WAIT_DEADLINE_SECONDS:.0f}s waiting for {what}")


@pytest.fixture
def wait_until() -> Callable[[Callable[[], Any], str], Any]:
    """Poll `condition` until it returns something truthy and return that value."""
    return _wait_until


# `make test-fast` (pytest -m fast): the unit tests and the function's wire tests. Marked
# by where they live, so a new test in these places joins the edit loop by itself.
_FAST_PATHS = (
    "tests/function/",
    "tests/deployer/test_planner.py",
    "tests/deployer/test_executor.py",
    "tests/deployer/test_pre_call_checks.py",
    "tests/deployer/test_progress.py",
    "tests/test_locked_dependencies.py",
    "tests/test_packaging.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix().startswith(_FAST_PATHS):
            item.add_marker(pytest.mark.fast)
