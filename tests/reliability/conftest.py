"""Fixtures of the reliability suite: the function served by functions-framework (one or
more instances on one environment), or in this process through functions-framework's own
app when a test must shorten the function's upstream timeouts. Both run against the
shared emulators (tests/conftest.py).

The served source is the deployer's zip of function/, extracted (`shipped_source`), as the
local stack serves it: what Cloud Functions would build, so a file the zip leaves out fails
here. The in-process app loads the extracted main.py too, but its `vertex_cron_trigger` is
the package this process imported (so tests can shorten its timeouts)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_stack import EXAMPLES, SPEC_OBJECT, FaultFront, function_env, shipped_function, upload
from vertex_cron_local.function_runner import FunctionProcess


@pytest.fixture(autouse=True)
def _no_storage_fault_outlives_its_test(storage_emulator) -> Iterator[None]:
    """The storage emulator is shared by the session; its fault rules must not be."""
    yield
    storage_emulator.faults.clear()


@pytest.fixture(scope="session")
def shipped_source(tmp_path_factory) -> Path:
    """function/ as `vertex-cron deploy` uploads it: its zip, extracted."""
    return shipped_function(tmp_path_factory.mktemp("shipped-function"))


@pytest.fixture
def spec_uri(storage_emulator, spec_bucket) -> str:
    """The example pipeline (YAML) uploaded to the spec bucket, unpinned."""
    upload(storage_emulator.url, spec_bucket, SPEC_OBJECT, (EXAMPLES / "pipeline.yaml").read_bytes())
    return f"gs://{spec_bucket}/{SPEC_OBJECT}"


@pytest.fixture
def pinned_spec_uri(storage_emulator, spec_bucket) -> str:
    """The example pipeline uploaded to the spec bucket, pinned: `gs://B/O#GENERATION`. The
    function then reads no metadata (spec_store.py), so its only Cloud Storage call is the
    media download itself."""
    generation = upload(storage_emulator.url, spec_bucket, SPEC_OBJECT, (EXAMPLES / "pipeline.yaml").read_bytes())
    return f"gs://{spec_bucket}/{SPEC_OBJECT}#{generation}"


@pytest.fixture
def fault_front() -> Iterator[Callable[[str], FaultFront]]:
    """`fault_front(upstream_url)`: a started FaultFront before that emulator, stopped after."""
    fronts: list[FaultFront] = []

    def start(upstream: str) -> FaultFront:
        fronts.append(FaultFront(upstream).start())
        return fronts[-1]

    yield start
    for front in fronts:
        front.stop()


@pytest.fixture
def start_function(emulator, storage_emulator, spec_bucket, shipped_source) -> Iterator[Callable[..., FunctionProcess]]:
    """`start_function(**env_overrides)`: one more functions-framework instance of the shipped source."""
    started: list[FunctionProcess] = []

    def start(**overrides: str) -> FunctionProcess:
        process = FunctionProcess(shipped_source, function_env(emulator, storage_emulator, spec_bucket, **overrides))
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def in_process_function(emulator, storage_emulator, spec_bucket, shipped_source, monkeypatch) -> Callable[..., Any]:
    """`in_process_function(**env_overrides)`: a Flask test client of functions-framework's
    app for the shipped main.py in this process (fresh settings and caches)."""
    import functions_framework
    from vertex_cron_trigger import handler, settings

    def build(**overrides: str) -> Any:
        for name, value in function_env(emulator, storage_emulator, spec_bucket, **overrides).items():
            monkeypatch.setenv(name, value)
        settings.settings.cache_clear()
        handler.runtime.cache_clear()
        app = functions_framework.create_app(target="trigger", source=str(shipped_source / "main.py"))
        return app.test_client()

    yield build
    settings.settings.cache_clear()
    handler.runtime.cache_clear()


@pytest.fixture(scope="module")
def guarded_stack(_proto_types, oidc_issuer, storage_emulator, shipped_source) -> Iterator[Any]:
    """One stack per module for catalogues of requests: a control-plane emulator, a spec
    bucket holding the example, and the function restricted to INVOKER's tokens."""
    from types import SimpleNamespace

    from reliability_stack import INVOKER
    from vertex_cron_local.emulator import Emulator

    emulator = Emulator()
    emulator.oidc_issuer = oidc_issuer
    emulator.start()
    bucket = f"guarded-{id(emulator)}"
    storage_emulator.create_bucket(bucket)
    upload(storage_emulator.url, bucket, SPEC_OBJECT, (EXAMPLES / "pipeline.yaml").read_bytes())
    env = function_env(emulator, storage_emulator, bucket, VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    function = FunctionProcess(shipped_source, env).start()
    try:
        yield SimpleNamespace(
            emulator=emulator,
            storage=storage_emulator,
            bucket=bucket,
            function=function,
            spec_uri=f"gs://{bucket}/{SPEC_OBJECT}",
            token=lambda: oidc_issuer.mint(audience=function.url, email=INVOKER),
        )
    finally:
        function.stop()
        emulator.stop()
