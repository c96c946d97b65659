"""Emulator runtime: faults, latency, call log, control API, persistence, entry point."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile

import pytest
import requests
from google.api_core import exceptions as gexc
from google.api_core.future import polling
from google.cloud import functions_v2, scheduler_v1
from vertex_cron_local.emulator import Emulator
from vertex_cron_local.emulator.clients import make_emulator_client

PARENT = "projects/demo-project/locations/us-central1"
JOB = {
    "name": f"{PARENT}/jobs/vertex-cron-nightly",
    "schedule": "0 2 * * *",
    "timeZone": "UTC",
    "httpTarget": {
        "uri": "https://fn.example",
        "oidcToken": {"serviceAccountEmail": "s@demo-project.iam.gserviceaccount.com"},
    },
}
PIPELINE = {
    "pipelineSpec": {"pipelineInfo": {"name": "demo"}, "root": {"dag": {}}},
    "runtimeConfig": {"gcsOutputDirectory": "gs://b/root"},
}
FAST = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.1).with_timeout(10)


def jobs_url(emulator):
    return f"{emulator.url}/v1/{PARENT}/jobs"


def test_fault_status_times_then_normal(emulator):
    emulator.faults.add(method="POST", path=r"/jobs$", status=503, times=2)
    assert requests.post(jobs_url(emulator), json=JOB).json()["error"]["status"] == "UNAVAILABLE"
    r = requests.post(jobs_url(emulator), json=JOB)
    assert r.status_code == 503 and r.json()["error"]["code"] == 503
    assert requests.get(jobs_url(emulator)).status_code == 200  # GET does not match
    assert requests.post(jobs_url(emulator), json=JOB).status_code == 200
    assert emulator.faults.pending() == []


def test_fault_statuses_are_google_shaped_through_real_client(emulator, emulator_client):
    client = emulator_client(scheduler_v1.CloudSchedulerClient)
    for status, exc_type, _name in [
        (429, gexc.TooManyRequests, "RESOURCE_EXHAUSTED"),
        (403, gexc.Forbidden, "PERMISSION_DENIED"),
        (409, gexc.Conflict, "ABORTED"),
    ]:
        emulator.faults.add(method="POST", path="/jobs", status=status)
        with pytest.raises(exc_type):
            client.create_job(
                parent=PARENT,
                job=scheduler_v1.Job(name=JOB["name"], schedule="* * * * *", http_target={"uri": "https://x"}),
            )
        assert emulator.calls[-1][2] == status
    r = requests.post(jobs_url(emulator), json=JOB)
    assert r.status_code == 200


def test_faults_over_http_delay_and_reset(emulator):
    r = requests.post(emulator.url + "/_emulator/faults", json={"method": "GET", "path": "/jobs", "delay_seconds": 0.3})
    assert r.status_code == 200 and r.json()["status"] is None
    start = time.monotonic()
    assert requests.get(jobs_url(emulator)).status_code == 200
    assert time.monotonic() - start >= 0.3
    requests.post(emulator.url + "/_emulator/faults", json={"path": "/jobs", "reset_connection": True})
    with pytest.raises(requests.ConnectionError):
        requests.get(jobs_url(emulator))
    assert requests.get(jobs_url(emulator)).status_code == 200
    bad = requests.post(emulator.url + "/_emulator/faults", json={"pathz": "x"})
    assert bad.status_code == 400
    listed = requests.get(emulator.url + "/_emulator/faults").json()["faults"]
    assert len(listed) == 2 and all(f["hits"] == 1 for f in listed)


def test_a_lost_answer_serves_the_request_then_resets_the_connection(emulator):
    rule = requests.post(
        emulator.url + "/_emulator/faults", json={"method": "POST", "path": "/jobs$", "lose_answer": True}
    )
    assert rule.status_code == 200 and rule.json()["lose_answer"] is True and rule.json()["status"] is None

    with pytest.raises(requests.ConnectionError):
        requests.post(jobs_url(emulator), json=JOB)

    assert [job["name"] for job in emulator.scheduler_jobs()] == [JOB["name"]]  # the create happened
    assert emulator.calls[-1] == ("POST", f"/v1/{PARENT}/jobs", 200) and emulator.mutating_calls() == 1
    again = requests.post(jobs_url(emulator), json=JOB)  # what a blind retry meets
    assert again.status_code == 409 and again.json()["error"]["status"] == "ALREADY_EXISTS"
    with pytest.raises(ValueError):
        emulator.faults.add(path="/jobs", lose_answer=True, status=503)


def test_latency_applies_to_api_calls_only(oidc_issuer):
    with Emulator(latency_seconds=0.2) as emu:
        start = time.monotonic()
        requests.get(emu.url + "/_emulator/health")
        assert time.monotonic() - start < 0.2
        start = time.monotonic()
        requests.get(jobs_url(emu))
        assert time.monotonic() - start >= 0.2


def test_call_log_and_reset(emulator):
    requests.post(jobs_url(emulator), json=JOB)
    requests.get(jobs_url(emulator))
    requests.get(emulator.url + "/_emulator/calls")  # control paths are not logged
    assert emulator.calls == [("POST", f"/v1/{PARENT}/jobs", 200), ("GET", f"/v1/{PARENT}/jobs", 200)]
    assert emulator.mutating_calls() == 1
    emulator.faults.add(path="x", times=None)
    assert requests.post(emulator.url + "/_emulator/reset").status_code == 200
    assert emulator.calls == [] and emulator.faults.rules == [] and emulator.scheduler_jobs() == []


def test_reset_forgets_every_apis_resources_and_each_api_serves_again(emulator):
    repositories = f"{emulator.url}/v1/{PARENT}/repositories"
    pipeline_jobs = f"{emulator.url}/v1/{PARENT}/pipelineJobs"
    assert requests.post(jobs_url(emulator), json=JOB).status_code == 200
    assert requests.post(repositories, params={"repositoryId": "pipelines"}, json={"format": "KFP"}).ok
    assert requests.post(pipeline_jobs, params={"pipelineJobId": "run-1"}, json=PIPELINE).ok
    emulator.add_service_account("demo-project", "runner@demo-project.iam.gserviceaccount.com")
    emulator.reset()
    assert requests.get(jobs_url(emulator)).json() == {}
    assert requests.get(f"{repositories}/pipelines").status_code == 404
    assert requests.get(pipeline_jobs).json() == {}
    account = f"{emulator.url}/v1/projects/demo-project/serviceAccounts/runner@demo-project.iam.gserviceaccount.com"
    assert requests.get(account).status_code == 404
    assert requests.post(jobs_url(emulator), json=JOB).status_code == 200
    assert requests.post(repositories, params={"repositoryId": "pipelines"}, json={"format": "KFP"}).ok
    assert requests.get(f"{repositories}/pipelines").json()["format"] == "KFP"


def _zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.py", "def trigger(request):\n    return 'ok'\n")
    return buf.getvalue()


def test_persistence_across_restart(tmp_path, emulator_client):
    with Emulator(state_dir=tmp_path) as first:
        assert requests.post(jobs_url(first), json=JOB).status_code == 200
        requests.post(f"{first.url}/v1/{PARENT}/pipelineJobs", params={"pipelineJobId": "run-1"}, json=PIPELINE)
        fclient = make_emulator_client(functions_v2.FunctionServiceClient, first)
        up = fclient.generate_upload_url(request={"parent": PARENT})
        requests.put(up.upload_url, data=_zip(), headers={"Content-Type": "application/zip"})
        fn = functions_v2.Function(
            build_config={
                "runtime": "python312",
                "entry_point": "trigger",
                "source": {"storage_source": up.storage_source},
            }
        )
        deployed = fclient.create_function(parent=PARENT, function=fn, function_id="trigger").result(polling=FAST)
        first.record_scheduler_attempt(JOB["name"], "2030-01-01T02:00:00Z", 200)
        port = first.port
    assert (tmp_path / "emulator-state.json").exists()
    with Emulator(state_dir=tmp_path, port=port) as second:
        job = requests.get(f"{second.url}/v1/{JOB['name']}").json()
        assert job["schedule"] == "0 2 * * *" and job["lastAttemptTime"].startswith("2030-01-01T02:00:00")
        assert requests.get(f"{second.url}/v1/{PARENT}/pipelineJobs/run-1").status_code == 200
        fclient = make_emulator_client(functions_v2.FunctionServiceClient, second)
        got = fclient.get_function(name=deployed.name)
        assert got.service_config.uri == deployed.service_config.uri
        assert zipfile.ZipFile(io.BytesIO(second.function_source(deployed.name))).namelist() == ["main.py"]
        requests.delete(f"{second.url}/v1/{JOB['name']}")
    with Emulator(state_dir=tmp_path) as third:
        assert requests.get(f"{third.url}/v1/{JOB['name']}").status_code == 404


def test_in_flight_operation_survives_restart(tmp_path):
    with Emulator(state_dir=tmp_path, function_deploy_seconds=60) as first:
        fclient = make_emulator_client(functions_v2.FunctionServiceClient, first)
        up = fclient.generate_upload_url(request={"parent": PARENT})
        requests.put(up.upload_url, data=_zip(), headers={"Content-Type": "application/zip"})
        fn = functions_v2.Function(
            build_config={
                "runtime": "python312",
                "entry_point": "trigger",
                "source": {"storage_source": up.storage_source},
            }
        )
        op_name = fclient.create_function(parent=PARENT, function=fn, function_id="trigger").operation.name
    with Emulator(state_dir=tmp_path, function_deploy_seconds=0) as second:
        assert requests.get(f"{second.url}/v2/{op_name}").json()["done"] is False  # due time was fixed at creation
        for rec in second.store.collection("operations").values():
            rec["meta"]["due"] = 0
        assert requests.get(f"{second.url}/v2/{op_name}").json()["done"] is True


def test_entry_point_runs_and_serves(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vertex_cron_local.emulator",
            "--state-dir",
            str(tmp_path),
            "--oidc",
            "--bucket",
            "specs",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(3))
        url = lines["VERTEX_CRON_EMULATOR_HOST"]
        assert requests.post(f"{url}/v1/{PARENT}/jobs", json=JOB).status_code == 200
        assert requests.post(url + "/_emulator/faults", json={"path": "/jobs", "status": 500}).status_code == 200
        assert requests.get(f"{url}/v1/{PARENT}/jobs").status_code == 500
        assert requests.get(lines["VERTEX_CRON_OIDC_CERTS_URL"]).status_code == 200
        storage = lines["STORAGE_EMULATOR_HOST"]
        assert requests.get(f"{storage}/storage/v1/b/specs").status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert (tmp_path / "emulator-state.json").exists()
