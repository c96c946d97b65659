"""Cloud Scheduler v1 jobs through the real scheduler_v1 REST client, and raw HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import scheduler_v1

PARENT = "projects/demo-project/locations/us-central1"
NAME = f"{PARENT}/jobs/vertex-cron-nightly"
TARGET = {
    "uri": "https://vertex-cron-trigger-abc-uc.a.run.app",
    "httpMethod": "POST",
    "headers": {"Content-Type": "application/json"},
    "body": "eyJzY2hlZHVsZSI6Im5pZ2h0bHkifQ==",
    "oidcToken": {
        "serviceAccountEmail": "sched@demo-project.iam.gserviceaccount.com",
        "audience": "https://vertex-cron-trigger-abc-uc.a.run.app",
    },
}


@pytest.fixture
def client(emulator_client):
    return emulator_client(scheduler_v1.CloudSchedulerClient)


def make_job(**overrides):
    job = {"name": NAME, "schedule": "0 2 * * *", "timeZone": "Europe/Paris", "httpTarget": TARGET}
    job.update(overrides)
    return job


def post(emulator, job):
    return requests.post(f"{emulator.url}/v1/{PARENT}/jobs", json=job)


def test_lifecycle_with_real_client(client, emulator):
    runs = []
    emulator.on_scheduler_run = runs.append
    job = scheduler_v1.Job(
        name=NAME,
        schedule="0 2 * * *",
        time_zone="Europe/Paris",
        http_target={
            "uri": TARGET["uri"],
            "body": b"{}",
            "oidc_token": {"service_account_email": "sched@demo-project.iam.gserviceaccount.com"},
        },
    )
    created = client.create_job(parent=PARENT, job=job)
    assert created.state == scheduler_v1.Job.State.ENABLED
    assert created.http_target.http_method == scheduler_v1.HttpMethod.POST  # server default
    assert created.retry_config.min_backoff_duration.total_seconds() == 5
    assert created.attempt_deadline.total_seconds() == 180
    assert created.schedule_time.hour == 1  # 02:00 Paris (winter) is 01:00 UTC
    with pytest.raises(gexc.Conflict):
        client.create_job(parent=PARENT, job=job)

    created.schedule = "30 4 * * *"
    created.description = "changed"
    updated = client.update_job(job=created, update_mask={"paths": ["schedule"]})
    assert updated.schedule == "30 4 * * *" and updated.description == ""

    assert client.pause_job(name=NAME).state == scheduler_v1.Job.State.PAUSED
    assert client.get_job(name=NAME).state == scheduler_v1.Job.State.PAUSED
    assert client.resume_job(name=NAME).state == scheduler_v1.Job.State.ENABLED

    client.run_job(name=NAME)
    assert [r["name"] for r in runs] == [NAME]

    assert [j.name for j in client.list_jobs(parent=PARENT)] == [NAME]
    client.delete_job(name=NAME)
    with pytest.raises(gexc.NotFound):
        client.get_job(name=NAME)
    assert list(client.list_jobs(parent=PARENT)) == []


def test_record_attempt_and_snapshot(emulator):
    assert post(emulator, make_job()).status_code == 200
    when = datetime(2030, 1, 1, 1, 0, 5, tzinfo=UTC)
    emulator.record_scheduler_attempt(NAME, when, 503)
    [job] = emulator.scheduler_jobs()
    assert job["lastAttemptTime"].startswith("2030-01-01T01:00:05")
    assert job["status"]["code"] == 14  # UNAVAILABLE
    assert job["scheduleTime"].startswith("2030-01-02T01:00:00")  # next 02:00 Paris
    emulator.record_scheduler_attempt(NAME, when, 200)
    got = requests.get(f"{emulator.url}/v1/{NAME}").json()
    assert "code" not in got.get("status", {})
    job["schedule"] = "mutated"
    assert emulator.scheduler_jobs()[0]["schedule"] == "0 2 * * *"  # a snapshot, not a view


def test_time_zone_defaults_to_utc(emulator):
    job = make_job()
    del job["timeZone"]
    r = post(emulator, job)
    assert r.status_code == 200 and r.json()["timeZone"] == "Etc/UTC"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"schedule": ""}, "schedule"),
        ({"schedule": "61 * * * *"}, "not a valid"),
        ({"schedule": "* * * * * *"}, "not a valid"),
        ({"timeZone": "Mars/Olympus"}, "time zone"),
        ({"httpTarget": None}, "target"),
        ({"httpTarget": {"uri": "ftp://x"}}, "http"),
        ({"httpTarget": {**TARGET, "oidcToken": {"serviceAccountEmail": "nope"}}}, "service_account_email"),
        ({"name": "projects/other/locations/us-central1/jobs/x"}, "parent"),
        ({"name": f"{PARENT}/jobs/bad name"}, "Invalid job name"),
        ({"attemptDeadline": "5s"}, "attempt_deadline"),
        ({"retryConfig": {"retryCount": 9}}, "retry_count"),
        ({"unknownThing": 1}, "unknownThing"),
        ({"httpTarget": TARGET, "pubsubTarget": {"topicName": "projects/p/topics/t"}}, "oneof"),
    ],
)
def test_validation(emulator, overrides, fragment):
    job = make_job()
    for key, value in overrides.items():
        if value is None:
            job.pop(key)
        else:
            job[key] = value
    r = post(emulator, job)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fragment in r.json()["error"]["message"]


def test_enum_as_int_accepted(emulator):
    r = post(emulator, make_job(httpTarget={**TARGET, "httpMethod": 1}, state=1))
    assert r.status_code == 200
    assert r.json()["httpTarget"]["httpMethod"] == "POST" and r.json()["state"] == "ENABLED"


def test_patch_raw_masks(emulator):
    post(emulator, make_job())
    url = f"{emulator.url}/v1/{NAME}"
    r = requests.patch(
        url,
        params={"updateMask": "httpTarget.uri,time_zone"},
        json={"httpTarget": {"uri": "https://new.example"}, "timeZone": "UTC"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["httpTarget"]["uri"] == "https://new.example/"  # stored in Scheduler's normal form
    assert body["httpTarget"]["oidcToken"] == TARGET["oidcToken"]
    assert body["timeZone"] == "UTC"
    assert requests.patch(url, params={"updateMask": "bogus"}, json={}).status_code == 400
    assert requests.patch(url, params={"updateMask": "schedule"}, json={"schedule": "nope"}).status_code == 400
    assert (
        requests.patch(
            f"{emulator.url}/v1/{PARENT}/jobs/missing",
            params={"updateMask": "schedule"},
            json={"schedule": "* * * * *"},
        ).status_code
        == 404
    )


def test_an_http_target_is_stored_in_schedulers_normal_form(emulator):
    target = {
        "uri": "https://fn-abc-uc.a.run.app?x=1",
        "body": TARGET["body"],
        "headers": {"user-agent": "mine", "X-Custom": "kept"},
        "oidcToken": {"serviceAccountEmail": "sched@demo-project.iam.gserviceaccount.com"},
    }
    r = post(emulator, make_job(httpTarget=target))
    assert r.status_code == 200, r.text

    stored = requests.get(f"{emulator.url}/v1/{NAME}").json()["httpTarget"]
    assert stored["uri"] == "https://fn-abc-uc.a.run.app/?x=1"
    assert stored["headers"] == {
        "User-Agent": "Google-Cloud-Scheduler",  # replaces the caller's
        "Content-Type": "application/octet-stream",  # a body without a Content-Type
        "X-Custom": "kept",
    }
    assert stored["oidcToken"]["audience"] == stored["uri"]  # no audience: the URI


def test_an_explicit_audience_and_content_type_are_kept_as_sent(emulator):
    post(emulator, make_job())
    stored = requests.get(f"{emulator.url}/v1/{NAME}").json()["httpTarget"]
    assert stored["oidcToken"]["audience"] == TARGET["oidcToken"]["audience"]  # no slash added
    assert stored["headers"]["Content-Type"] == "application/json"


def test_an_oauth_token_without_scope_gets_cloud_platform(emulator):
    target = {"uri": "https://example.com/x", "oauthToken": {"serviceAccountEmail": "s@p.iam.gserviceaccount.com"}}
    stored = post(emulator, make_job(httpTarget=target)).json()["httpTarget"]
    assert stored["oauthToken"]["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert stored["uri"] == "https://example.com/x" and "Content-Type" not in stored["headers"]
