"""Cloud Storage emulator: real client + raw JSON API, preconditions, generations, faults, persistence."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from vertex_cron_local.storage import StorageEmulator


def client_bucket(storage_emulator, bucket_name, monkeypatch):
    """A real google-cloud-storage bucket handle that talks to `storage_emulator`."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_emulator.url)
    return storage.Client(project="demo-project", credentials=AnonymousCredentials()).bucket(bucket_name)


@pytest.fixture
def bucket(storage_emulator, spec_bucket, monkeypatch):
    return client_bucket(storage_emulator, spec_bucket, monkeypatch)


def media_url(storage_emulator, bucket_name, name):
    return f"{storage_emulator.url}/storage/v1/b/{bucket_name}/o/{quote(name, safe='')}"


def test_upload_download_round_trip_with_real_client(bucket):
    blob = bucket.blob("specs/pipeline.json")
    blob.upload_from_string(b'{"a": 1}', content_type="application/json")
    assert blob.generation
    assert bucket.blob("specs/pipeline.json").download_as_bytes() == b'{"a": 1}'
    assert [b.name for b in bucket.list_blobs(prefix="specs/")] == ["specs/pipeline.json"]


def test_if_generation_match_zero_only_if_absent(bucket):
    bucket.blob("a.json").upload_from_string(b"1", if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("a.json").upload_from_string(b"2", if_generation_match=0)
    assert bucket.blob("a.json").download_as_bytes() == b"1"


def test_if_generation_match_on_overwrite(bucket):
    first = bucket.blob("b.json")
    first.upload_from_string(b"1")
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("b.json").upload_from_string(b"x", if_generation_match=first.generation + 1)
    second = bucket.blob("b.json")
    second.upload_from_string(b"2", if_generation_match=first.generation)
    assert second.generation != first.generation
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("b.json").upload_from_string(b"3", if_generation_not_match=second.generation)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("missing.json").upload_from_string(b"3", if_generation_match=123)


def test_resumable_upload_preconditions(bucket):
    data = b"x" * (300 * 1024)
    blob = bucket.blob("big.bin", chunk_size=256 * 1024)
    blob.upload_from_string(data, if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("big.bin", chunk_size=256 * 1024).upload_from_string(data, if_generation_match=0)


def test_generation_reads_real_client(bucket):
    blob = bucket.blob("g.json")
    blob.upload_from_string(b"v1")
    gen = blob.generation
    assert bucket.blob("g.json", generation=gen).download_as_bytes() == b"v1"
    with pytest.raises(gexc.NotFound):
        bucket.blob("g.json", generation=gen + 1).download_as_bytes()
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("g.json").download_as_bytes(if_generation_match=gen + 1)


def test_raw_requests_media_reads(storage_emulator, bucket):
    blob = bucket.blob("dir/spec.yaml")
    blob.upload_from_string(b"name: x\n")
    url = media_url(storage_emulator, bucket.name, "dir/spec.yaml")
    r = requests.get(url, params={"alt": "media", "generation": blob.generation})
    assert r.status_code == 200 and r.content == b"name: x\n"
    r = requests.get(url, params={"alt": "media", "generation": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    r = requests.get(url, params={"alt": "media", "ifGenerationMatch": 1})
    assert r.status_code == 412 and r.json()["error"]["errors"][0]["reason"] == "conditionNotMet"
    r = requests.get(url, params={"alt": "media", "ifGenerationNotMatch": blob.generation})
    assert r.status_code == 304
    meta = requests.get(url, params={"generation": blob.generation}).json()
    assert meta["generation"] == str(blob.generation)
    r = requests.get(media_url(storage_emulator, bucket.name, "dir/none.yaml"), params={"alt": "media"})
    assert r.status_code == 404 and r.json()["error"]["errors"][0]["reason"] == "notFound"


def test_raw_requests_upload_with_precondition(storage_emulator, bucket):
    url = f"{storage_emulator.url}/upload/storage/v1/b/{bucket.name}/o"
    r = requests.post(url, params={"uploadType": "media", "name": "raw.json", "ifGenerationMatch": 0}, data=b"{}")
    assert r.status_code == 200, r.text
    r = requests.post(url, params={"uploadType": "media", "name": "raw.json", "ifGenerationMatch": 0}, data=b"{}")
    assert r.status_code == 412


def test_faults_status_then_normal(storage_emulator, bucket):
    bucket.blob("f.json").upload_from_string(b"ok")
    url = media_url(storage_emulator, bucket.name, "f.json")
    storage_emulator.faults.add(method="GET", path=rf"/b/{bucket.name}/o/f\.json", status=503, times=2)
    assert requests.get(url, params={"alt": "media"}).status_code == 503
    assert requests.get(url, params={"alt": "media"}).status_code == 503
    assert requests.get(url, params={"alt": "media"}).content == b"ok"


def test_faults_over_http_delay_and_reset(storage_emulator, bucket):
    bucket.blob("slow.json").upload_from_string(b"ok")
    url = media_url(storage_emulator, bucket.name, "slow.json")
    r = requests.post(f"{storage_emulator.url}/_emulator/faults", json={"path": "slow\\.json", "delay_seconds": 0.3})
    assert r.status_code == 200
    start = time.monotonic()
    assert requests.get(url, params={"alt": "media"}).content == b"ok"
    assert time.monotonic() - start >= 0.3
    storage_emulator.faults.add(path="slow\\.json", reset_connection=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, params={"alt": "media"})
    assert requests.get(url, params={"alt": "media"}).content == b"ok"


def test_a_data_dir_keeps_objects_and_their_generations_across_restarts(tmp_path, monkeypatch):
    with StorageEmulator(data_dir=tmp_path) as first:
        first.create_bucket("kept")
        bucket = client_bucket(first, "kept", monkeypatch)
        small = bucket.blob("specs/a.yaml")
        small.upload_from_string(b"name: a\n", if_generation_match=0)
        big = bucket.blob("big.bin", chunk_size=256 * 1024)  # resumable, in two chunks
        big.upload_from_string(b"x" * (300 * 1024), if_generation_match=0)
        small.patch()  # metageneration 2

    with StorageEmulator(data_dir=tmp_path) as second:
        bucket = client_bucket(second, "kept", monkeypatch)
        assert bucket.blob("specs/a.yaml", generation=small.generation).download_as_bytes() == b"name: a\n"
        assert bucket.blob("big.bin", generation=big.generation).download_as_bytes() == b"x" * (300 * 1024)
        reloaded = bucket.get_blob("specs/a.yaml")
        assert (reloaded.generation, reloaded.metageneration) == (small.generation, 2)
        # Preconditions see the kept generation: the deployer's "upload only if absent" holds.
        with pytest.raises(gexc.PreconditionFailed):
            bucket.blob("specs/a.yaml").upload_from_string(b"other", if_generation_match=0)
