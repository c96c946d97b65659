import json
import re
from datetime import UTC, datetime
from pathlib import Path

from vertex_cron_trigger.pipeline_job import build_pipeline_job, job_id
from vertex_cron_trigger.spec import parse_spec

SPEC = parse_spec((Path(__file__).resolve().parents[2] / "examples" / "pipeline.json").read_bytes(), source="p")
WHEN = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def test_job_id_is_per_firing_and_valid_for_vertex():
    assert job_id("nightly", WHEN) == "nightly-20240501-020000"
    assert job_id("nightly", WHEN.replace(microsecond=123_000)) == "nightly-20240501-020000-123"
    assert job_id("nightly", WHEN.replace(minute=1)) != job_id("nightly", WHEN)
    assert re.fullmatch(r"[a-z][-a-z0-9]{0,127}", job_id("n" * 50, WHEN.replace(microsecond=999_000)))


def build(**overrides):
    arguments = dict(
        spec=SPEC,
        schedule="nightly",
        logical_time=WHEN,
        parameter_values={"run_date": "d"},
        pipeline_root="gs://b/root",
        service_account="wl@p.iam.gserviceaccount.com",
    )
    return build_pipeline_job(**{**arguments, **overrides})


def test_pipeline_job_body():
    job = build()
    assert job["serviceAccount"] == "wl@p.iam.gserviceaccount.com"
    assert job["runtimeConfig"] == {"gcsOutputDirectory": "gs://b/root", "parameterValues": {"run_date": "d"}}
    assert job["displayName"] == "nightly 2024-05-01T02:00:00Z"
    assert job["labels"]["managed-by"] == "vertex-cron" and job["labels"]["vertex-cron-schedule"] == "nightly"
    assert all(LABEL_VALUE.match(value) for value in job["labels"].values())
    assert job["pipelineSpec"] is SPEC.pipeline_spec  # untouched: no copy when caching is not overridden


def test_a_template_uri_links_the_run_to_its_registry_version():
    version = "sha256:" + "0123456789abcdef" * 4
    uri = f"https://europe-west1-kfp.pkg.dev/my-project/pipelines/nightly-training/{version}"
    job = build(template_uri=uri)
    # What the aiplatform SDK sends for a template from Artifact Registry: the URI and the spec.
    assert job["templateUri"] == uri and job["pipelineSpec"] is SPEC.pipeline_spec
    assert job["labels"]["vertex-cron-template-version"] == "0123456789abcdef"
    assert all(LABEL_VALUE.match(value) for value in job["labels"].values())
    assert "templateUri" not in build() and "vertex-cron-template-version" not in build()["labels"]


def test_enable_caching_rewrites_every_task_without_touching_the_cached_spec():
    job = build(enable_caching=False)
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {name: task["cachingOptions"] for name, task in tasks.items()} == {
        "extract": {"enableCache": False},
        "train": {"enableCache": False},
    }
    assert SPEC.pipeline_spec["root"]["dag"]["tasks"]["extract"]["cachingOptions"] == {"enableCache": True}
    json.dumps(job)
