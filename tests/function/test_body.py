"""The body the deployer writes: every mistake is a 400 naming the field."""

import json
from datetime import UTC, datetime

import pytest
from vertex_cron_trigger.body import MAX_BODY_BYTES, parse_body
from vertex_cron_trigger.errors import BadRequest

MINIMAL = {"schedule": "nightly", "spec_uri": "gs://bucket/specs/p.json"}
PINNED = "https://europe-west1-kfp.pkg.dev/my-project/pipelines/nightly-training/sha256:" + "ab" * 32


def parse(**fields):
    return parse_body(json.dumps({**MINIMAL, **fields}).encode())


def rejected_field(raw: bytes) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse_body(raw)
    return caught.value


def test_minimal_body_has_defaults():
    body = parse()
    assert (body.schedule, body.spec_uri, dict(body.parameter_values)) == ("nightly", "gs://bucket/specs/p.json", {})
    assert body.max_concurrent_runs is None and body.enable_caching is None


def test_all_fields_are_parsed_to_their_types():
    body = parse(
        parameter_values={"a": 1},
        pipeline_root="gs://bkt/root",
        cron="0 2 * * *",
        time_zone="Europe/Paris",
        max_concurrent_runs=2,
        start_time="2024-01-01T00:00:00Z",
        end_time="2024-02-01T00:00:00+01:00",
        enable_caching=False,
        template_uri=PINNED,
    )
    assert body.template_uri == PINNED
    assert body.start_time == datetime(2024, 1, 1, tzinfo=UTC)
    assert body.end_time == datetime(2024, 1, 31, 23, tzinfo=UTC)
    assert body.max_concurrent_runs == 2 and body.enable_caching is False and body.time_zone == "Europe/Paris"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"max_concurent_runs": 1}, "max_concurent_runs", "unknown field"),
        ({"schedule": "Nightly"}, "schedule", "^[a-z]"),
        ({"schedule": "x" * 51}, "schedule", "matching"),
        ({"schedule": None}, "schedule", "required"),
        ({"spec_uri": "s3://b/o"}, "spec_uri", "gs://"),
        ({"parameter_values": [1]}, "parameter_values", "an array"),
        ({"pipeline_root": "/tmp"}, "pipeline_root", "gs://"),
        ({"pipeline_root": "gs://"}, "pipeline_root", "bucket"),
        ({"pipeline_root": "gs:///root"}, "pipeline_root", "bucket"),
        ({"pipeline_root": "gs://b/root"}, "pipeline_root", "bucket"),  # bucket names have 3+ characters
        ({"pipeline_root": "gs://Upper-Case/root"}, "pipeline_root", "bucket"),
        ({"pipeline_root": "gs://bucket name/root"}, "pipeline_root", "bucket"),
        ({"pipeline_root": "gs://bucket/root\nx"}, "pipeline_root", "control characters"),
        ({"pipeline_root": "gs://bucket/" + "r" * 1100}, "pipeline_root", "1024"),
        ({"pipeline_root": " gs://bucket/root"}, "pipeline_root", "gs://"),
        ({"pipeline_root": 5}, "pipeline_root", "string"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "tz database"),
        ({"time_zone": "localtime"}, "time_zone", "tz database"),  # loads, but is the host's zone
        ({"time_zone": "right/UTC"}, "time_zone", "tz database"),
        ({"time_zone": "posix/Europe/Paris"}, "time_zone", "tz database"),
        ({"time_zone": "posixrules"}, "time_zone", "tz database"),
        ({"max_concurrent_runs": 0}, "max_concurrent_runs", "from 1 to 1000"),
        ({"max_concurrent_runs": 2**31}, "max_concurrent_runs", "from 1 to 1000"),
        ({"max_concurrent_runs": True}, "max_concurrent_runs", "integer"),
        ({"start_time": "2024-01-01"}, "start_time", "RFC 3339"),
        ({"start_time": "2024-02-01T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}, "end_time", "later"),
        ({"enable_caching": "yes"}, "enable_caching", "true or false"),
        # Only a version: a tag would be resolved by Vertex AI at run time, to whatever it names then.
        ({"template_uri": PINNED.rsplit("/", 1)[0] + "/prod"}, "template_uri", "sha256:<64 hex digits>"),
        ({"template_uri": PINNED[:-1]}, "template_uri", "sha256:"),
        ({"template_uri": PINNED.upper()}, "template_uri", "sha256:"),
        ({"template_uri": PINNED.replace("-kfp.pkg.dev", "-docker.pkg.dev")}, "template_uri", "sha256:"),
        ({"template_uri": PINNED.replace("https://", "http://")}, "template_uri", "sha256:"),
        ({"template_uri": PINNED + "/extra"}, "template_uri", "sha256:"),
        ({"template_uri": 5}, "template_uri", "sha256:"),
    ],
)
def test_bad_fields_are_named(fields, field, words):
    error = rejected_field(json.dumps({**MINIMAL, **fields}).encode())
    assert error.field == field and words in error.message and error.status == 400


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"schedule": NaN}', b"[" * 100_000])
def test_non_objects_are_rejected(raw):
    assert rejected_field(raw).field == "body"


def test_oversized_body_is_rejected_before_parsing():
    raw = json.dumps({**MINIMAL, "parameter_values": {"x": "y" * MAX_BODY_BYTES}}).encode()
    error = rejected_field(raw)
    assert "limit" in error.message and error.field == "body"


@pytest.mark.parametrize("root", ["gs://bucket", "gs://bucket/", "gs://my.bucket_1/a/b c/d", "gs://b-1/x"])
def test_pipeline_roots_that_are_gcs_uris_are_accepted(root):
    assert parse(pipeline_root=root).pipeline_root == root


@pytest.mark.parametrize(
    ("raw", "field", "where"),
    [
        (b'{"schedule": "nightly", "spec_uri": "gs://bucket/\\ud800"}', "spec_uri", "spec_uri"),
        (
            b'{"schedule": "nightly", "spec_uri": "gs://b/p", "parameter_values": {"run_date": "x\\udc00"}}',
            "parameter_values",
            "parameter_values.run_date",
        ),
        (
            b'{"schedule": "nightly", "spec_uri": "gs://b/p", "parameter_values": {"items": [1, "\\uDBFF"]}}',
            "parameter_values",
            "parameter_values.items[1]",
        ),
        (b'{"schedule": "nightly", "spec_uri": "gs://b/p", "cron": "\xed\xa0\x80"}', "cron", "cron"),  # encoded
    ],
)
def test_a_lone_surrogate_is_not_unicode_text_and_is_named(raw, field, where):
    """Valid JSON syntax, but no text: it broke URL quoting (a 500) or reached Vertex AI."""
    error = rejected_field(raw)
    assert error.field == field and f"{where} is not valid Unicode text" in error.message


def test_a_surrogate_pair_is_one_character_and_accepted():
    body = parse_body(b'{"schedule": "nightly", "spec_uri": "gs://b/p", "parameter_values": {"e": "\\ud83d\\ude00"}}')
    assert body.parameter_values == {"e": "\N{GRINNING FACE}"}
