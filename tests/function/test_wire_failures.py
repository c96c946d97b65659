"""The audit's failure cases, end to end: the function served by functions-framework against
the emulators. Each request is answered in JSON with the right status and leaves exactly one
structured log line carrying its outcome; none of them creates a PipelineJob it should not."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from trigger_wire import EXAMPLES, INVOKER, body_for, fire, jobs_of, upload


def assert_one_log_line_per_request(function, requests_made: int) -> list[dict]:
    lines = function.log_lines()
    assert len(lines) == requests_made, lines
    assert all({"severity", "message", "outcome", "status", "duration_ms"} <= set(line) for line in lines)
    return lines


# -- Vertex AI: a 409 is a duplicate only when it says ALREADY_EXISTS ---------------------


def test_a_409_aborted_on_create_is_retried_not_taken_for_a_duplicate(start_function, emulator, spec):
    function = start_function()
    emulator.faults.add(method="POST", path=".*/pipelineJobs$", status=409, times=1)  # Google-shaped ABORTED

    aborted = fire(function, body_for(spec))

    assert aborted.status_code == 503, aborted.text
    assert aborted.json()["outcome"] == "failed" and "ABORTED" in aborted.json()["message"]
    assert jobs_of(emulator) == {}  # the firing is not lost: Scheduler retries it...
    retry = fire(function, body_for(spec))
    assert retry.json()["outcome"] == "created" and len(jobs_of(emulator)) == 1  # ...and the retry creates it
    first, second = assert_one_log_line_per_request(function, 2)
    assert (first["outcome"], first["severity"], first["status"]) == ("failed", "ERROR", 503)
    assert second["outcome"] == "created"


@pytest.mark.parametrize("status", [505, 507, 520])
def test_every_5xx_but_501_is_retried(start_function, emulator, spec, status):
    function = start_function()
    emulator.faults.add(method="POST", path=".*/pipelineJobs$", status=status, times=1)
    assert fire(function, body_for(spec)).status_code == 503
    emulator.faults.add(method="POST", path=".*/pipelineJobs$", status=501, times=1)
    assert fire(function, body_for(spec)).status_code == 500
    assert jobs_of(emulator) == {}
    assert [line["outcome"] for line in assert_one_log_line_per_request(function, 2)] == ["failed", "failed"]


# -- the certs URL: a body that breaks off or does not decode is an outage ----------------


class _BrokenCerts(BaseHTTPRequestHandler):
    """/gzip: says gzip, is not. /chunked: a chunked body whose second chunk size is garbage."""

    def do_GET(self) -> None:
        if self.path.startswith("/gzip"):
            body = b"this is not gzip"
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
        else:
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                b'Connection: close\r\n\r\n5\r\n{"k":\r\nzz\r\n'
            )
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_certs() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenCerts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("path", "error"), [("/gzip", "ContentDecodingError"), ("/chunked", "ChunkedEncodingError")])
def test_a_garbled_certs_response_is_a_503(start_function, emulator, oidc_issuer, spec, broken_certs, path, error):
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER, VERTEX_CRON_OIDC_CERTS_URL=broken_certs + path)
    response = fire(function, body_for(spec), token=oidc_issuer.mint(audience=function.url, email=INVOKER))
    assert response.status_code == 503, response.text
    assert error in response.json()["message"]
    assert jobs_of(emulator) == {}
    [line] = assert_one_log_line_per_request(function, 1)
    assert (line["outcome"], line["severity"]) == ("failed", "ERROR")


# -- tokens: malformed is 401, never 500 ---------------------------------------------------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _with_claims(token: str, **claims: object) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_b64(json.dumps({**decoded, **claims}))}.{signature}"


def test_malformed_tokens_are_401s(start_function, emulator, oidc_issuer, spec):
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    good = oidc_issuer.mint(audience=function.url, email=INVOKER)
    header, payload, signature = good.split(".")
    deep = "[" * 1500 + "]" * 1500
    deep_header, deep_payload = _b64('{"alg": "RS256", "x": ' + deep + "}"), _b64('{"iss": ' + deep + "}")
    tokens = {
        "deep-header": f"{deep_header}.{payload}.{signature}",
        "deep-payload": f"{header}.{deep_payload}.{signature}",
        "long": f"{header}.{payload}.{'A' * 7000}",  # under the cap: reaches the signature check
        "iss-list": _with_claims(good, iss=["https://accounts.google.com"]),
        "aud-number": _with_claims(good, aud=5),
        "aud-list": _with_claims(good, aud=[function.url]),
        "exp-string": _with_claims(good, exp="9999999999"),
        "email-list": _with_claims(good, email=[INVOKER]),
        "email-verified-yes": _with_claims(good, email_verified="yes"),
    }
    statuses = {name: fire(function, body_for(spec), token=token) for name, token in tokens.items()}
    assert {name: r.status_code for name, r in statuses.items()} == {name: 401 for name in tokens}
    assert all(r.headers["Content-Type"] == "application/json" for r in statuses.values())
    assert jobs_of(emulator) == {}
    lines = assert_one_log_line_per_request(function, len(tokens))
    assert {(line["outcome"], line["severity"], line["status"]) for line in lines} == {("rejected", "ERROR", 401)}


def test_a_token_over_8kib_is_refused_before_the_function_runs(start_function, emulator, oidc_issuer, spec):
    """gunicorn (functions-framework's server, locally and on Cloud Run) limits a header line to
    8190 bytes and answers 431 itself: the function's own 8 KiB cap is the second line."""
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    header, payload, _ = oidc_issuer.mint(audience=function.url, email=INVOKER).split(".")
    response = fire(function, body_for(spec), token=f"{header}.{payload}.{'A' * 8200}")
    assert response.status_code == 431 and jobs_of(emulator) == {}
    assert function.log_lines() == []


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [" , ", "scheduler-sa"])
def test_allowed_invokers_naming_no_email_is_a_configuration_error(start_function, emulator, spec, value):
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=value)
    response = fire(function, body_for(spec))  # no token at all: it must not get through
    assert response.status_code == 500 and "VERTEX_CRON_ALLOWED_INVOKERS" in response.json()["message"]
    assert "Traceback" not in response.text and jobs_of(emulator) == {}
    [line] = assert_one_log_line_per_request(function, 1)
    assert (line["outcome"], line["severity"]) == ("failed", "ERROR")


