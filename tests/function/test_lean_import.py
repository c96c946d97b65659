"""Cold start is the product: importing the entry point must not pull in the heavy stacks,
and the first firing on Cloud Run's path loads nothing the runtime has not already got."""

import json
import subprocess
import sys

import yaml
from trigger_wire import EXAMPLES, FIRING, FUNCTION_DIR, INVOKER, PROJECT, REGION, WORKLOAD_SA, body_for, upload
from vertex_cron_local.metadata_server import MetadataServer

NEVER = ("google.cloud.aiplatform", "google.cloud.storage", "google.api_core", "grpc")
# The function talks HTTP with http.client (transport.py): these are not even installed on Cloud Run.
NO_HTTP_LIBRARY = ("requests", "urllib3", "charset_normalizer", "certifi")
NOT_AT_IMPORT = ("google.auth", "yaml", "croniter")
# Only for a body without Scheduler's header (croniter's rules), or one with a template_uri.
RARELY = ("vertex_cron_trigger.unix_cron", "vertex_cron_trigger.template_uri")
# Only for the catch-up sweep job's request: an on-time firing never loads them.
SWEEP_ONLY = ("vertex_cron_trigger.sweep", "vertex_cron_trigger.give_up", "vertex_cron_trigger.watermark")


def _modules(script: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{script}\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=FUNCTION_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_main_loads_no_client_library_nor_http_stack():
    loaded = _modules("import main")
    offenders = [m for m in loaded if m.startswith(NEVER + NO_HTTP_LIBRARY + NOT_AT_IMPORT + RARELY + SWEEP_ONLY)]
    assert offenders == []
    assert "vertex_cron_trigger.handler" in loaded


def test_the_first_firing_on_cloud_runs_path_loads_no_http_library_nor_google_auth(
    emulator, storage_emulator, spec_bucket, oidc_issuer, tmp_path
):
    """The deployed path: a JSON spec, Scheduler's header, the token's signature stripped by
    Cloud Run, the access token from the metadata server."""
    spec = json.dumps(yaml.safe_load((EXAMPLES / "pipeline.yaml").read_text())).encode()
    generation = upload(storage_emulator.url, spec_bucket, "specs/nightly.json", spec)
    uri = f"gs://{spec_bucket}/specs/nightly.json#{generation}"
    signed = oidc_issuer.mint(audience="https://trigger.test", email=INVOKER)
    token = signed.rsplit(".", 1)[0] + ".SIGNATURE_REMOVED_BY_GOOGLE"
    metadata = MetadataServer(project=PROJECT, service_account=WORKLOAD_SA).start()
    env = {
        "PATH": "/usr/bin:/bin",
        "K_SERVICE": "vertex-cron-trigger",
        "VERTEX_CRON_PROJECT": PROJECT,
        "VERTEX_CRON_REGION": REGION,
        "VERTEX_CRON_WORKLOAD_SA": WORKLOAD_SA,
        "VERTEX_CRON_SPEC_BUCKET": spec_bucket,
        "VERTEX_CRON_PIPELINE_ROOT_BUCKETS": f"{spec_bucket},vertex-cron-demo-artifacts",
        "VERTEX_CRON_ALLOWED_INVOKERS": INVOKER,
        "VERTEX_CRON_AUDIENCE": "https://trigger.test",
        "VERTEX_CRON_EMULATOR_HOST": emulator.url,
        "STORAGE_EMULATOR_HOST": storage_emulator.url,
        "VERTEX_CRON_EMULATOR_CREDENTIALS": "adc",
        "CLOUDSDK_CONFIG": str(tmp_path),
        **metadata.env(),
    }
    # The handler itself, with a werkzeug request: functions-framework in this (development)
    # virtualenv would import the shadowing google.cloud.functions client (local/function_env.py).
    script = f"""
from werkzeug.test import EnvironBuilder
import main
request = EnvironBuilder(method="POST", base_url="https://trigger.test", data={json.dumps(body_for({"uri": uri}))!r},
    headers={{"Authorization": "Bearer {token}", "X-CloudScheduler-ScheduleTime": "{FIRING}"}}).get_request()
text, status, _ = main.trigger(request)
assert status == 200 and json.loads(text)["outcome"] == "created", text
"""
    try:
        loaded = _modules(script, env)
    finally:
        metadata.stop()

    assert metadata.tokens_issued == 1
    assert [m for m in loaded if m.startswith(NEVER + NO_HTTP_LIBRARY + NOT_AT_IMPORT + RARELY + SWEEP_ONLY)] == []
