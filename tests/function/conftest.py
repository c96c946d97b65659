"""Wire-level fixtures: the function served by functions-framework (FunctionProcess)
against the shared emulators (tests/conftest.py: `emulator`, `storage_emulator`,
`spec_bucket`, `oidc_issuer`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from trigger_wire import EXAMPLE_ROOT_BUCKET, EXAMPLES, FUNCTION_DIR, PROJECT, REGION, WORKLOAD_SA, upload
from vertex_cron_local.function_runner import FunctionProcess


@pytest.fixture
def start_function(emulator, storage_emulator, spec_bucket) -> Iterator[Callable[..., FunctionProcess]]:
    """Start the function from function/ with the contract's environment plus overrides."""
    started: list[FunctionProcess] = []

    def start(**overrides: str) -> FunctionProcess:
        env = {
            "VERTEX_CRON_PROJECT": PROJECT,
            "VERTEX_CRON_REGION": REGION,
            "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
            "VERTEX_CRON_SPEC_BUCKET": spec_bucket,
            # The tests' bodies mostly leave pipeline_root out, so runs write to the example's
            # defaultPipelineRoot: allowed here as a deployment with a schedule there would allow it.
            "VERTEX_CRON_PIPELINE_ROOT_BUCKETS": f"{spec_bucket},{EXAMPLE_ROOT_BUCKET}",
            "VERTEX_CRON_EMULATOR_HOST": emulator.url,
            "STORAGE_EMULATOR_HOST": storage_emulator.url,
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
