"""The Discovery-document validator (emulator/discovery.py): what it refuses, what it only
records, and how both emulators answer a request Google's schema does not allow."""

from __future__ import annotations

import json

import pytest
import requests
from vertex_cron_local.emulator.discovery import Violation, validator

PARENT = "projects/demo-project/locations/us-central1"
JOB = f"{PARENT}/jobs/vertex-cron-nightly"
JOB_BODY = {
    "name": JOB,
    "schedule": "0 2 * * *",
    "timeZone": "Europe/Paris",
    "attemptDeadline": "180s",
    "retryConfig": {"retryCount": 3, "minBackoffDuration": "5s"},
    "httpTarget": {
        "uri": "https://vertex-cron-trigger-abc-uc.a.run.app",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": "eyJzY2hlZHVsZSI6Im5pZ2h0bHkifQ==",
        "oidcToken": {"serviceAccountEmail": "sched@demo-project.iam.gserviceaccount.com"},
    },
}
FUNCTION_BODY = {
    "buildConfig": {
        "runtime": "python312",
        "entryPoint": "trigger",
        "source": {"storageSource": {"bucket": "gcf-v2-uploads-1-us-central1", "object": "a.zip", "generation": "7"}},
    },
    "serviceConfig": {"maxInstanceCount": 3, "timeoutSeconds": 180},
}


def check(method: str, path: str, body: dict | None = None, **query: str) -> list[Violation]:
    data = json.dumps(body).encode() if body is not None else b""
    return validator().check(method, path, {k: [v] for k, v in query.items()}, data)


def job_with(**changes) -> dict:
    body = json.loads(json.dumps(JOB_BODY))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = body
        for key in parents:
            node = node[key]
        node[last] = value
    return body


def test_requests_as_the_documents_describe_them_pass():
    assert check("POST", f"/v1/{PARENT}/jobs", JOB_BODY, **{"$alt": "json;enum-encoding=int"}) == []
    assert check("PATCH", f"/v1/{JOB}", job_with(httpTarget__httpMethod=1), updateMask="schedule,httpTarget.uri") == []
    assert check("POST", f"/v1/{JOB}:pause", {}) == []
    assert check("POST", f"/v2/{PARENT}/functions", FUNCTION_BODY, functionId="vertex-cron-trigger") == []
    assert check("GET", f"/v1/{PARENT}/pipelineJobs", None, filter='labels.schedule="x"', pageSize="20") == []
    assert check("GET", "/v1/projects/example.com:p/locations/us-central1/jobs") == []  # a domain-scoped project
    assert check("PUT", "/upload/storage/v1/b/bk/o", None, uploadType="resumable", upload_id="s1") == []  # a chunk


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (job_with(httpTarget__bogus=1), "body.httpTarget.bogus"),  # unknown field
        (job_with(schedule=5), "body.schedule"),  # wrong type
        (job_with(retryConfig__retryCount="three"), "body.retryConfig.retryCount"),  # not an integer
        (job_with(httpTarget__httpMethod="FETCH"), "body.httpTarget.httpMethod"),  # bad enum name
        (job_with(httpTarget__httpMethod=42), "body.httpTarget.httpMethod"),  # bad enum number
        (job_with(attemptDeadline="3m"), "body.attemptDeadline"),  # malformed google-duration
        (job_with(attemptDeadline=180), "body.attemptDeadline"),  # a duration is a string
        (job_with(httpTarget__body="not base64!"), "body.httpTarget.body"),  # bytes are base64
        (job_with(httpTarget__headers=["Content-Type"]), "body.httpTarget.headers"),  # a map is an object
    ],
)
def test_the_validator_refuses_what_the_job_schema_does_not_allow(body, where):
    (violation,) = check("POST", f"/v1/{PARENT}/jobs", body)
    assert violation.where == where and violation.refused, violation


def test_an_int64_sent_as_a_json_number_is_refused_where_the_document_says_string():
    body = json.loads(json.dumps(FUNCTION_BODY))
    body["buildConfig"]["source"]["storageSource"]["generation"] = 7
    (violation,) = check("POST", f"/v2/{PARENT}/functions", body, functionId="vertex-cron-trigger")
    assert violation.where == "body.buildConfig.source.storageSource.generation" and violation.refused


def test_a_malformed_timestamp_is_refused():
    # scheduleTime is output-only (recorded, not refused); its value is still checked.
    found = check("POST", f"/v1/{PARENT}/jobs", job_with(scheduleTime="yesterday"))
    assert {(v.where, v.refused) for v in found} == {("body.scheduleTime", False), ("body.scheduleTime", True)}
    assert [
        v.refused for v in check("POST", f"/v1/{PARENT}/jobs", job_with(scheduleTime="2026-01-01T02:00:00+01:00"))
    ] == [False]
    (violation,) = check(
        "POST", "/upload/storage/v1/b/bk/o", {"name": "a", "customTime": "soon"}, uploadType="resumable"
    )
    assert violation.where == "body.customTime" and violation.refused


