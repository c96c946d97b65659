"""The Artifact Registry emulator as kfp's RegistryClient and Vertex AI's REST API meet it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests
import yaml
from google.api_core.exceptions import NotFound
from google.cloud import aiplatform_v1

SPEC = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"
PROJECT, LOCATION, REPOSITORY = "my-project", "us-central1", "pipelines"
REPOSITORY_NAME = f"projects/{PROJECT}/locations/{LOCATION}/repositories/{REPOSITORY}"


@pytest.fixture
def registry(emulator, kfp_registry):
    return kfp_registry(emulator.url, PROJECT, LOCATION, REPOSITORY)


def http_error(call) -> int:
    with pytest.raises(requests.HTTPError) as caught:
        call()
    return caught.value.response.status_code


def test_an_upload_is_a_version_named_by_its_digest_in_the_package_named_after_the_pipeline(registry, tmp_path):
    package, version = registry.upload_pipeline(str(SPEC), tags=["prod", "v1"])
    assert package == "nightly-training"
    assert version == "sha256:" + hashlib.sha256(SPEC.read_bytes()).hexdigest()
    for reference in {"version": version}, {"tag": "prod"}:
        downloaded = registry.download_pipeline(package, file_name=str(tmp_path / "p.yaml"), **reference)
        assert Path(downloaded).read_bytes() == SPEC.read_bytes()
    assert registry.get_tag(package, "prod")["version"] == f"{REPOSITORY_NAME}/packages/{package}/versions/{version}"
    related = {tag["name"].rsplit("/", 1)[1] for tag in registry.get_version(package, version)["relatedTags"]}
    assert related == {"prod", "v1"}
    assert registry.get_package(package)["name"] == f"{REPOSITORY_NAME}/packages/{package}"


def test_a_tag_names_one_version_and_moves(registry, tmp_path):
    package, first = registry.upload_pipeline(str(SPEC), tags=["prod"])
    changed = tmp_path / "v2.yaml"
    changed.write_text(SPEC.read_text() + "\n# v2\n")
    _, second = registry.upload_pipeline(str(changed))
    assert http_error(lambda: registry.create_tag(package, second, "prod")) == 409
    registry.update_tag(package, second, "prod")
    assert registry.get_tag(package, "prod")["version"].endswith(second)
    # An upload carrying an existing tag moves it too.
    registry.upload_pipeline(str(SPEC), tags=["prod"])
    assert registry.get_tag(package, "prod")["version"].endswith(first)
    assert {v["name"].rsplit("/", 1)[1] for v in registry.list_versions(package)} == {first, second}


def test_unknown_tags_versions_and_fields_are_refused(emulator, registry):
    package, version = registry.upload_pipeline(str(SPEC))
    assert http_error(lambda: registry.get_tag(package, "nope")) == 404
    assert http_error(lambda: registry.download_pipeline(package, version="sha256:" + "0" * 64)) == 404
    assert http_error(lambda: registry.create_tag(package, "sha256:" + "0" * 64, "prod")) == 404
    tags = f"{emulator.url}/v1/{REPOSITORY_NAME}/packages/{package}/tags"
    reply = requests.post(tags, params={"tagId": "x"}, json={"versoin": version}, timeout=30)
    assert reply.status_code == 400 and reply.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_only_a_kfp_repository_takes_pipelines_and_only_pipelines(emulator, registry, tmp_path):
    api = f"{emulator.url}/v1/projects/{PROJECT}/locations/{LOCATION}/repositories"
    reply = requests.post(api, params={"repositoryId": "images"}, json={"format": "DOCKER"}, timeout=30)
    assert reply.json()["response"]["format"] == "DOCKER"
    upload = f"{emulator.url}/{LOCATION}-kfp.pkg.dev/{PROJECT}/images"
    with SPEC.open("rb") as content:
        assert requests.post(upload, files={"content": content}, timeout=30).status_code == 400
    notes = tmp_path / "notes.txt"
    notes.write_text("release notes, not a pipeline")
    assert http_error(lambda: registry.upload_pipeline(str(notes))) == 400
    assert requests.get(f"{api}/{REPOSITORY}", timeout=30).json()["format"] == "KFP"


def test_vertex_fills_template_metadata_for_a_registry_template(emulator, registry, emulator_client):
    package, version = registry.upload_pipeline(str(SPEC), tags=["prod"])
    client = emulator_client(aiplatform_v1.PipelineServiceClient)
    parent = "projects/p/locations/europe-west1"
    spec = yaml.safe_load(SPEC.read_text())
    base = f"https://{LOCATION}-kfp.pkg.dev/{PROJECT}/{REPOSITORY}/{package}"

    def create(job_id: str, reference: str) -> aiplatform_v1.PipelineJob:
        job = aiplatform_v1.PipelineJob(
            template_uri=f"{base}/{reference}",
            runtime_config={"gcs_output_directory": "gs://b/root", "parameter_values": {"run_date": "d"}},
            template_metadata={"version": "sha256:forged"},  # output only: ignored on input
        )
        job._pb.pipeline_spec.update(spec)
        return client.create_pipeline_job(parent=parent, pipeline_job=job, pipeline_job_id=job_id)

    assert create("by-version", version).template_metadata.version == version
    assert create("by-tag", "prod").template_metadata.version == version
    with pytest.raises(NotFound):
        create("missing", "staging")
