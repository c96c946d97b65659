"""Vertex AI pipelineJobs through the real aiplatform_v1 REST client, and raw HTTP."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import aiplatform_v1
from vertex_cron_local.emulator import Emulator

PARENT = "projects/demo-project/locations/us-central1"
SPEC = {
    "pipelineInfo": {"name": "demo"},
    "root": {
        "dag": {"tasks": {}},
        "inputDefinitions": {
            "parameters": {
                "run_date": {"parameterType": "STRING"},
                "rows": {"parameterType": "NUMBER_INTEGER", "defaultValue": 10},
                "dry_run": {"parameterType": "BOOLEAN", "isOptional": True},
            }
        },
    },
    "schemaVersion": "2.1.0",
}


def body(**overrides):
    job = {
        "pipelineSpec": SPEC,
        "runtimeConfig": {"gcsOutputDirectory": "gs://bucket/root", "parameterValues": {"run_date": "2024-01-01"}},
        "labels": {"managed-by": "vertex-cron", "vertex-cron-schedule": "nightly"},
    }
    job.update(overrides)
    return job


def create(emulator, job_id, **overrides):
    return requests.post(
        f"{emulator.url}/v1/{PARENT}/pipelineJobs", params={"pipelineJobId": job_id}, json=body(**overrides)
    )


@pytest.fixture
def client(emulator_client):
    return emulator_client(aiplatform_v1.PipelineServiceClient)


def test_create_get_list_cancel_with_real_client(client, emulator):
    job = aiplatform_v1.PipelineJob(
        display_name="nightly run",
        pipeline_spec=SPEC,
        runtime_config={"gcs_output_directory": "gs://bucket/root", "parameter_values": {"run_date": "2024-01-01"}},
        labels={"vertex-cron-schedule": "nightly"},
        service_account="wl@demo-project.iam.gserviceaccount.com",
    )
    created = client.create_pipeline_job(parent=PARENT, pipeline_job=job, pipeline_job_id="nightly-20240101-000000")
    assert created.name == f"{PARENT}/pipelineJobs/nightly-20240101-000000"
    assert created.state == aiplatform_v1.PipelineState.PIPELINE_STATE_PENDING
    assert created.create_time and created.update_time
    assert created.service_account == "wl@demo-project.iam.gserviceaccount.com"
    assert created.runtime_config.parameter_values["run_date"] == "2024-01-01"

    got = client.get_pipeline_job(name=created.name)
    assert got.display_name == "nightly run"
    listed = list(client.list_pipeline_jobs(parent=PARENT))
    assert [j.name for j in listed] == [created.name]

    client.cancel_pipeline_job(name=created.name)
    assert client.get_pipeline_job(name=created.name).state == aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED
    with pytest.raises(gexc.BadRequest):  # FAILED_PRECONDITION: already terminal
        client.cancel_pipeline_job(name=created.name)


def test_duplicate_id_is_already_exists(client):
    job = aiplatform_v1.PipelineJob(
        pipeline_spec=SPEC, runtime_config={"gcs_output_directory": "gs://b/r", "parameter_values": {"run_date": "x"}}
    )
    client.create_pipeline_job(parent=PARENT, pipeline_job=job, pipeline_job_id="dup")
    with pytest.raises(gexc.Conflict) as info:
        client.create_pipeline_job(parent=PARENT, pipeline_job=job, pipeline_job_id="dup")
    assert info.value.code == 409
    assert "already exists" in info.value.message


def test_get_missing_is_not_found(client):
    with pytest.raises(gexc.NotFound):
        client.get_pipeline_job(name=f"{PARENT}/pipelineJobs/nope")


def test_unknown_field_rejected_naming_it(emulator):
    r = create(emulator, "x1", bogusField=1)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and err["code"] == 400
    assert "bogusField" in err["message"]


def test_enum_as_int_and_name_accepted(emulator):
    # state is output-only (ignored), but must parse either way; the client sends ints.
    assert create(emulator, "e1", state=3).status_code == 200
    assert create(emulator, "e2", state="PIPELINE_STATE_RUNNING").status_code == 200
    assert create(emulator, "e3", state="NOT_A_STATE").status_code == 400


def test_alt_json_enum_encoding_query_accepted_unknown_query_rejected(emulator):
    url = f"{emulator.url}/v1/{PARENT}/pipelineJobs"
    r = requests.post(url + "?pipelineJobId=q1&%24alt=json%3Benum-encoding%3Dint", json=body())
    assert r.status_code == 200
    r = requests.get(url, params={"nope": "1"})
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "job_id, overrides, fragment",
    [
        ("Bad_ID", {}, "pipeline_job_id"),
        ("-x", {}, "pipeline_job_id"),
        ("a" * 129, {}, "pipeline_job_id"),
        ("ok1", {"pipelineSpec": None}, "pipeline_spec"),
        ("ok2", {"runtimeConfig": {"parameterValues": {"run_date": "x"}}}, "gcs_output_directory"),
        ("ok3", {"labels": {"Upper": "x"}}, "label key"),
        ("ok4", {"labels": {"k": "UPPER"}}, "label value"),
        (
            "ok5",
            {"runtimeConfig": {"gcsOutputDirectory": "gs://b/r", "parameterValues": {"run_date": "x", "nope": 1}}},
            "nope",
        ),
        (
            "ok6",
            {"runtimeConfig": {"gcsOutputDirectory": "gs://b/r", "parameterValues": {"run_date": "x", "rows": "ten"}}},
            "rows",
        ),
        ("ok7", {"runtimeConfig": {"gcsOutputDirectory": "gs://b/r"}}, "run_date"),
    ],
)
def test_validation(emulator, job_id, overrides, fragment):
    payload = body()
    for key, value in overrides.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    r = requests.post(f"{emulator.url}/v1/{PARENT}/pipelineJobs", params={"pipelineJobId": job_id}, json=payload)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fragment in r.json()["error"]["message"]


def test_id_generated_when_absent(emulator):
    r = requests.post(f"{emulator.url}/v1/{PARENT}/pipelineJobs", json=body())
    assert r.status_code == 200
    assert r.json()["name"].rsplit("/", 1)[-1].startswith("demo-")


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_state_progression_and_failure_rule(oidc_issuer):
    clock = FakeClock()
    with Emulator(clock=clock, pipeline_pending_seconds=5, pipeline_running_seconds=10) as emu:
        emu.fail_pipeline_jobs(r"^bad-", "boom")
        assert create(emu, "good-1").json()["state"] == "PIPELINE_STATE_PENDING"
        assert create(emu, "bad-1").json()["state"] == "PIPELINE_STATE_PENDING"
        get = lambda i: requests.get(f"{emu.url}/v1/{PARENT}/pipelineJobs/{i}").json()  # noqa: E731
        clock.t += 4.9
        assert get("good-1")["state"] == "PIPELINE_STATE_PENDING"
        assert "startTime" not in get("good-1")
        clock.t += 0.2
        running = get("good-1")
        assert running["state"] == "PIPELINE_STATE_RUNNING" and "startTime" in running and "endTime" not in running
        clock.t += 10
        done = get("good-1")
        assert done["state"] == "PIPELINE_STATE_SUCCEEDED" and "endTime" in done
        failed = get("bad-1")
        assert failed["state"] == "PIPELINE_STATE_FAILED"
        assert failed["error"]["message"] == "boom" and failed["error"]["code"]
        # terminal states are frozen
        clock.t += 100
        assert get("good-1")["endTime"] == done["endTime"]


def test_set_state_explicitly(emulator):
    create(emulator, "forced")
    emulator.set_pipeline_job_state("forced", "RUNNING")
    assert requests.get(f"{emulator.url}/v1/{PARENT}/pipelineJobs/forced").json()["state"] == "PIPELINE_STATE_RUNNING"
    emulator.set_pipeline_job_state("forced", "PIPELINE_STATE_FAILED", error_message="nope")
    job = emulator.pipeline_jobs()[0]
    assert job["state"] == "PIPELINE_STATE_FAILED" and job["error"]["message"] == "nope"


def _names(r):
    assert r.status_code == 200, r.text
    return sorted(j["name"].rsplit("/", 1)[-1] for j in r.json().get("pipelineJobs", []))


def test_list_filter_subset(emulator):
    emulator.pipeline_running_seconds = float("inf")
    create(emulator, "n1", labels={"vertex-cron-schedule": "nightly"})
    create(emulator, "n2", labels={"vertex-cron-schedule": "nightly"}, displayName="special")
    create(emulator, "h1", labels={"vertex-cron-schedule": "hourly"})
    emulator.set_pipeline_job_state("n2", "RUNNING")
    emulator.set_pipeline_job_state("h1", "SUCCEEDED")
    url = f"{emulator.url}/v1/{PARENT}/pipelineJobs"
    q = lambda f: _names(requests.get(url, params={"filter": f}))  # noqa: E731
    assert q('labels.vertex-cron-schedule="nightly"') == ["n1", "n2"]
    assert q(
        'labels.vertex-cron-schedule="nightly" AND (state="PIPELINE_STATE_PENDING" OR state="PIPELINE_STATE_RUNNING")'
    ) == ["n1", "n2"]
    assert q("state=PIPELINE_STATE_RUNNING") == ["n2"]
    assert q('state="PIPELINE_STATE_SUCCEEDED" OR display_name="special"') == ["h1", "n2"]
    assert q('NOT labels.vertex-cron-schedule="nightly"') == ["h1"]
    assert q("labels.vertex-cron-schedule:*") == ["h1", "n1", "n2"]
    assert q('create_time>"2000-01-01T00:00:00Z"') == ["h1", "n1", "n2"]
    for bad in ['labels.x="a" AND', "(state=PIPELINE_STATE_RUNNING", 'unknown_field="x"', "state=NOPE", '"x"']:
        r = requests.get(url, params={"filter": bad})
        assert r.status_code == 400, bad
        assert r.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_list_order_and_paging(client, emulator):
    for i in range(5):
        create(emulator, f"p{i}")
    url = f"{emulator.url}/v1/{PARENT}/pipelineJobs"
    r = requests.get(url, params={"orderBy": "create_time desc", "pageSize": 2}).json()
    assert [j["name"][-2:] for j in r["pipelineJobs"]] == ["p4", "p3"]
    r2 = requests.get(
        url, params={"orderBy": "create_time desc", "pageSize": 2, "pageToken": r["nextPageToken"]}
    ).json()
    assert [j["name"][-2:] for j in r2["pipelineJobs"]] == ["p2", "p1"]
    assert requests.get(url, params={"pageToken": "garbage"}).status_code == 400
    assert requests.get(url, params={"orderBy": "bogus"}).status_code == 400
    asc = [
        j.name[-2:]
        for j in client.list_pipeline_jobs(request={"parent": PARENT, "order_by": "create_time", "page_size": 2})
    ]
    assert asc == ["p0", "p1", "p2", "p3", "p4"]


def test_a_created_job_carries_the_servers_billing_label_and_default_service_account(emulator):
    labels = {"managed-by": "vertex-cron", "vertex-ai-pipelines-run-billing-id": "mine"}
    job = create(emulator, "with-defaults", labels=labels).json()

    assert job["labels"]["managed-by"] == "vertex-cron"
    assert job["labels"]["vertex-ai-pipelines-run-billing-id"] not in ("", "mine")  # reserved: the server's
    assert job["serviceAccount"].endswith("-compute@developer.gserviceaccount.com")
    explicit = create(emulator, "explicit-sa", serviceAccount="vc-workload@demo-project.iam.gserviceaccount.com")
    assert explicit.json()["serviceAccount"] == "vc-workload@demo-project.iam.gserviceaccount.com"


class VirtualClock:
    """Emulator time the test sets: the quota's window never depends on the machine's speed."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def limited(emulator, per_minute):
    from vertex_cron_local.emulator.faults import RateLimit

    clock = VirtualClock(1_717_200_000.0)
    emulator.clock = clock
    emulator.pipeline_create_quota = RateLimit(per_minute, clock=emulator.now)
    return clock


