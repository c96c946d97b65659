"""Cold start is the product: importing the entry point must not pull in the heavy stacks."""

import json
import subprocess
import sys

from trigger_wire import FUNCTION_DIR

NEVER = ("google.cloud.aiplatform", "google.cloud.storage", "google.api_core", "grpc")
NOT_AT_IMPORT = ("requests", "google.auth", "yaml", "croniter")


def test_importing_main_loads_no_client_library_nor_http_stack():
    script = "import json, sys, main; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=FUNCTION_DIR, check=True, capture_output=True, text=True
    ).stdout
    loaded = json.loads(output)
    offenders = [m for m in loaded if m.startswith(NEVER + NOT_AT_IMPORT)]
    assert offenders == []
    assert "vertex_cron_trigger.handler" in loaded
