"""Fixtures of the reliability suite: the function served by functions-framework (one or
more instances on one environment), or in this process through functions-framework's own
app when a test must shorten the function's upstream timeouts. Both run against the
shared emulators (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_stack import EXAMPLES, FUNCTION_DIR, SPEC_OBJECT, function_env, upload

from vertex_cron.local.function_runner import FunctionProcess


@pytest.fixture(autouse=True)
def _no_storage_fault_outlives_its_test(storage_emulator) -> Iterator[None]:
    """The storage emulator is shared by the session; its fault rules must not be."""
    yield
    storage_emulator.faults.clear()


@pytest.fixture
def spec_uri(storage_emulator, spec_bucket) -> str:
    """The example pipeline (YAML) uploaded to the spec bucket, unpinned."""
    upload(storage_emulator.url, spec_bucket, SPEC_OBJECT, (EXAMPLES / "pipeline.yaml").read_bytes())
    return f"gs://{spec_bucket}/{SPEC_OBJECT}"


@pytest.fixture
def start_function(emulator, storage_emulator, spec_bucket) -> Iterator[Callable[..., FunctionProcess]]:
    """`start_function(**env_overrides)`: one more functions-framework instance of function/."""
    started: list[FunctionProcess] = []

    def start(**overrides: str) -> FunctionProcess:
        process = FunctionProcess(FUNCTION_DIR, function_env(emulator, storage_emulator, spec_bucket, **overrides))
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def in_process_function(emulator, storage_emulator, spec_bucket, monkeypatch) -> Callable[..., Any]:
    """`in_process_function(**env_overrides)`: a Flask test client of functions-framework's
    app for function/main.py in this process (fresh settings and caches)."""
    import functions_framework

    from vertex_cron_trigger import handler, settings

    def build(**overrides: str) -> Any:
        for name, value in function_env(emulator, storage_emulator, spec_bucket, **overrides).items():
            monkeypatch.setenv(name, value)
        settings.settings.cache_clear()
        handler.runtime.cache_clear()
        app = functions_framework.create_app(target="trigger", source=str(FUNCTION_DIR / "main.py"))
        return app.test_client()

    yield build
    settings.settings.cache_clear()
    handler.runtime.cache_clear()


@pytest.fixture(scope="module")
def guarded_stack(_proto_types, oidc_issuer, storage_emulator) -> Iterator[Any]:
    """One stack per module for catalogues of requests: a control-plane emulator, a spec
    bucket holding the example, and the function restricted to INVOKER's tokens."""
    from types import SimpleNamespace

    from reliability_stack import INVOKER

    from vertex_cron.local.emulator import Emulator

    emulator = Emulator()
    emulator.oidc_issuer = oidc_issuer
    emulator.start()
    bucket = f"guarded-{id(emulator)}"
    storage_emulator.create_bucket(bucket)
    upload(storage_emulator.url, bucket, SPEC_OBJECT, (EXAMPLES / "pipeline.yaml").read_bytes())
    env = function_env(emulator, storage_emulator, bucket, VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    function = FunctionProcess(FUNCTION_DIR, env).start()
    try:
        yield SimpleNamespace(
            emulator=emulator, storage=storage_emulator, bucket=bucket, function=function,
            spec_uri=f"gs://{bucket}/{SPEC_OBJECT}",
            token=lambda: oidc_issuer.mint(audience=function.url, email=INVOKER),
        )
    finally:
        function.stop()
        emulator.stop()