def test_creates_above_the_quota_are_refused_with_googles_rate_limit_error_until_the_minute_passes(emulator):
    clock = limited(emulator, per_minute=2)
    assert create(emulator, "run-1").status_code == 200
    clock.now += 30
    assert create(emulator, "run-2").status_code == 200
    clock.now += 29
    refused = create(emulator, "run-3")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    (info,) = error["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == "RATE_LIMIT_EXCEEDED" and info["domain"] == "googleapis.com"
    assert info["metadata"]["service"] == "aiplatform.googleapis.com"
    assert info["metadata"]["quota_metric"] == "aiplatform.googleapis.com/job_or_lro_submission_requests"
    assert info["metadata"]["quota_limit_value"] == "2"
    assert "run-3" not in str(emulator.pipeline_jobs())  # nothing created
    clock.now += 2  # run-1 is now more than a minute old: one slot frees, not two
    assert create(emulator, "run-3").status_code == 200
    assert create(emulator, "run-4").status_code == 429
    clock.now += 30  # run-2 leaves the window
    assert create(emulator, "run-4").status_code == 200
    assert len(emulator.pipeline_jobs()) == 4


def test_a_refused_create_costs_no_quota_and_an_existing_id_costs_one(emulator):
    clock = limited(emulator, per_minute=2)
    assert create(emulator, "run-1").status_code == 200
    assert create(emulator, "run-1").status_code == 409  # admitted, then ALREADY_EXISTS: counted
    for _ in range(5):
        assert create(emulator, "run-2").status_code == 429  # refused: not counted
    clock.now += 61
    assert create(emulator, "run-2").status_code == 200
    assert create(emulator, "run-3").status_code == 200


def test_the_real_client_sees_the_quota_refusal_as_too_many_requests(client, emulator):
    limited(emulator, per_minute=1)
    job = aiplatform_v1.PipelineJob(
        pipeline_spec=SPEC,
        runtime_config={"gcs_output_directory": "gs://bucket/root", "parameter_values": {"run_date": "2024-01-01"}},
    )
    client.create_pipeline_job(parent=PARENT, pipeline_job=job, pipeline_job_id="first")
    with pytest.raises(gexc.TooManyRequests):
        client.create_pipeline_job(parent=PARENT, pipeline_job=job, pipeline_job_id="second")


def test_the_quota_limits_creates_only(emulator):
    limited(emulator, per_minute=1)
    assert create(emulator, "run-1").status_code == 200
    assert create(emulator, "run-2").status_code == 429
    listed = requests.get(f"{emulator.url}/v1/{PARENT}/pipelineJobs")
    assert listed.status_code == 200 and len(listed.json()["pipelineJobs"]) == 1
    assert requests.get(f"{emulator.url}/v1/{PARENT}/pipelineJobs/run-1").status_code == 200


def test_a_lists_read_mask_returns_only_the_fields_it_names_after_filtering_and_ordering_on_all(client, emulator):
    for i in range(3):
        assert create(emulator, f"m{i}").status_code == 200
    request = {
        "parent": PARENT,
        "filter": 'labels.vertex-cron-schedule="nightly" AND create_time>="2000-01-01T00:00:00Z"',
        "order_by": "create_time",
        "read_mask": {"paths": ["name", "create_time", "labels"]},
    }
    listed = list(client.list_pipeline_jobs(request=request))

    assert [j.name[-2:] for j in listed] == ["m0", "m1", "m2"]
    assert all(j.create_time and j.labels["vertex-cron-schedule"] == "nightly" for j in listed)
    assert not any(j.pipeline_spec or j.runtime_config.parameter_values or j.state for j in listed)
    everything = requests.get(f"{emulator.url}/v1/{PARENT}/pipelineJobs", params={"readMask": "*"}).json()
    assert all("pipelineSpec" in j for j in everything["pipelineJobs"])
