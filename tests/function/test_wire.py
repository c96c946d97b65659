"""The function as Cloud Scheduler meets it: served by functions-framework, spec in the
Cloud Storage emulator, PipelineJobs in the Vertex AI emulator, tokens from the local issuer."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from trigger_wire import FIRING, INVOKER, PARENT, WORKLOAD_SA, body_for, delete, fire, jobs_of


def test_a_firing_creates_one_typed_pipeline_job(start_function, emulator, spec):
    function = start_function()
    response = fire(
        function, body_for(spec, parameter_values={"run_date": "{{schedule_time:%Y-%m-%d}}", "sample_rows": "500"})
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "created" and response.json()["duplicate"] is False
    name = f"{PARENT}/pipelineJobs/nightly-20240501-020000"
    assert response.json()["job"] == name
    job = jobs_of(emulator)[name]
    assert job["serviceAccount"] == WORKLOAD_SA
    assert job["runtimeConfig"]["parameterValues"] == {"run_date": "2024-05-01", "sample_rows": 500}
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://vertex-cron-demo-artifacts/pipeline-root"
    assert job["labels"]["vertex-cron-schedule"] == "nightly" and job["labels"]["managed-by"] == "vertex-cron"
    [line] = function.log_lines()
    assert line["outcome"] == "created" and line["job"] == name and line["severity"] == "INFO"
    assert line["logical_time"] == FIRING and isinstance(line["duration_ms"], float)


def test_the_same_delivery_ten_times_concurrently_makes_exactly_one_job(start_function, emulator, spec):
    function = start_function()
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: fire(function, body_for(spec)), range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["created"] + ["duplicate"] * 9
    assert len(jobs_of(emulator)) == 1
    assert len(function.log_lines()) == 10


def test_a_different_logical_time_is_a_second_job(start_function, emulator, spec):
    function = start_function()
    assert fire(function, body_for(spec)).json()["outcome"] == "created"
    assert fire(function, body_for(spec), schedule_time="2024-05-02T02:00:00Z").json()["outcome"] == "created"
    assert sorted(jobs_of(emulator)) == [
        f"{PARENT}/pipelineJobs/nightly-20240501-020000",
        f"{PARENT}/pipelineJobs/nightly-20240502-020000",
    ]


def test_a_cached_pinned_spec_needs_no_second_read(start_function, emulator, storage_emulator, spec):
    function = start_function()
    pinned = f"{spec['uri']}#{spec['generation']}"
    assert fire(function, body_for(spec, spec_uri=pinned)).status_code == 200
    delete(storage_emulator.url, spec["bucket"], "specs/nightly.yaml")
    # Served from the warm instance's cache: Cloud Storage no longer has the object.
    again = fire(function, body_for(spec, spec_uri=pinned), schedule_time="2024-05-02T02:00:00Z")
    assert again.status_code == 200 and again.json()["outcome"] == "created"
    # Unpinned, the function must ask Cloud Storage for the live generation, and says what is missing.
    missing = fire(function, body_for(spec), schedule_time="2024-05-03T02:00:00Z")
    assert missing.status_code == 400 and spec["uri"] in missing.json()["message"]
    assert len(jobs_of(emulator)) == 2


def test_spec_outside_the_bucket_is_forbidden_and_creates_nothing(start_function, emulator, spec):
    function = start_function()
    response = fire(function, body_for(spec, spec_uri="gs://someone-elses-bucket/p.json"))
    assert response.status_code == 403 and response.json()["field"] == "spec_uri"
    assert jobs_of(emulator) == {}


def test_bad_requests_are_json_400s_naming_the_field(start_function, emulator, spec):
    function = start_function()
    cases = [
        (body_for(spec, max_concurent_runs=1), "max_concurent_runs"),
        (body_for(spec, parameter_values={"run_date": "d", "sample_rows": "many"}), "parameter_values.sample_rows"),
        (body_for(spec, parameter_values={"run_date": "{{schedule_date}}"}), "parameter_values.run_date"),
        (body_for(spec, parameter_values={}), "parameter_values.run_date"),
    ]
    for body, field in cases:
        response = fire(function, body)
        assert (response.status_code, response.json()["field"]) == (400, field), response.text
    no_time = fire(function, body_for(spec), schedule_time=None)
    assert no_time.status_code == 400 and no_time.json()["field"] == "cron"
    not_json = requests.post(function.url, data=b"<xml/>", timeout=30)
    assert not_json.status_code == 400 and not_json.headers["Content-Type"] == "application/json"
    wrong_method = requests.get(function.url, timeout=30)
    assert wrong_method.status_code == 405 and wrong_method.json()["outcome"] == "rejected"
    assert jobs_of(emulator) == {}
    assert all(line["severity"] == "ERROR" and line["outcome"] == "rejected" for line in function.log_lines())


def test_without_header_the_body_cron_gives_the_logical_time(start_function, emulator, spec):
    function = start_function()
    response = fire(function, body_for(spec, cron="0 2 * * *", time_zone="UTC"), schedule_time=None)
    assert response.status_code == 200, response.text
    assert response.json()["logical_time"].endswith("T02:00:00Z")


def test_max_concurrent_runs_skips_while_a_run_is_active(start_function, emulator, spec):
    function = start_function()
    first = fire(function, body_for(spec, max_concurrent_runs=1))
    emulator.set_pipeline_job_state(first.json()["job"], "PIPELINE_STATE_RUNNING")
    again = fire(function, body_for(spec, max_concurrent_runs=1))
    assert again.json()["outcome"] == "duplicate"  # its own run does not count against it
    second = fire(function, body_for(spec, max_concurrent_runs=1), schedule_time="2024-05-02T02:00:00Z")
    assert second.status_code == 200 and second.json()["outcome"] == "skipped"
    assert len(jobs_of(emulator)) == 1
    assert function.log_lines()[-1]["severity"] == "WARNING"
    assert function.log_lines()[-1]["job"] is None  # the skipped firing's job was never made


def test_time_window_and_caching(start_function, emulator, spec):
    function = start_function()
    early = fire(function, body_for(spec, start_time="2024-06-01T00:00:00Z"))
    assert early.json()["outcome"] == "skipped" and jobs_of(emulator) == {}
    cached_off = fire(function, body_for(spec, end_time="2024-06-01T00:00:00Z", enable_caching=False))
    assert cached_off.json()["outcome"] == "created"
    tasks = jobs_of(emulator)[cached_off.json()["job"]]["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {task["cachingOptions"]["enableCache"] for task in tasks.values()} == {False}


def test_transient_vertex_failure_is_503_then_the_retry_creates(start_function, emulator, spec):
    function = start_function()
    emulator.faults.add(method="POST", path=".*/pipelineJobs$", status=503, times=1)
    failed = fire(function, body_for(spec))
    assert failed.status_code == 503 and failed.json()["outcome"] == "failed"
    assert fire(function, body_for(spec)).json()["outcome"] == "created"
    assert function.log_lines()[0]["severity"] == "ERROR"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        # What Vertex AI answers (python-aiplatform#1073): INVALID_ARGUMENT, not PERMISSION_DENIED.
        (400, f"You do not have permission to act as service_account: {WORKLOAD_SA}. (or it may not exist)."),
        (403, f"Permission 'iam.serviceAccounts.actAs' denied on service account {WORKLOAD_SA}"),
    ],
)
def test_a_missing_act_as_is_not_retried_and_says_what_to_grant(start_function, emulator, spec, status, message):
    function = start_function()
    emulator.faults.add(method="POST", path=".*/pipelineJobs$", status=status, message=message)
    response = fire(function, body_for(spec))
    assert response.status_code == 500
    assert (
        f"the function's service account cannot act as {WORKLOAD_SA}: grant it roles/iam.serviceAccountUser"
        in (response.json()["message"])
    )


def test_missing_configuration_is_a_json_500_naming_the_variable(start_function, spec):
    function = start_function(VERTEX_CRON_WORKLOAD_SA="")
    response = fire(function, body_for(spec))
    assert response.status_code == 500 and "VERTEX_CRON_WORKLOAD_SA" in response.json()["message"]
    assert "Traceback" not in response.text and function.log_lines()[0]["severity"] == "ERROR"


def _tamper(token: str, **claims) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_tokens_are_verified_when_invokers_are_restricted(start_function, emulator, oidc_issuer, spec):
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    good = oidc_issuer.mint(audience=function.url, email=INVOKER)
    intruder = oidc_issuer.mint(audience=function.url, email="intruder@wire-project.iam.gserviceaccount.com")
    assert fire(function, body_for(spec)).status_code == 401
    assert fire(function, body_for(spec), token=_tamper(intruder, email=INVOKER)).status_code == 401
    assert (
        fire(function, body_for(spec), token=oidc_issuer.mint(audience="https://elsewhere", email=INVOKER)).status_code
        == 401
    )
    assert fire(function, body_for(spec), token=intruder).status_code == 403
    assert jobs_of(emulator) == {}
    # Stripped signatures are only Cloud Run's to send.
    header, payload, _ = good.split(".")
    assert fire(function, body_for(spec), token=f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE").status_code == 401
    assert fire(function, body_for(spec), token=good).json()["outcome"] == "created"
    assert len(jobs_of(emulator)) == 1
