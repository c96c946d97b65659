"""Property-based fuzzing: whatever arrives, the answer is a TriggerError with a 4xx status or
a result, never an unexpected exception (which the handler would turn into a 500)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_stack import FIRING, body_for, scheduler_headers

from vertex_cron_trigger.body import parse_body
from vertex_cron_trigger.errors import TriggerError
from vertex_cron_trigger.logical_time import logical_time
from vertex_cron_trigger.placeholders import render
from vertex_cron_trigger.spec import parse_spec
from vertex_cron_trigger.spec_uri import parse_spec_uri

FIELDS = ["schedule", "spec_uri", "parameter_values", "pipeline_root", "cron", "time_zone", "max_concurrent_runs",
          "start_time", "end_time", "enable_caching"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(["nightly", "gs://b/o", "gs://b/o#12", "UTC", "Europe/Paris", "0 3 * * *", "2024-05-01T02:00:00Z",
                     "0001-01-01T00:00:00+01:00", "{{schedule_time:%Y}}", "nightly\n"]),
)
bodies = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=len(FIELDS))
timestamps = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))
zones = st.none() | st.sampled_from(["UTC", "Asia/Tokyo", "America/St_Johns", "Pacific/Kiritimati", "Etc/GMT+12"])
placeholder_text = st.lists(
    st.sampled_from(["{{", "}}", "schedule", "schedule_time", ":", "%", "%Y", "%-d", "%Q", "%%", "\x00", "\ud800",
                     "é", " ", "x"]) | st.text(max_size=3),
    max_size=12,
).map("".join)


def _survives(call) -> None:
    try:
        call()
    except TriggerError as exc:
        assert 400 <= exc.status < 500, exc.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512) | bodies.map(lambda b: json.dumps(b).encode()))
def test_body_parsing_answers_every_input_with_a_body_or_a_4xx(raw):
    _survives(lambda: parse_body(raw))


@settings(max_examples=300, deadline=None)
@given(placeholder_text, timestamps, zones)
def test_rendering_answers_every_value_with_text_or_a_4xx(value, when, zone):
    def rendered():
        assert isinstance(render(value, schedule="nightly", logical_time=when, time_zone=zone), str)

    _survives(rendered)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80) | st.from_regex(r"gs://[a-z0-9._/-]{0,30}(#[0-9²١]{0,22})?", fullmatch=True))
def test_spec_uri_parsing_answers_every_string_with_a_uri_or_a_4xx(uri):
    _survives(lambda: parse_spec_uri(uri, allowed_bucket="spec-bucket"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | timestamps.map(lambda t: t.isoformat()), st.none() | st.text(max_size=30), zones)
def test_logical_time_answers_every_header_and_cron_with_a_time_or_a_4xx(header, cron, zone):
    now = datetime(2024, 5, 1, 2, 30, tzinfo=timezone.utc)
    _survives(lambda: logical_time(header, cron=cron, time_zone=zone, now=now))


@settings(max_examples=150, deadline=None)
@given(json_values | st.binary(max_size=256))
def test_spec_parsing_answers_every_document_with_a_spec_or_a_4xx(document):
    data = document if isinstance(document, bytes) else json.dumps(
        {"pipelineInfo": {"name": "p"}, "root": document, "components": document}).encode()
    _survives(lambda: parse_spec(data, source="gs://b/o"))


@pytest.fixture
def client(in_process_function, spec_uri):
    return in_process_function(), spec_uri


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies, st.sampled_from([FIRING, None, "2024-05-01", "9999-12-31T23:59:59-01:00"]))
def test_the_handler_never_answers_500_whatever_the_body(client, emulator, fields, schedule_time):
    test_client, spec_uri = client
    body = {**body_for(spec_uri), **fields}
    response = test_client.post("/", data=json.dumps(body), headers=scheduler_headers(schedule_time=schedule_time))
    assert response.status_code in (200, 400, 403), response.get_json()
    assert response.is_json and response.get_json()["message"]