def test_update_mask_paths_must_name_fields_of_the_resource():
    (violation,) = check("PATCH", f"/v1/{JOB}", JOB_BODY, updateMask="schedule,httpTarget.bogus")
    assert violation.where == "query.updateMask" and "httpTarget.bogus" in violation.problem and violation.refused
    assert check("PATCH", f"/v2/{PARENT}/functions/f", FUNCTION_BODY, updateMask="labels.team") == []  # a map key
    assert check("PATCH", f"/v1/{JOB}", JOB_BODY, updateMask="time_zone,http_target.uri") == []  # proto names


def test_body_fields_must_use_the_documents_json_names():
    (violation,) = check("POST", f"/v1/{PARENT}/jobs", job_with(time_zone="UTC"))
    assert violation.where == "body.time_zone" and violation.refused


def test_output_only_fields_are_recorded_but_not_refused():
    found = check("PATCH", f"/v1/{JOB}", job_with(state="ENABLED"), updateMask="state")
    assert {(v.where, v.refused) for v in found} == {("body.state", False), ("query.updateMask", False)}


def test_unknown_methods_and_query_parameters_are_refused():
    assert [v.where for v in check("POST", f"/v1/{JOB}:explode", {})] == ["path"]
    assert [v.where for v in check("PUT", f"/v1/{JOB}", JOB_BODY)] == ["method"]
    assert [v.where for v in check("GET", f"/v1/{JOB}", None, view="FULL")] == ["query.view"]
    assert [v.where for v in check("GET", f"/v1/{PARENT}/jobs", None, pageSize="ten")] == ["query.pageSize"]
    assert [v.where for v in check("GET", f"/v1/{JOB}", None, **{"$alt": "xml"})] == ["query.$alt"]


def test_the_emulator_answers_a_google_shaped_400_and_logs_the_violation(emulator):
    response = requests.post(f"{emulator.url}/v1/{PARENT}/jobs", json=job_with(attemptDeadline="3m"))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and "body.attemptDeadline" in error["message"]
    assert emulator.scheduler_jobs() == []
    logged = requests.get(f"{emulator.url}/_emulator/calls").json()["violations"]
    assert [(v["where"], v["refused"]) for v in logged] == [("body.attemptDeadline", True)]


def test_the_emulator_accepts_but_logs_an_output_only_field(emulator):
    response = requests.post(f"{emulator.url}/v1/{PARENT}/jobs", json=job_with(userUpdateTime="2026-01-01T00:00:00Z"))

    assert response.status_code == 200, response.text
    assert [(v.where, v.refused) for v in emulator.violations] == [("body.userUpdateTime", False)]


def test_the_storage_emulator_refuses_unknown_object_metadata(storage_emulator, spec_bucket):
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        + json.dumps({"name": "specs/a.json", "colour": "blue"})
        + f"\r\n--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}--\r\n"
    )
    before = len(storage_emulator.violations)

    response = requests.post(
        f"{storage_emulator.url}/upload/storage/v1/b/{spec_bucket}/o",
        params={"uploadType": "multipart"},
        data=body.encode(),
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
    )

    assert response.status_code == 400 and "body.colour" in response.json()["error"]["message"]
    assert [v.where for v in storage_emulator.violations[before:]] == ["body.colour"]
    missing = requests.get(f"{storage_emulator.url}/storage/v1/b/{spec_bucket}/o/specs%2Fa.json")
    assert missing.status_code == 404


def _enum_pairs():
    from google.cloud import functions_v2, scheduler_v1

    return [
        ("cloudscheduler.v1", "HttpTarget", "httpMethod", scheduler_v1.HttpMethod),
        ("cloudfunctions.v2", "Function", "environment", functions_v2.Environment),
        ("cloudfunctions.v2", "ServiceConfig", "ingressSettings", functions_v2.ServiceConfig.IngressSettings),
        ("cloudfunctions.v2", "ServiceConfig", "securityLevel", functions_v2.ServiceConfig.SecurityLevel),
        (
            "cloudfunctions.v2",
            "ServiceConfig",
            "vpcConnectorEgressSettings",
            functions_v2.ServiceConfig.VpcConnectorEgressSettings,
        ),
    ]


def test_an_enum_number_is_its_index_in_the_discovery_list_for_the_enums_we_send():
    """Numeric enums are checked by their index in Discovery's list; that holds where the
    proto numbers the values 0..n-1 in declaration order, as for every enum vertex-cron sends."""
    from vertex_cron_local.emulator.discovery import document

    for name, schema, field, proto_enum in _enum_pairs():
        listed = document(name)["schemas"][schema]["properties"][field]["enum"]
        by_number = [member.name for member in sorted(proto_enum, key=int)]
        assert listed == by_number and [int(m) for m in proto_enum] == list(range(len(listed))), (schema, field)
