"""The reference: how Google's old Cloud Functions recipe and ZenML start a scheduled run.

The Vertex AI SDK, imported at module level as in the recipe, then
`PipelineJob(...).submit(service_account=...)` with the spec read from Cloud Storage.
Pointed at the local emulators the same way the trigger is (VERTEX_CRON_EMULATOR_HOST,
STORAGE_EMULATOR_HOST), with application default credentials as on Cloud Run: google-auth
finds the bench's metadata server (GCE_METADATA_HOST / GCE_METADATA_IP) and asks it for
the token, as the trigger does.
"""

import json
import os

from google.cloud import aiplatform


def trigger(request):
    body = request.get_json(force=True)
    aiplatform.init(
        project=os.environ["VERTEX_CRON_PROJECT"],
        location=os.environ["VERTEX_CRON_REGION"],
        **_emulator_options(),
    )
    job = aiplatform.PipelineJob(
        display_name=body["schedule"],
        # The SDK reads gs://BUCKET/OBJECT only: drop the deployer's #GENERATION pin.
        template_path=body["spec_uri"].split("#")[0],
        pipeline_root=body["pipeline_root"],
        parameter_values=body.get("parameter_values") or {},
    )
    job.submit(service_account=os.environ["VERTEX_CRON_WORKLOAD_SA"])
    return json.dumps({"job": job.resource_name}), 200, {"Content-Type": "application/json"}


def _emulator_options():
    endpoint = os.environ.get("VERTEX_CRON_EMULATOR_HOST")
    if not endpoint:
        return {}
    # REST accepts an http:// endpoint; the gRPC default transport could not reach it.
    return {"api_endpoint": endpoint, "api_transport": "rest"}