# -- specs and bodies ---------------------------------------------------------------------


def test_bad_specs_and_values_are_400s_naming_what_is_wrong(start_function, emulator, storage_emulator, spec):
    function = start_function()
    example_json = (EXAMPLES / "pipeline.json").read_text()
    example_yaml = (EXAMPLES / "pipeline.yaml").read_text()
    job_document = json.dumps(
        {
            "pipelineSpec": json.loads(example_json),
            "runtimeConfig": {"parameterValues": {"run_date": "d", "sample_rows": "many"}},
        }
    )
    list_spec = json.loads(example_json)
    list_spec["root"]["inputDefinitions"]["parameters"]["shapes"] = {"parameterType": "LIST", "isOptional": True}
    objects = {
        "nan.json": example_json.replace('"defaultValue": 0.01', '"defaultValue": NaN', 1),
        "date.yaml": example_yaml.replace("sdkVersion: kfp-2.17.0", "sdkVersion: 2024-05-01", 1),
        "alias.yaml": example_yaml.replace("sdkVersion: kfp-2.17.0", "sdkVersion: &v kfp-2.17.0\nx: *v", 1),
        "root.json": json.dumps(json.loads(example_json) | {"defaultPipelineRoot": "/tmp/root"}),
        "job.json": job_document,
        "list.json": json.dumps(list_spec),
    }
    generations = {
        name: upload(storage_emulator.url, spec["bucket"], f"bad/{name}", data.encode())
        for name, data in objects.items()
    }
    uri = f"gs://{spec['bucket']}/bad/"
    deep: list = []
    for _ in range(32):
        deep = [deep]
    cases = [  # (body fields, field, words)
        ({"spec_uri": uri + "nan.json"}, "spec_uri", "not a compiled KFP pipeline spec"),
        ({"spec_uri": uri + "date.yaml"}, "spec_uri", "YAML timestamp"),
        ({"spec_uri": uri + "alias.yaml"}, "spec_uri", "alias"),
        ({"spec_uri": uri + "root.json"}, "spec_uri", "defaultPipelineRoot"),
        (
            {"spec_uri": uri + "job.json", "parameter_values": {}},
            "spec_uri",
            "runtimeConfig.parameterValues.sample_rows must be an integer",
        ),
        ({"spec_uri": f"{uri}nan.json#{2**63}"}, "spec_uri", "generation"),
        ({"pipeline_root": "gs://"}, "pipeline_root", "pipeline_root must be"),
        (
            {"spec_uri": uri + "list.json", "parameter_values": {"run_date": "d", "shapes": deep}},
            "parameter_values.shapes",
            "32 levels",
        ),
    ]
    for fields, field, words in cases:
        response = fire(function, body_for(spec, **fields))
        assert response.status_code == 400, response.text
        assert response.json()["field"] == field and words in response.json()["message"], response.text
    assert generations and jobs_of(emulator) == {}
    lines = assert_one_log_line_per_request(function, len(cases))
    assert {(line["outcome"], line["severity"], line["status"]) for line in lines} == {("rejected", "ERROR", 400)}
