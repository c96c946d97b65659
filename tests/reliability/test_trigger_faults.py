"""Upstream failures while a firing is handled: the function answers 503 (Scheduler retries),
leaves nothing behind, says what failed in its log line, and the retry runs the firing once."""

from __future__ import annotations

import json
import time

import pytest
from reliability_stack import INVOKER, PARENT, SPEC_OBJECT, body_for, fire, job_names, scheduler_headers

JOB = f"{PARENT}/pipelineJobs/nightly-20240501-020000"
VERTEX_CREATE = r"/pipelineJobs$"
OBJECT_READ = r"/o/specs/nightly\.yaml$"
CERTS = r"/oauth2/v1/certs$"

# (id, which emulator, fault rule, words the 503's message must contain)
FAULTS = [
    ("vertex-429", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 429}, "HTTP 429"),
    ("vertex-500", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 500}, "HTTP 500"),
    ("vertex-503", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 503}, "HTTP 503"),
    (
        "vertex-connection-reset",
        "control",
        {"method": "POST", "path": VERTEX_CREATE, "reset_connection": True},
        "ConnectionError",
    ),
    # Unusual 5xx (HTTP version not supported, insufficient storage, network authentication
    # required): still Google's side, still worth a retry.
    ("vertex-505", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 505}, "HTTP 505"),
    ("vertex-507", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 507}, "HTTP 507"),
    ("vertex-511", "control", {"method": "POST", "path": VERTEX_CREATE, "status": 511}, "HTTP 511"),
    ("storage-metadata-500", "storage", {"method": "GET", "path": OBJECT_READ, "status": 500}, "HTTP 500"),
    ("storage-metadata-503", "storage", {"method": "GET", "path": OBJECT_READ, "status": 503}, "HTTP 503"),
    (
        "storage-read-connection-reset",
        "storage",
        {"method": "GET", "path": OBJECT_READ, "reset_connection": True},
        "ConnectionError",
    ),
]
# The certs fetch is special: its failure is remembered for oidc.FAILURE_SECONDS.
CERTS_FAULTS = [
    ("certs-503", {"method": "GET", "path": CERTS, "status": 503}, "OIDC certs"),
    ("certs-connection-reset", {"method": "GET", "path": CERTS, "reset_connection": True}, "ConnectionError"),
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


def _certs_fetches(emulator) -> int:
    return sum(1 for method, path, _ in list(emulator.calls) if method == "GET" and path.endswith("/oauth2/v1/certs"))


@pytest.mark.parametrize(("rule", "says"), [case[1:] for case in CERTS_FAULTS], ids=[case[0] for case in CERTS_FAULTS])
def test_a_certs_fault_is_a_503_remembered_briefly_then_the_retry_creates_the_job_once(
    start_function, emulator, oidc_issuer, spec_uri, rule, says
):
    """While the certs URL fails, every request that needs it gets the same 503 at once from
    one fetch (forged tokens cannot turn into a stream of fetches); Scheduler's retry comes
    after its 30 s minimum backoff, past the failure window, and fetches again."""
    from vertex_cron_trigger.oidc import FAILURE_SECONDS

    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    token = oidc_issuer.mint(audience=function.url, email=INVOKER)
    emulator.faults.add(**rule, times=1)
    emulator.clear_calls()
    forged = [oidc_issuer.mint(audience=function.url, email=INVOKER, kid=f"unknown-{i}") for i in range(3)]

    failed = [fire(function.url, body_for(spec_uri), token=one) for one in (token, *forged)]

    assert [r.status_code for r in failed] == [503] * 4, [r.text for r in failed]
    assert all(says in r.json()["message"] and "Traceback" not in r.text for r in failed)
    assert _certs_fetches(emulator) == 1 and job_names(emulator) == []
    time.sleep(FAILURE_SECONDS)  # Scheduler's retry comes later still (min_backoff_duration 75s)
    retried = fire(function.url, body_for(spec_uri), token=token)
    assert (retried.status_code, retried.json()["outcome"]) == (200, "created")
    assert fire(function.url, body_for(spec_uri), token=token).json()["outcome"] == "duplicate"
    assert job_names(emulator) == [JOB] and _certs_fetches(emulator) == 2


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


def test_a_storage_timeout_is_a_503_and_the_retry_creates(
    in_process_function, emulator, storage_emulator, spec_uri, monkeypatch
):
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


def _one_failed_then_created_then_duplicate(function, emulator, uri, token=None, *, says):
    """The firing fails with a 503 saying `says`, Scheduler's retry creates the job, a third
    delivery is a duplicate; one log line each; one job in the end."""
    failed = fire(function.url, body_for(uri), token=token)
    assert failed.status_code == 503, failed.text
    assert failed.json()["outcome"] == "failed" and says in failed.json()["message"], failed.text
    assert job_names(emulator) == []
    retried = fire(function.url, body_for(uri), token=token)
    assert (retried.status_code, retried.json()["outcome"]) == (200, "created"), retried.text
    again = fire(function.url, body_for(uri), token=token)
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate"), again.text
    assert job_names(emulator) == [JOB]
    first, second, third = function.log_lines()
    assert (first["severity"], first["outcome"], first["status"]) == ("ERROR", "failed", 503)
    assert says in first["message"]
    assert (second["outcome"], third["outcome"]) == ("created", "duplicate")
    return failed


# -- Vertex AI answers the emulator cannot give (a FaultFront before it) ---------------------


def test_a_409_aborted_is_a_503_not_a_duplicate_and_the_retry_creates_once(start_function, emulator, spec_uri):
    """409 is two things in Google APIs: ALREADY_EXISTS (the firing already ran) and ABORTED
    (a concurrency conflict: nothing was created, try again). Only the first is a duplicate.
    The emulator's 409 fault answers `"status": "ABORTED"` (common.HTTP_STATUS_NAME)."""
    emulator.faults.add(
        method="POST",
        path=VERTEX_CREATE,
        status=409,
        times=1,
        message="The operation was aborted due to a concurrent modification.",
    )
    function = start_function()

    failed = _one_failed_then_created_then_duplicate(function, emulator, spec_uri, says="409")

    assert "ABORTED" in failed.json()["message"] and "already exists" not in failed.json()["message"]


def test_a_409_without_a_google_status_is_a_503_not_a_duplicate(start_function, emulator, fault_front, spec_uri):
    """A 409 that does not say ALREADY_EXISTS (here: no `error.status`, as a proxy might answer)
    does not prove the job exists, so it is not a duplicate."""
    front = fault_front(emulator.url)
    front.answer("POST", VERTEX_CREATE, 409, {"error": {"code": 409, "message": "Conflict"}})
    function = start_function(VERTEX_CRON_EMULATOR_HOST=front.url)

    failed = _one_failed_then_created_then_duplicate(function, emulator, spec_uri, says="409")

    assert "no Google status" in failed.json()["message"] and "already exists" not in failed.json()["message"]
    assert len(front.broken) == 1


def test_a_create_reply_cut_mid_body_is_a_503_and_the_retry_is_the_duplicate(
    start_function, emulator, fault_front, spec_uri
):
    """The create reached Vertex AI and landed; its reply broke off halfway (ChunkedEncodingError).
    The function cannot know the job exists: 503, and Scheduler's retry answers duplicate."""
    front = fault_front(emulator.url)
    front.cut("POST", VERTEX_CREATE)
    function = start_function(VERTEX_CRON_EMULATOR_HOST=front.url)

    failed = fire(function.url, body_for(spec_uri))

    assert failed.status_code == 503, failed.text
    assert failed.json()["outcome"] == "failed" and "ChunkedEncodingError" in failed.json()["message"]
    assert "Traceback" not in failed.text
    assert job_names(emulator) == [JOB]  # it landed
    retried = fire(function.url, body_for(spec_uri))
    assert (retried.status_code, retried.json()["outcome"]) == (200, "duplicate"), retried.text
    assert job_names(emulator) == [JOB]
    first, second = function.log_lines()
    assert (first["severity"], first["outcome"], first["status"]) == ("ERROR", "failed", 503)
    assert second["outcome"] == "duplicate"


# -- the Cloud Storage download itself --------------------------------------------------------
# A pinned spec_uri (gs://B/O#GENERATION) skips the metadata GET (spec_store.py), so each
# rule below spoils the media download, not the lookup before it.

DOWNLOAD_FAULTS = [
    ("download-500", {"status": 500}, "HTTP 500"),
    ("download-503", {"status": 503}, "HTTP 503"),
    ("download-507", {"status": 507}, "HTTP 507"),
    ("download-connection-reset", {"reset_connection": True}, "ConnectionError"),
]


def _object_gets(storage_emulator, bucket):
    return [
        path
        for method, path in storage_emulator.calls
        if method == "GET" and path.endswith(f"/b/{bucket}/o/{SPEC_OBJECT}")
    ]


@pytest.mark.parametrize(
    ("rule", "says"), [case[1:] for case in DOWNLOAD_FAULTS], ids=[case[0] for case in DOWNLOAD_FAULTS]
)
def test_a_failed_spec_download_is_a_503_and_the_retry_creates_the_job_once(
    start_function, emulator, storage_emulator, spec_bucket, pinned_spec_uri, rule, says
):
    function = start_function()
    fault = storage_emulator.faults.add(method="GET", path=OBJECT_READ, times=1, **rule)

    failed = _one_failed_then_created_then_duplicate(function, emulator, pinned_spec_uri, says=says)

    assert fault.hits == 1
    # Two GETs of the object, both media downloads: the spoiled one and the retry's (the
    # third delivery is served from the instance's spec cache). No metadata GET.
    assert len(_object_gets(storage_emulator, spec_bucket)) == 2
    if "status" in rule:  # the error names the pinned object it was downloading
        assert f"reading {pinned_spec_uri}:" in failed.json()["message"]


def test_a_spec_download_cut_mid_body_is_a_503_and_the_retry_creates(
    start_function, emulator, storage_emulator, fault_front, pinned_spec_uri
):
    front = fault_front(storage_emulator.url)
    front.cut("GET", OBJECT_READ)
    function = start_function(STORAGE_EMULATOR_HOST=front.url)

    _one_failed_then_created_then_duplicate(function, emulator, pinned_spec_uri, says="download")

    assert len(front.broken) == 1


def test_a_trickling_spec_download_is_stopped_at_the_request_deadline_with_a_503(
    in_process_function, emulator, storage_emulator, fault_front, pinned_spec_uri, monkeypatch, capsys
):
    """A byte every 50 ms never trips a read timeout: only the request's deadline stops it
    (1 s here, 150 s deployed), before the platform would cut the request off unanswered."""
    from vertex_cron_trigger import deadline

    monkeypatch.setattr(deadline, "REQUEST_SECONDS", 1.0)
    front = fault_front(storage_emulator.url)
    front.trickle("GET", OBJECT_READ)
    client = in_process_function(STORAGE_EMULATOR_HOST=front.url)
    capsys.readouterr()

    response = client.post("/", data=json.dumps(body_for(pinned_spec_uri)), headers=scheduler_headers())

    assert response.status_code == 503, response.get_json()
    assert "the request's 1 s deadline has passed" in response.get_json()["message"]
    assert len(front.broken) == 1 and job_names(emulator) == []
    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert (line["outcome"], line["status"], line["severity"]) == ("failed", 503, "ERROR")


def test_a_slow_spec_download_still_creates_the_job(start_function, emulator, storage_emulator, pinned_spec_uri):
    function = start_function()
    slow = storage_emulator.faults.add(method="GET", path=OBJECT_READ, delay_seconds=1.0, times=1)

    response = fire(function.url, body_for(pinned_spec_uri))

    assert (response.status_code, response.json()["outcome"]) == (200, "created")
    assert slow.hits == 1 and job_names(emulator) == [JOB]


def test_a_spec_download_timeout_is_a_503_and_the_retry_creates(
    in_process_function, emulator, storage_emulator, pinned_spec_uri, monkeypatch
):
    from vertex_cron_trigger import google_rest

    monkeypatch.setattr(google_rest, "STORAGE_TIMEOUT", (5.0, 0.5))
    client = in_process_function()
    slow = storage_emulator.faults.add(method="GET", path=OBJECT_READ, delay_seconds=1.5, times=1)

    timed_out = client.post("/", data=json.dumps(body_for(pinned_spec_uri)), headers=scheduler_headers())

    assert timed_out.status_code == 503 and "ReadTimeout" in timed_out.get_json()["message"]
    assert slow.hits == 1 and job_names(emulator) == []
    retried = client.post("/", data=json.dumps(body_for(pinned_spec_uri)), headers=scheduler_headers())
    assert (retried.status_code, retried.get_json()["outcome"]) == (200, "created")
    assert job_names(emulator) == [JOB]
