"""Wire-level fixtures: the function served by functions-framework (FunctionProcess)
against the shared emulators (tests/conftest.py: `emulator`, `storage_emulator`,
`spec_bucket`, `oidc_issuer`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from trigger_wire import EXAMPLES, FUNCTION_DIR, function_env, upload
from vertex_cron_local.function_runner import FunctionProcess


@pytest.fixture
def start_function(emulator, storage_emulator, spec_bucket) -> Iterator[Callable[..., FunctionProcess]]:
    """Start the function from function/ with the contract's environment plus overrides."""
    started: list[FunctionProcess] = []

    def start(**overrides: str) -> FunctionProcess:
        env = {
            **function_env(emulator.url, storage_emulator.url, spec_bucket),
            "VERTEX_CRON_OIDC_CERTS_URL": emulator.url + "/oauth2/v1/certs",
            **overrides,
        }
        process = FunctionProcess(FUNCTION_DIR, env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def spec(storage_emulator, spec_bucket) -> dict:
    """The example pipeline (KFP YAML) uploaded to the spec bucket."""
    bucket = spec_bucket
    generation = upload(storage_emulator.url, bucket, "specs/nightly.yaml", (EXAMPLES / "pipeline.yaml").read_bytes())
    return {"uri": f"gs://{bucket}/specs/nightly.yaml", "bucket": bucket, "generation": generation}
