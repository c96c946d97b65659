"""Property-based fuzzing: whatever arrives, the answer is a TriggerError with a 4xx status or
a result, never an unexpected exception (which the handler would turn into a 500); and a spec
the parser accepts always makes a PipelineJob that can be sent (strict JSON: no NaN, no
Infinity, no dates or bytes).

Bounded for `make test`: small max_examples, deadline=None (two shared cores)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from zoneinfo import available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_stack import EXAMPLES, FIRING, INVOKER, body_for, scheduler_headers, upload
from vertex_cron_trigger.body import parse_body
from vertex_cron_trigger.errors import TriggerError
from vertex_cron_trigger.logical_time import logical_time
from vertex_cron_trigger.parameters import coerce_parameters
from vertex_cron_trigger.pipeline_job import build_pipeline_job
from vertex_cron_trigger.placeholders import render, render_parameters
from vertex_cron_trigger.spec import PARAMETER_TYPES, parse_spec
from vertex_cron_trigger.spec_uri import parse_spec_uri
from vertex_cron_trigger.time_zones import place_zones

FIELDS = [
    "schedule",
    "spec_uri",
    "parameter_values",
    "pipeline_root",
    "cron",
    "time_zone",
    "max_concurrent_runs",
    "start_time",
    "end_time",
    "enable_caching",
]
# Any code point, lone surrogates included: JSON's "\ud800" escape decodes to one, and a
# lone surrogate is not text (st.text() leaves them out by default).
any_character = st.characters(exclude_categories=())
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(any_character),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(any_character, max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "nightly",
            "gs://b/o",
            "gs://b/o#12",
            "UTC",
            "Europe/Paris",
            "0 3 * * *",
            "2024-05-01T02:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "{{schedule_time:%Y}}",
            "nightly\n",
        ]
    ),
)
zones = st.none() | st.sampled_from(["UTC", "Asia/Tokyo", "America/St_Johns", "Pacific/Kiritimati", "Etc/GMT+12"])
placeholder_text = st.lists(
    st.sampled_from(
        ["{{", "}}", "schedule", "schedule_time", ":", "%", "%Y", "%-d", "%Q", "%%", "\x00", "\ud800", "é", " ", "x"]
    )
    | st.text(max_size=3),
    max_size=12,
).map("".join)
timestamps = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
# Every name the tz database ships a file for, the names of its directories (zoneinfo raised
# IsADirectoryError for them, a 500 naming an installation path), legacy names and junk.
time_zone_names = (
    st.sampled_from(sorted(available_timezones() | place_zones()))
    | st.sampled_from(
        ["Europe", "America/Argentina", "Etc", "US", "posix", "right", "posix/Europe/Paris", "right/UTC", "localtime"]
        + ["Factory", "posixrules", "EST", "US/Eastern", "utc", "europe/paris", "../../etc/passwd", "/etc/localtime"]
    )
    | st.text(any_character, max_size=24)
)
# Numbers at the edges of what JSON, Python and a double (Vertex AI's protobuf Value) hold.
edge_numbers = st.sampled_from(
    [2**53, 2**53 + 1, -(2**53) - 1, 2**63, 2**64, 10**308, 10**309, 10**400, 1e308, -1e308, 5e-324, 0.1, -0.0]
) | st.integers(min_value=-(2**70), max_value=2**70)
# Text a --param or a placeholder may give a non-string parameter.
number_texts = st.sampled_from(
    [
        "1e400",
        "-1e400",
        "9007199254740993",
        "05",
        "-05",
        "0x10",
        "1_000",
        "NaN",
        "Infinity",
        " 7 ",
        "[1e400]",
        '{"a": 1e999}',
    ]
)
parameter_value = (
    json_values
    | edge_numbers
    | number_texts
    | placeholder_text
    | st.lists(edge_numbers, max_size=3)
    | st.dictionaries(st.text(max_size=3), edge_numbers, max_size=3)
)
# A pipeline declaring one optional parameter of each type the function types values against.
ALL_TYPES_SPEC = json.dumps(
    {
        "pipelineInfo": {"name": "all-types"},
        "root": {
            "inputDefinitions": {
                "parameters": {
                    f"p_{kind.lower()}": {"parameterType": kind, "isOptional": True} for kind in sorted(PARAMETER_TYPES)
                }
            }
        },
        "defaultPipelineRoot": "gs://vertex-cron-demo-artifacts/pipeline-root",
    }
).encode()
ALL_TYPES_PARAMETERS = sorted(f"p_{kind.lower()}" for kind in PARAMETER_TYPES)
parameter_values = st.dictionaries(
    st.sampled_from([*ALL_TYPES_PARAMETERS, "run_date", "sample_rows", "learning_rate", "dry_run"])
    | st.text(max_size=4),
    parameter_value,
    max_size=6,
)
# Each body field gets its own tricky values on top of any JSON value.
FIELD_STRATEGIES = {
    "schedule": field_values | st.from_regex(r"[a-z][a-z0-9-]{0,55}", fullmatch=True),
    "spec_uri": field_values,
    "parameter_values": parameter_values | field_values,
    "pipeline_root": field_values
    | st.sampled_from(["gs://vertex-cron-demo-artifacts/r", "gs://someone-elses-bucket/r", "gs://ab", "gs://a..b/r"]),
    "cron": field_values
    | st.sampled_from(["* * * * *", "0 0 31 2 *", "R R * * *", "*/0 * * * *", "60 * * * *", "0 3 * * 1#2", "@daily"]),
    "time_zone": time_zone_names | field_values,
    "max_concurrent_runs": field_values | edge_numbers | st.integers(min_value=-2, max_value=1002),
    "start_time": field_values | timestamps.map(lambda t: t.isoformat()),
    "end_time": field_values | timestamps.map(lambda t: t.isoformat()),
    "enable_caching": field_values | st.booleans(),
}
assert set(FIELD_STRATEGIES) == set(FIELDS)  # every field the body takes is fuzzed
bodies = st.fixed_dictionaries({}, optional=FIELD_STRATEGIES)
# -- specs: the example with tricky values in the places a compiler fills in ----------------

EXAMPLE_YAML = (EXAMPLES / "pipeline.yaml").read_text()
EXAMPLE_JSON = json.loads((EXAMPLES / "pipeline.json").read_text())
# YAML a hand-edited or foreign spec may hold; the safe loader turns several into values JSON
# has no form for (float nan/inf, date, datetime, bytes, set), or into shared nodes (aliases).
YAML_SCALARS = [
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "1e400",
    "2024-05-01",
    "2024-05-01T02:00:00Z",
    "!!binary aGk=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "&anchor 0.5",
    "*anchor",
    "0x1F",
    "0o17",
    "~",
    "yes",
    "null",
    "''",
    "[]",
    "{}",
    "!!python/name:os.system",
    "!!float 1",
    "12345678901234567890123",
    '"\\u0000"',
    "0.01",
    "gs://bucket/root",
    "/tmp/root",
    "s3://bucket/root",
]
yaml_scalars = st.sampled_from(YAML_SCALARS) | st.text(max_size=12).map(json.dumps)
spec_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(any_character, max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(any_character, max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def yaml_specs(draw) -> bytes:
    text = EXAMPLE_YAML
    for old in (
        "defaultValue: 0.01",
        "sdkVersion: kfp-2.17.0",
        "defaultPipelineRoot: gs://vertex-cron-demo-artifacts/pipeline-root",
        "enableCache: true",
    ):
        if draw(st.booleans()):
            key = old.split(":")[0]
            text = text.replace(old, f"{key}: {draw(yaml_scalars)}", 1)
    return text.encode()


@st.composite
def json_specs(draw) -> bytes:
    document = json.loads(json.dumps(EXAMPLE_JSON))
    parameters = document["root"]["inputDefinitions"]["parameters"]
    if draw(st.booleans()):
        parameters["learning_rate"]["defaultValue"] = draw(spec_values)
    if draw(st.booleans()):
        document["sdkVersion"] = draw(spec_values)
    if draw(st.booleans()):
        document["defaultPipelineRoot"] = draw(
            st.sampled_from(["gs://b/root", "/tmp/root", "", "gs:/b"]) | st.text(max_size=10) | spec_values
        )
    if draw(st.booleans()):  # a whole PipelineJob document: its parameterValues are sent as they are
        document = {
            "pipelineSpec": document,
            "runtimeConfig": {"parameterValues": {"run_date": "d", "learning_rate": draw(spec_values)}},
        }
    return json.dumps(document).encode()  # allow_nan: NaN and Infinity tokens included


specs = yaml_specs() | json_specs()


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
@given(time_zone_names)
def test_the_shared_zone_check_answers_every_name_with_a_zone_or_a_clear_refusal(name):
    """The function's 400 and the deployer's exit 2 (validation.check_time_zone) alike."""
    from vertex_cron.errors import ValidationError
    from vertex_cron.validation import check_time_zone

    try:
        assert check_time_zone(name) == name
    except ValidationError as exc:
        assert repr(name)[:40].rstrip("'") in str(exc) and "site-packages" not in str(exc)
    _survives(lambda: parse_body(json.dumps({"schedule": "s", "spec_uri": "gs://b/o", "time_zone": name}).encode()))


ALL_TYPES = parse_spec(ALL_TYPES_SPEC, source="gs://b/all-types")


@settings(max_examples=300, deadline=None)
@given(parameter_values, timestamps, zones)
def test_typing_answers_every_value_of_every_parameter_type_with_a_value_or_a_4xx(values, when, zone):
    """Render then type, as a firing does, for a pipeline with a parameter of each type."""

    def typed():
        rendered = render_parameters(values, schedule="nightly", logical_time=when, time_zone=zone)
        job = build_pipeline_job(
            spec=ALL_TYPES,
            schedule="nightly",
            logical_time=when,
            parameter_values=coerce_parameters(ALL_TYPES, rendered),
            pipeline_root="gs://b/root",
            service_account="sa@p.iam.gserviceaccount.com",
        )
        json.dumps(job, allow_nan=False, ensure_ascii=False).encode("utf-8")  # what requests sends
        assert not _inexact_integers(job["runtimeConfig"]["parameterValues"])  # Vertex AI reads doubles

    _survives(typed)


def _inexact_integers(value) -> list[int]:
    if isinstance(value, dict):
        return [n for child in value.values() for n in _inexact_integers(child)]
    if isinstance(value, list):
        return [n for child in value for n in _inexact_integers(child)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53 else []


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
    now = datetime(2024, 5, 1, 2, 30, tzinfo=UTC)
    _survives(lambda: logical_time(header, cron=cron, time_zone=zone, now=now))


@settings(max_examples=150, deadline=None)
@given(json_values | st.binary(max_size=256))
def test_spec_parsing_answers_every_document_with_a_spec_or_a_4xx(document):
    data = (
        document
        if isinstance(document, bytes)
        else json.dumps({"pipelineInfo": {"name": "p"}, "root": document, "components": document}).encode()
    )
    _survives(lambda: parse_spec(data, source="gs://b/o"))


def _sendable_if_accepted(data: bytes) -> None:
    try:
        spec = parse_spec(data, source="gs://b/o")
    except TriggerError as exc:
        assert 400 <= exc.status < 500, exc.message
        return
    root = spec.default_pipeline_root
    assert root is None or (isinstance(root, str) and root.startswith("gs://")), root
    try:
        values = coerce_parameters(spec, {"run_date": "2024-05-01", **spec.preset_values})
    except TriggerError as exc:
        assert 400 <= exc.status < 500, exc.message
        return
    job = build_pipeline_job(
        spec=spec,
        schedule="nightly",
        logical_time=datetime(2024, 5, 1, 2, tzinfo=UTC),
        parameter_values=values,
        pipeline_root=root or "gs://b/root",
        service_account="sa@p.iam.gserviceaccount.com",
        enable_caching=True,
    )
    # What `requests` does with json= (a TypeError/ValueError fails the test), and the UTF-8
    # Vertex AI reads: a lone surrogate would be sent as an escape and refused there.
    json.dumps(job, allow_nan=False, ensure_ascii=False).encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(specs | json_values.map(lambda v: json.dumps({"pipelineInfo": {"name": "p"}, "root": {}, "x": v}).encode()))
def test_any_spec_the_parser_accepts_can_be_sent_to_vertex(data):
    _sendable_if_accepted(data)


# -- the whole handler: body, spec and token together ------------------------------------------

AUDIENCE = "http://localhost/"  # the in-process app's request URL
CLAIMS = ["iss", "aud", "exp", "iat", "email", "email_verified", "azp", "sub"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def tokens(draw):
    """What an Authorization header may carry: nothing, the invoker's good token, a signed
    token with claims of any JSON type, a forged header, or noise. Returns (kind, mint)."""
    kind = draw(st.sampled_from(["good", "good", "good", "none", "claims", "header", "noise"]))
    if kind == "none":
        return kind, lambda issuer: None
    if kind == "noise":
        text = draw(
            st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=60)
            | st.lists(st.text(alphabet="abcXYZ019-_=", max_size=20), min_size=3, max_size=3).map(".".join)
        )
        return kind, lambda issuer: text
    if kind == "good":
        return kind, lambda issuer: issuer.mint(audience=AUDIENCE, email=INVOKER)
    if kind == "claims":
        claims = draw(
            st.dictionaries(
                st.sampled_from(CLAIMS), spec_values.filter(lambda v: v is not None) | st.none(), min_size=1, max_size=3
            )
        )
        return kind, lambda issuer: issuer.mint(audience=AUDIENCE, email=INVOKER, extra_claims=claims)
    header = draw(
        st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]), spec_values, max_size=3)
        | st.sampled_from(['{"alg": "RS256", "kid": ' + "[" * 2000, "[]", "null", "{", '{"alg": NaN}'])
    )
    raw = header.encode() if isinstance(header, str) else json.dumps(header).encode()
    return kind, lambda issuer: ".".join([_b64(raw), *issuer.mint(audience=AUDIENCE, email=INVOKER).split(".")[1:]])


# Mostly well-formed firings at many times (a new job id each, so the create is really sent).
firings = timestamps.map(lambda t: t.isoformat().replace("+00:00", "Z")) | st.sampled_from(
    [FIRING, None, "2024-05-01", "9999-12-31T23:59:59-01:00"]
)


@pytest.fixture
def guarded_client(in_process_function, spec_bucket):
    return in_process_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER), spec_bucket


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.just({}) | bodies, firings, specs | st.just(ALL_TYPES_SPEC), tokens())
def test_the_handler_never_answers_500_whatever_the_body_spec_or_token(
    guarded_client, emulator, storage_emulator, oidc_issuer, fields, schedule_time, spec, token
):
    test_client, bucket = guarded_client
    name = f"fuzz/{hashlib.sha256(spec).hexdigest()[:16]}"
    upload(storage_emulator.url, bucket, name, spec)
    body = {**body_for(f"gs://{bucket}/{name}"), **fields}
    kind, mint = token

    response = test_client.post(
        "/", data=json.dumps(body), headers=scheduler_headers(schedule_time=schedule_time, token=mint(oidc_issuer))
    )

    assert response.status_code in (200, 400, 401, 403), response.get_json()
    assert response.is_json and response.get_json()["message"]
    if kind != "good":
        assert response.status_code in (401, 403) or (kind == "claims" and response.status_code in (200, 400))
