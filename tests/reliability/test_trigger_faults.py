"""Upstream failures while a firing is handled: the function answers 503 (Scheduler retries),
leaves nothing behind, says what failed in its log line, and the retry runs the firing once."""

from __future__ import annotations

import json

import pytest
from reliability_stack import INVOKER, PARENT, body_for, fire, job_names, scheduler_headers

JOB = f"{PARENT}/pipelineJobs/nightly-20240501-020000"
VERTEX_CREATE = r"/pipelineJobs$"
OBJECT_READ = r"/o/specs/nightly\.yaml$"
CERTS = r"/oauth2/v1/certs$"

# (id, which emulator, fault rule, words the 503's message must contain)
FAULTS = [
    ("vertex-429", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 429}, "HTTP 429"),
    ("vertex-500", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 500}, "HTTP 500"),
    ("vertex-503", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 503}, "HTTP 503"),
    ("vertex-connection-reset", "control", {"method": "POST", "path": VERTEX_CREATE, "reset_connection": True},
     "ConnectionError"),
    ("storage-metadata-500", "storage", {"method": "GET", "path": OBJECT_READ, "status": 500}, "HTTP 500"),
    ("storage-metadata-503", "storage", {"method": "GET", "path": OBJECT_READ, "status": 503}, "HTTP 503"),
    ("storage-read-connection-reset", "storage", {"method": "GET", "path": OBJECT_READ, "reset_connection": True},
     "ConnectionError"),
    ("certs-503", "control", {"method": "GET", "path": CERTS, "status": 503}, "OIDC certs"),
    ("certs-connection-reset", "control", {"method": "GET", "path": CERTS, "reset_connection": True},
     "ConnectionError"),
]


@pytest.mark.parametrize(("where", "rule", "says"), [case[1:] for case in FAULTS], ids=[case[0] for case in FAULTS])
def test_a_transient_fault_is_a_503_and_the_retry_creates_the_job_once(
    start_function, emulator, storage_emulator, oidc_issuer, spec_uri, where, rule, says
):
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    token = oidc_issuer.mint(audience=function.url, email=INVOKER)
    (emulator if where == "control" else storage_emulator).faults.add(**rule, times=1)

    failed = fire(function.url, body_for(spec_uri), token=token)

    assert failed.status_code == 503, failed.text
    assert failed.json()["outcome"] == "failed" and says in failed.json()["message"]
    assert "Traceback" not in failed.text
    assert job_names(emulator) == []
    retried = fire(function.url, body_for(spec_uri), token=token)  # Scheduler's retry: same firing
    assert (retried.status_code, retried.json()["outcome"]) == (200, "created")
    again = fire(function.url, body_for(spec_uri), token=token)
    assert again.json()["outcome"] == "duplicate"
    assert job_names(emulator) == [JOB]
    first, second, third = function.log_lines()
    assert (first["severity"], first["outcome"], first["status"]) == ("ERROR", "failed", 503)
    assert says in first["message"]
    assert (second["outcome"], third["outcome"]) == ("created", "duplicate")


def test_a_slow_spec_read_still_creates_the_job(start_function, emulator, storage_emulator, spec_uri):
    function = start_function()
    storage_emulator.faults.add(method="GET", path=OBJECT_READ, delay_seconds=1.0, times=2)

    response = fire(function.url, body_for(spec_uri))

    assert (response.status_code, response.json()["outcome"]) == (200, "created")
    assert job_names(emulator) == [JOB]


def test_a_vertex_timeout_whose_create_landed_is_a_503_and_the_retry_is_a_duplicate(
    in_process_function, emulator, spec_uri, monkeypatch, wait_until
):
    """The worst timeout: Vertex AI created the job but the answer never came back."""
    from vertex_cron_trigger import google_rest

    monkeypatch.setattr(google_rest, "VERTEX_TIMEOUT", (5.0, 0.5))
    client = in_process_function()
    emulator.faults.add(method="POST", path=VERTEX_CREATE, delay_seconds=1.5, times=1)

    timed_out = client.post("/", data=json.dumps(body_for(spec_uri)), headers=scheduler_headers())

    assert timed_out.status_code == 503 and "ReadTimeout" in timed_out.get_json()["message"]
    wait_until(lambda: job_names(emulator) == [JOB], "the delayed create to land")
    retried = client.post("/", data=json.dumps(body_for(spec_uri)), headers=scheduler_headers())
    assert (retried.status_code, retried.get_json()["outcome"]) == (200, "duplicate")
    assert job_names(emulator) == [JOB]


def test_a_storage_timeout_is_a_503_and_the_retry_creates(in_process_function, emulator, storage_emulator, spec_uri,
                                                          monkeypatch):
    from vertex_cron_trigger import google_rest

    monkeypatch.setattr(google_rest, "STORAGE_TIMEOUT", (5.0, 0.5))
    client = in_process_function()
    storage_emulator.faults.add(method="GET", path=OBJECT_READ, delay_seconds=1.5, times=1)

    timed_out = client.post("/", data=json.dumps(body_for(spec_uri)), headers=scheduler_headers())

    assert timed_out.status_code == 503 and "ReadTimeout" in timed_out.get_json()["message"]
    assert job_names(emulator) == []
    retried = client.post("/", data=json.dumps(body_for(spec_uri)), headers=scheduler_headers())
    assert (retried.status_code, retried.get_json()["outcome"]) == (200, "created")
    assert job_names(emulator) == [JOB]


def test_a_delivery_burst_during_an_outage_then_its_retries_make_one_job(start_function, emulator, spec_uri):
    function = start_function()
    emulator.faults.add(method="POST", path=VERTEX_CREATE, status=503, times=3)
    first_wave = [fire(function.url, body_for(spec_uri)) for _ in range(3)]
    assert [r.status_code for r in first_wave] == [503] * 3 and job_names(emulator) == []

    retries = [fire(function.url, body_for(spec_uri)) for _ in range(3)]

    assert sorted(r.json()["outcome"] for r in retries) == ["created", "duplicate", "duplicate"]
    assert job_names(emulator) == [JOB]
