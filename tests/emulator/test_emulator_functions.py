"""Cloud Functions v2 (+ upload, operations) and Cloud Run v2 IAM through the real clients."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import requests
from google.api_core import exceptions as gexc
from google.api_core.future import polling
from google.cloud import functions_v2, run_v2

PARENT = "projects/demo-project/locations/us-central1"
FN = f"{PARENT}/functions/vertex-cron-trigger"
SVC = f"{PARENT}/services/vertex-cron-trigger"
FAST = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.1).with_timeout(10)


def make_zip(files=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in (
            files or {"main.py": "def trigger(request):\n    return 'ok'\n", "requirements.txt": ""}
        ).items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture
def fclient(emulator_client):
    return emulator_client(functions_v2.FunctionServiceClient)


@pytest.fixture
def rclient(emulator_client):
    return emulator_client(run_v2.ServicesClient)


def upload(fclient, data):
    up = fclient.generate_upload_url(request={"parent": PARENT})
    r = requests.put(
        up.upload_url,
        data=data,
        headers={"Content-Type": "application/zip", "x-goog-content-length-range": "0,104857600"},
    )
    assert r.status_code == 200
    return up.storage_source


def function(source, **service):
    return functions_v2.Function(
        build_config={"runtime": "python312", "entry_point": "trigger", "source": {"storage_source": source}},
        service_config={"service_account_email": "fn@demo-project.iam.gserviceaccount.com", **service},
        labels={"managed-by": "vertex-cron"},
    )


def deploy(fclient, data=None, **service):
    op = fclient.create_function(
        parent=PARENT,
        function=function(upload(fclient, data or make_zip()), **service),
        function_id="vertex-cron-trigger",
    )
    return op


def test_create_operation_hook_and_service(fclient, rclient, emulator):
    seen = []

    def hook(fn, source):
        seen.append((fn["name"], zipfile.ZipFile(io.BytesIO(source)).namelist()))
        return "http://127.0.0.1:9999"

    emulator.on_function_deployed = hook
    op = deploy(fclient, environment_variables={"VERTEX_CRON_PROJECT": "demo-project"})
    assert not op.done()
    assert fclient.get_function(name=FN).state == functions_v2.Function.State.DEPLOYING
    fn = op.result(polling=FAST)
    assert fn.state == functions_v2.Function.State.ACTIVE
    assert fn.service_config.uri == "http://127.0.0.1:9999"
    assert fn.service_config.service == SVC
    assert fn.service_config.environment_variables["VERTEX_CRON_PROJECT"] == "demo-project"
    assert seen == [(FN, ["main.py", "requirements.txt"])]
    assert rclient.get_service(name=SVC).uri == "http://127.0.0.1:9999"
    assert zipfile.ZipFile(io.BytesIO(emulator.function_source(FN))).read("main.py").startswith(b"def trigger")
    with pytest.raises(gexc.Conflict):  # ALREADY_EXISTS
        deploy(fclient)


def test_default_uri_is_realistic(fclient):
    fn = deploy(fclient).result(polling=FAST)
    assert fn.service_config.uri.startswith("https://vertex-cron-trigger-") and fn.service_config.uri.endswith(
        "-uc.a.run.app"
    )


def test_patch_with_mask_busy_and_delete(fclient, rclient, emulator):
    deploy(fclient).result(polling=FAST)
    op = fclient.update_function(
        function=functions_v2.Function(
            name=FN, service_config={"environment_variables": {"A": "2"}}, description="ignored"
        ),
        update_mask={"paths": ["service_config.environment_variables"]},
    )
    with pytest.raises(gexc.Conflict):  # ABORTED: an operation is in progress
        fclient.delete_function(name=FN)
    fn = op.result(polling=FAST)
    assert fn.service_config.environment_variables["A"] == "2"
    assert fn.description == "" and fn.build_config.entry_point == "trigger"
    fclient.delete_function(name=FN).result(polling=FAST)
    with pytest.raises(gexc.NotFound):
        fclient.get_function(name=FN)
    with pytest.raises(gexc.NotFound):
        rclient.get_service(name=SVC)


def test_states_while_operations_run_and_a_second_change_is_refused(fclient, emulator):
    """An operation lasts `function_deploy_seconds`; meanwhile the function shows DEPLOYING
    or DELETING, and another update or delete is 409 ABORTED, as Functions v2 answers."""
    emulator.function_deploy_seconds = 600.0
    now = emulator.clock()
    create = deploy(fclient)
    assert fclient.get_function(name=FN).state == functions_v2.Function.State.DEPLOYING
    assert not create.done()
    with pytest.raises(gexc.Conflict) as busy:
        fclient.delete_function(name=FN)
    assert busy.value.response.json()["error"] == {
        "code": 409,
        "message": "unable to queue the operation",
        "status": "ABORTED",
    }
    with pytest.raises(gexc.Conflict) as exists:
        deploy(fclient)
    assert exists.value.response.json()["error"]["status"] == "ALREADY_EXISTS"

    def stages():
        answer = requests.get(f"{emulator.url}/v2/{create.operation.name}").json()
        return [(s["name"], s["state"], s.get("message")) for s in answer["metadata"]["stages"]]

    emulator.clock = lambda: now + 100
    assert stages() == [("BUILD", "IN_PROGRESS", "Build in progress"), ("SERVICE", "NOT_STARTED", None)]
    emulator.clock = lambda: now + 400
    assert stages() == [("BUILD", "COMPLETE", None), ("SERVICE", "IN_PROGRESS", None)]
    emulator.clock = lambda: now + 601
    assert create.result(polling=FAST).state == functions_v2.Function.State.ACTIVE
    assert stages() == [("BUILD", "COMPLETE", None), ("SERVICE", "COMPLETE", None)]
    delete = fclient.delete_function(name=FN)
    assert fclient.get_function(name=FN).state == functions_v2.Function.State.DELETING
    assert delete.metadata.operation_type == functions_v2.OperationType.DELETE_FUNCTION

    emulator.clock = lambda: now + 1202
    delete.result(polling=FAST)
    with pytest.raises(gexc.NotFound):
        fclient.get_function(name=FN)


def test_build_failure_fails_operation(fclient):
    op = deploy(fclient, data=make_zip({"other.py": ""}))
    with pytest.raises(gexc.GoogleAPICallError) as info:
        op.result(polling=FAST)
    assert "main.py" in str(info.value)
    assert fclient.get_function(name=FN).state == functions_v2.Function.State.FAILED


def test_strictness_and_source_checks(fclient, emulator):
    url = f"{emulator.url}/v2/{PARENT}/functions"
    source = upload(fclient, make_zip())
    good = {
        "buildConfig": {
            "runtime": "python312",
            "entryPoint": "trigger",
            "source": {"storageSource": {"bucket": source.bucket, "object": source.object_}},
        }
    }
    r = requests.post(url, params={"functionId": "f1"}, json={**good, "serviceConfig": {"bogus": 1}})
    assert r.status_code == 400 and "bogus" in r.json()["error"]["message"]
    r = requests.post(url, params={"functionId": "Bad_Id"}, json=good)
    assert r.status_code == 400
    missing = {
        "buildConfig": {
            **good["buildConfig"],
            "source": {"storageSource": {"bucket": source.bucket, "object": "nope.zip"}},
        }
    }
    assert requests.post(url, params={"functionId": "f2"}, json=missing).status_code == 400
    r = requests.post(
        url, params={"functionId": "f3"}, json={**good, "serviceConfig": {"environmentVariables": {"K_SERVICE": "x"}}}
    )
    assert r.status_code == 400 and "reserved" in r.json()["error"]["message"]
    r = requests.post(url, params={"functionId": "f4"}, json={**good, "environment": 2})  # enum as int
    assert r.status_code == 200 and r.json()["metadata"]["verb"] == "create"


def test_upload_url_needs_zip_content_type_and_signature(fclient):
    up = fclient.generate_upload_url(request={"parent": PARENT})
    assert requests.put(up.upload_url, data=b"x", headers={"Content-Type": "text/plain"}).status_code == 403
    assert (
        requests.put(
            up.upload_url.split("&Signature=")[0] + "&Signature=x",
            data=b"x",
            headers={"Content-Type": "application/zip"},
        ).status_code
        == 403
    )


def test_run_iam_policy_etag(fclient, rclient):
    deploy(fclient).result(polling=FAST)
    policy = rclient.get_iam_policy(request={"resource": SVC})
    assert not policy.bindings and policy.etag
    policy.bindings.add(role="roles/run.invoker", members=["serviceAccount:sched@demo-project.iam.gserviceaccount.com"])
    new = rclient.set_iam_policy(request={"resource": SVC, "policy": policy})
    assert new.etag != policy.etag and new.bindings[0].role == "roles/run.invoker"
    with pytest.raises(gexc.Conflict) as info:  # stale etag -> ABORTED
        rclient.set_iam_policy(request={"resource": SVC, "policy": policy})
    assert "concurrent" in info.value.message
    assert list(rclient.get_iam_policy(request={"resource": SVC}).bindings[0].members) == [
        "serviceAccount:sched@demo-project.iam.gserviceaccount.com"
    ]
    bad = rclient.get_iam_policy(request={"resource": SVC})
    bad.bindings.add(
        role="roles/cloudfunctions.invoker", members=["serviceAccount:sched@demo-project.iam.gserviceaccount.com"]
    )
    with pytest.raises(gexc.BadRequest):
        rclient.set_iam_policy(request={"resource": SVC, "policy": bad})
    bad = rclient.get_iam_policy(request={"resource": SVC})
    bad.bindings.add(role="roles/run.invoker", members=["sched@demo-project.iam.gserviceaccount.com"])
    with pytest.raises(gexc.BadRequest):
        rclient.set_iam_policy(request={"resource": SVC, "policy": bad})


def test_iam_on_missing_service_is_404(rclient):
    with pytest.raises(gexc.NotFound):
        rclient.get_iam_policy(request={"resource": f"{PARENT}/services/nope"})


def test_mutating_calls_count(fclient, emulator):
    deploy(fclient).result(polling=FAST)
    assert emulator.mutating_calls() == 3  # generateUploadUrl, upload PUT, create
    emulator.clear_calls()
    fclient.get_function(name=FN)
    assert emulator.mutating_calls() == 0
    calls = requests.get(emulator.url + "/_emulator/calls").json()
    assert calls["mutating"] == 0 and calls["calls"][0]["method"] == "GET"


def test_a_deployed_function_is_read_back_with_the_servers_defaults(fclient, rclient):
    fn = deploy(fclient, environment_variables={"VERTEX_CRON_PROJECT": "demo-project"}).result(polling=FAST)

    assert fn.service_config.environment_variables["LOG_EXECUTION_ID"] == "true"
    assert fn.service_config.timeout_seconds == 60 and fn.service_config.available_memory == "256M"
    assert fn.build_config.source.storage_source.generation  # the generation built
    service = rclient.get_service(name=SVC)
    # Both URL forms: the deterministic https://SERVICE-PROJECT_NUMBER.REGION.run.app and the uri.
    (deterministic,) = [u for u in service.urls if u != service.uri]
    assert re.fullmatch(r"https://vertex-cron-trigger-\d{12}\.us-central1\.run\.app", deterministic)
    assert service.uri in service.urls


def test_iam_stores_member_emails_in_lower_case(fclient, rclient):
    deploy(fclient).result(polling=FAST)
    policy = rclient.get_iam_policy(request={"resource": SVC})
    policy.bindings.add(role="roles/run.invoker", members=["serviceAccount:Sched@Demo-Project.iam.gserviceaccount.com"])
    policy.bindings.add(role="roles/run.viewer", members=["allUsers"])

    stored = rclient.set_iam_policy(request={"resource": SVC, "policy": policy})

    assert {b.role: list(b.members) for b in stored.bindings} == {
        "roles/run.invoker": ["serviceAccount:sched@demo-project.iam.gserviceaccount.com"],
        "roles/run.viewer": ["allUsers"],
    }
