"""The catalogue of bad inputs. Each is answered with a clear message naming the problem and
a 4xx status (function) or exit code 2 (CLI): no traceback, no PipelineJob, no resource
changed. Cases marked "regression" crashed (500, a dead worker, or a traceback) before."""

from __future__ import annotations

import base64
import copy
import json

import pytest
import requests
from click.testing import CliRunner
from reliability_stack import EXAMPLES, FIRING, PARENT, body_for, fire, job_names, scheduler_headers, upload
from vertex_cron.cli import cli

ALIAS_BOMB = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
    b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 9)) for i in range(8)
)
EXAMPLE_YAML = (EXAMPLES / "pipeline.yaml").read_bytes()
EXAMPLE_JSON = json.loads((EXAMPLES / "pipeline.json").read_text())


def example_yaml(old: bytes, new: bytes, count: int = 1) -> bytes:
    """The example YAML spec with `old` replaced by `new` (`count` times)."""
    assert EXAMPLE_YAML.count(old) >= count, old
    return EXAMPLE_YAML.replace(old, new, count)


def example_json(change) -> bytes:
    """The example JSON spec after `change(document)`, written as Python's json writes it
    (NaN and Infinity included, which is not JSON)."""
    document = copy.deepcopy(EXAMPLE_JSON)
    change(document)
    return json.dumps(document).encode()


def _learning_rate_default(value):
    return lambda document: document["root"]["inputDefinitions"]["parameters"]["learning_rate"].update(
        defaultValue=value
    )


def _with_parameters(**definitions):
    return lambda document: document["root"]["inputDefinitions"]["parameters"].update(definitions)


# Aliases of one big string: ~4 KiB of YAML that expands to a 10 MB PipelineJob with only
# ~2,600 nodes (under the node budget that stops the classic bomb).
BIG_STRING_BOMB = (
    EXAMPLE_YAML
    + b"x-padding:\n  s: &s "
    + b"x" * 4000
    + b"\n  l: &l ["
    + b", ".join([b"*s"] * 50)
    + (b"]\n  ll: [" + b", ".join([b"*l"] * 50) + b"]\n")
)
SPEC_FILES = {  # bad compiled pipelines, for the function (uploaded) and the CLI (--spec)
    "truncated-yaml": EXAMPLE_YAML[: len(EXAMPLE_YAML) // 3] + b"\n  - [unclosed",
    "yaml-alias-bomb": ALIAS_BOMB,
    "ten-megabytes": b"# PIPELINE DEFINITION\n" + b"#" * (10 * 1024 * 1024),
    "deep-flow-nesting": b"[" * 100_000,  # regression: libyaml overflowed the C stack (SIGSEGV)
    "deep-block-nesting": b"- " * 100_000 + b"x",  # regression: same
    "deep-json-nesting": b'{"root": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "input-definitions-list": b'{"pipelineInfo": {"name": "p"}, "root": {"inputDefinitions": [1]}}',  # regression
    "unknown-parameter-type": b'{"pipelineInfo": {"name": "p"}, "root": {"inputDefinitions": '
    b'{"parameters": {"x": {"parameterType": "BLOB"}}}}}',
    "empty-object": b"{}",
    "argo-workflow": b"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nroot: {}\npipelineInfo: {name: p}\n",
    "binary": bytes(range(256)) * 4,
    "top-level-list": b"- a\n- b\n",
    # Values a PipelineJob cannot carry: JSON has no NaN or Infinity, nor dates and bytes.
    # Each used to be accepted, then the create failed to serialise (a 500 at every firing).
    "json-nan": example_json(_learning_rate_default(float("nan"))),
    "json-infinity": example_json(_learning_rate_default(float("inf"))),
    "json-number-overflowing": example_json(_learning_rate_default(1.0)).replace(
        b'"defaultValue": 1.0', b'"defaultValue": 1e400'
    ),
    "yaml-nan": example_yaml(b"defaultValue: 0.01", b"defaultValue: .nan"),
    "yaml-infinity": example_yaml(b"defaultValue: 0.01", b"defaultValue: -.inf"),
    "yaml-date": example_yaml(b"sdkVersion: kfp-2.17.0", b"sdkVersion: 2024-05-01"),
    "yaml-binary": example_yaml(b"sdkVersion: kfp-2.17.0", b"sdkVersion: !!binary a2ZwLTIuMTcuMA=="),
    # kfp never writes anchors or aliases: even a harmless one is refused, and the bomb of
    # big strings (few nodes, many megabytes) with it.
    "yaml-anchor-and-alias": example_yaml(
        b"cachingOptions:\n          enableCache: true", b"cachingOptions: &caching\n          enableCache: true"
    ).replace(b"cachingOptions:\n          enableCache: true", b"cachingOptions: *caching", 1),
    "yaml-alias-bomb-of-big-strings": BIG_STRING_BOMB,
    # regression: no alias, just 2 million nodes under the size limit; building them took
    # 750 MiB (the function has 256) before the node count refused them.
    "yaml-two-million-nodes": b"x: [" + b"0," * 2_000_000 + b"0]",
    "json-lone-surrogate": example_json(lambda document: document.update(sdkVersion="kfp\ud800")),  # regression
}
# What the function and the CLI must say about each spec file.
SPEC_FILE_WORDS = {
    "truncated-yaml": "neither JSON nor YAML",
    "yaml-alias-bomb": "too many nodes",
    "ten-megabytes": "bytes",
    "yaml-two-million-nodes": "too many nodes",
    "json-lone-surrogate": "sdkVersion is not valid Unicode",
    "deep-flow-nesting": "nested too deeply",
    "deep-block-nesting": "nested too deeply",
    "deep-json-nesting": "nested too deeply",
    "input-definitions-list": "inputDefinitions",
    "unknown-parameter-type": "BLOB",
    "empty-object": "pipelineInfo.name",
    "argo-workflow": "Argo",
    "binary": "not a compiled KFP pipeline spec",
    "top-level-list": "not a mapping",
    **{
        name: "not a compiled KFP pipeline spec"
        for name in (
            "json-nan",
            "json-infinity",
            "json-number-overflowing",
            "yaml-nan",
            "yaml-infinity",
            "yaml-date",
            "yaml-binary",
            "yaml-anchor-and-alias",
            "yaml-alias-bomb-of-big-strings",
        )
    },
}
# Specs only the function is given (uploaded to the spec bucket as they are).
FUNCTION_SPEC_FILES = {
    "default-root-not-gs": example_json(lambda document: document.update(defaultPipelineRoot="/tmp/pipeline-root")),
    "default-root-foreign": example_json(
        lambda document: document.update(defaultPipelineRoot="gs://someone-elses-bucket/root")
    ),
    "job-with-encryption-spec": json.dumps(
        {
            "pipelineSpec": EXAMPLE_JSON,
            "encryptionSpec": {"kmsKeyName": "projects/p/locations/l/keyRings/r/cryptoKeys/k"},
        }
    ).encode(),
    "job-with-network": json.dumps(
        {"pipelineSpec": EXAMPLE_JSON, "network": "projects/1/global/networks/elsewhere"}
    ).encode(),
    "list-and-struct": example_json(
        _with_parameters(
            shapes={"parameterType": "LIST", "isOptional": True},
            options={"parameterType": "STRUCT", "isOptional": True},
        )
    ),
}
INT64_MAX = 2**63 - 1


def nested_list(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_struct(depth: int):
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def bad_body(**fields):
    """The example firing's body with `fields` replaced (a value of None drops the field)."""
    body = {**body_for("gs://BUCKET/specs/nightly.yaml"), **fields}
    return {key: value for key, value in body.items() if value is not None}


# (id, body as bytes or a dict (BUCKET is replaced by the spec bucket), headers, status, words)
FUNCTION_CASES = [
    ("body-not-json", b"<xml/>", {}, 400, "JSON object"),
    ("body-empty", b"", {}, 400, "JSON object"),
    ("body-json-array", b"[1, 2]", {}, 400, "an array"),
    ("body-not-utf8", b"\xff\xfe{\x00", {}, 400, "JSON object"),
    ("body-nan", b'{"schedule": NaN}', {}, 400, "NaN"),
    ("body-over-64k", bad_body(parameter_values={"run_date": "x" * 70_000}), {}, 400, "limit"),
    ("schedule-missing", bad_body(schedule=None), {}, 400, "'schedule' is required"),
    ("schedule-uppercase", bad_body(schedule="Nightly"), {}, 400, "schedule must be"),
    ("schedule-trailing-newline", bad_body(schedule="nightly\n"), {}, 400, "schedule must be"),  # regression
    ("schedule-51-chars", bad_body(schedule="n" * 51), {}, 400, "schedule must be"),
    ("schedule-number", bad_body(schedule=5), {}, 400, "schedule must be"),
    ("schedule-unicode", bad_body(schedule="nïghtly"), {}, 400, "schedule must be"),
    ("unknown-field", bad_body(max_concurent_runs=1), {}, 400, "max_concurent_runs"),
    ("spec-uri-https", bad_body(spec_uri="https://storage.googleapis.com/b/o"), {}, 400, "spec_uri must be"),
    ("spec-uri-traversal", bad_body(spec_uri="gs://BUCKET/specs/../secrets.json"), {}, 400, "'..'"),
    ("spec-uri-empty-segment", bad_body(spec_uri="gs://BUCKET//nightly.yaml"), {}, 400, "empty"),
    ("spec-uri-other-bucket", bad_body(spec_uri="gs://someone-elses-bucket/p.yaml"), {}, 403, "not the spec bucket"),
    (
        "spec-uri-generation-superscript",
        bad_body(spec_uri="gs://BUCKET/specs/nightly.yaml#²"),
        {},
        400,
        "1-19 digits",
    ),  # regression
    ("spec-uri-generation-mismatch", bad_body(spec_uri="gs://BUCKET/specs/nightly.yaml#1"), {}, 400, "does not exist"),
    ("spec-object-missing", bad_body(spec_uri="gs://BUCKET/specs/absent.yaml"), {}, 400, "does not exist"),
    ("parameters-not-object", bad_body(parameter_values=["run_date"]), {}, 400, "parameter_values must be"),
    ("parameter-unknown", bad_body(parameter_values={"run_date": "d", "rows": 1}), {}, 400, "no such parameter"),
    ("parameter-required-missing", bad_body(parameter_values={}), {}, 400, "run_date is required"),
    (
        "parameter-wrong-type",
        bad_body(parameter_values={"run_date": "d", "sample_rows": "many"}),
        {},
        400,
        "sample_rows must be an integer",
    ),
    (
        "parameter-fraction-for-int",
        bad_body(parameter_values={"run_date": "d", "sample_rows": 1.5}),
        {},
        400,
        "sample_rows must be an integer",
    ),
    (
        "parameter-overflowing-number",
        b'{"schedule": "nightly", "spec_uri": "gs://BUCKET/specs/nightly.yaml", '
        b'"parameter_values": {"run_date": "d", "learning_rate": 1e400}}',
        {},
        400,
        "too large",
    ),  # regression
    (
        "placeholder-unknown",
        bad_body(parameter_values={"run_date": "{{schedule_date}}"}),
        {},
        400,
        "unknown placeholder",
    ),
    ("placeholder-unclosed", bad_body(parameter_values={"run_date": "{{schedule_time"}), {}, 400, "unclosed"),
    (
        "placeholder-unknown-strftime-code",
        bad_body(parameter_values={"run_date": "{{schedule_time:%Q}}"}),
        {},
        400,
        "'%Q' is not a strftime code",
    ),  # regression: rendered as the text %Q
    (
        "placeholder-no-strftime-code",
        bad_body(parameter_values={"run_date": "{{schedule_time:hello}}"}),
        {},
        400,
        "no strftime code",
    ),  # regression: rendered as the text hello
    (
        "placeholder-unencodable-format",
        bad_body(parameter_values={"run_date": "{{schedule_time:\ud800}}"}),
        {},
        400,
        "parameter_values.run_date is not valid Unicode",
    ),  # regression
    # A lone surrogate is JSON syntax but not text: it made quote() fail (500), or reached
    # Vertex AI, whose 400 was answered as a 500. Regressions, all three.
    (
        "spec-uri-lone-surrogate",
        bad_body(spec_uri="gs://BUCKET/specs/\ud800.yaml"),
        {},
        400,
        "spec_uri is not valid Unicode",
    ),
    (
        "parameter-lone-surrogate",
        bad_body(parameter_values={"run_date": "2024\udc00"}),
        {},
        400,
        "parameter_values.run_date is not valid Unicode",
    ),
    (
        "parameter-key-lone-surrogate",
        b'{"schedule": "nightly", "spec_uri": "gs://BUCKET/specs/nightly.yaml", "parameter_values": {"\\ud800": "d"}}',
        {},
        400,
        "is not valid Unicode",
    ),
    ("time-zone-unknown", bad_body(time_zone="Mars/Olympus"), {}, 400, "is not a time zone of the tz database"),
    ("time-zone-path", bad_body(time_zone="../../etc/passwd"), {}, 400, "is not a time zone of the tz database"),
    ("max-concurrent-runs-zero", bad_body(max_concurrent_runs=0), {}, 400, "integer from 1 to 1000"),
    ("max-concurrent-runs-over-int32", bad_body(max_concurrent_runs=2**31), {}, 400, "integer from 1 to 1000"),
    ("time-zone-host-localtime", bad_body(time_zone="localtime"), {}, 400, "is not a time zone of the tz database"),
    ("enable-caching-string", bad_body(enable_caching="yes"), {}, 400, "true or false"),
    (
        "end-before-start",
        bad_body(start_time="2024-06-01T00:00:00Z", end_time="2024-05-01T00:00:00Z"),
        {},
        400,
        "end_time must be later",
    ),
    (
        "start-time-before-year-one",
        bad_body(start_time="0001-01-01T00:00:00+01:00"),
        {},
        400,
        "years 1-9999",
    ),  # regression
    ("pipeline-root-not-gs", bad_body(pipeline_root="/tmp/root"), {}, 400, "pipeline_root must be"),
    ("schedule-time-garbage", bad_body(), {"schedule_time": "yesterday"}, 400, "X-CloudScheduler-ScheduleTime"),
    ("schedule-time-date-only", bad_body(), {"schedule_time": "2024-05-01"}, 400, "RFC 3339"),
    (
        "schedule-time-overflow",
        bad_body(),
        {"schedule_time": "0001-01-01T00:00:00+01:00"},
        400,
        "years 1-9999",
    ),  # regression
    (
        "schedule-time-year-one",
        bad_body(),
        {"schedule_time": "0001-01-01T00:00:00Z"},
        400,
        "before 1970",
    ),  # regression: job id nightly-10101-000000
    # A token holder must not pre-create the job ids of future firings (they would answer duplicate).
    ("schedule-time-in-the-future", bad_body(), {"schedule_time": "2999-01-01T00:00:00Z"}, 400, "in the future"),
    (
        "time-zone-directory",
        bad_body(time_zone="Europe"),
        {},
        400,
        "is not a time zone of the tz database",
    ),  # was a 500
    ("time-zone-legacy-link", bad_body(time_zone="US/Eastern"), {}, 400, "use America/New_York"),
    ("time-zone-fixed-offset", bad_body(time_zone="EST"), {}, 400, "never changes for summer time"),
    (
        "parameter-integer-above-2-53",
        bad_body(parameter_values={"run_date": "d", "sample_rows": 2**53 + 1}),
        {},
        400,
        "pass it as a string",
    ),
    (
        "parameter-double-beyond-range",
        bad_body(parameter_values={"run_date": "d", "learning_rate": 10**400}),
        {},
        400,
        "parameter_values.learning_rate must be a number",
    ),  # was a 500
    ("no-schedule-time-no-cron", bad_body(), {"schedule_time": None}, 400, "cannot tell which firing"),
    (
        "no-schedule-time-bad-cron",
        bad_body(cron="61 * * * *"),
        {"schedule_time": None},
        400,
        "minute '61': '61' is outside 0-59",
    ),
    (
        "no-schedule-time-random-cron",
        bad_body(cron="R 2 * * *"),
        {"schedule_time": None},
        400,
        "not unix-cron as Cloud Scheduler takes it",
    ),
    (
        "spec-uri-generation-over-int64",
        bad_body(spec_uri=f"gs://BUCKET/specs/nightly.yaml#{INT64_MAX + 1}"),
        {},
        400,
        "generation",
    ),
    (
        "spec-uri-generation-max-digits",
        bad_body(spec_uri="gs://BUCKET/specs/nightly.yaml#9999999999999999999"),
        {},
        400,
        "generation",
    ),
    # Outputs stay in the buckets the deployer allows (VERTEX_CRON_PIPELINE_ROOT_BUCKETS).
    (
        "pipeline-root-foreign-bucket",
        bad_body(pipeline_root="gs://someone-elses-bucket/root"),
        {},
        403,
        "not one this function allows",
    ),
    (
        "spec-default-root-foreign-bucket",
        bad_body(spec_uri="gs://BUCKET/bad/default-root-foreign", pipeline_root=None),
        {},
        403,
        "the spec's default pipeline root",
    ),
    # Refused rather than silently dropped: the run would not be the one the document describes.
    (
        "spec-job-encryption-spec",
        bad_body(spec_uri="gs://BUCKET/bad/job-with-encryption-spec"),
        {},
        400,
        "PipelineJob field encryptionSpec is not supported",
    ),
    ("spec-job-network", bad_body(spec_uri="gs://BUCKET/bad/job-with-network"), {}, 400, "field network"),
    (
        "spec-default-root-not-gs",
        bad_body(spec_uri="gs://BUCKET/bad/default-root-not-gs"),
        {},
        400,
        "defaultPipelineRoot",
    ),
    (
        "parameter-list-nested-33-deep",
        bad_body(
            spec_uri="gs://BUCKET/bad/list-and-struct", parameter_values={"run_date": "d", "shapes": nested_list(33)}
        ),
        {},
        400,
        "parameter_values.shapes",
    ),
    (
        "parameter-struct-nested-33-deep",
        bad_body(
            spec_uri="gs://BUCKET/bad/list-and-struct", parameter_values={"run_date": "d", "options": nested_struct(33)}
        ),
        {},
        400,
        "parameter_values.options",
    ),
    (
        "parameter-list-as-text-nested-33-deep",
        bad_body(
            spec_uri="gs://BUCKET/bad/list-and-struct",
            parameter_values={"run_date": "d", "shapes": json.dumps(nested_list(33))},
        ),
        {},
        400,
        "parameter_values.shapes",
    ),
] + [
    (f"spec-{name}", bad_body(spec_uri=f"gs://BUCKET/bad/{name}"), {}, 400, SPEC_FILE_WORDS[name])
    for name in SPEC_FILES
]


@pytest.fixture(scope="module")
def function_stack(guarded_stack):
    for name, data in {**SPEC_FILES, **FUNCTION_SPEC_FILES}.items():
        upload(guarded_stack.storage.url, guarded_stack.bucket, f"bad/{name}", data)
    return guarded_stack


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [case[1:] for case in FUNCTION_CASES],
    ids=[case[0] for case in FUNCTION_CASES],
)
def test_the_function_refuses_a_bad_request_clearly_and_changes_nothing(function_stack, body, headers, status, words):
    stack = function_stack
    data = (
        body.replace(b"BUCKET", stack.bucket.encode())
        if isinstance(body, bytes)
        else (json.dumps(body).replace("BUCKET", stack.bucket).encode())
    )
    stack.emulator.clear_calls()
    jobs_before = job_names(stack.emulator)  # names: a job created earlier may change state meanwhile
    lines_before = len(stack.function.log_lines())

    response = requests.post(
        stack.function.url,
        data=data,
        timeout=60,
        headers=scheduler_headers(token=stack.token(), **{"schedule_time": FIRING, **headers}),
    )

    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["outcome"] == "rejected" and words in answer["message"], answer
    assert "Traceback" not in response.text
    assert job_names(stack.emulator) == jobs_before and stack.emulator.mutating_calls() == 0
    [line] = stack.function.log_lines()[lines_before:]
    assert (line["severity"], line["outcome"], line["status"]) == ("ERROR", "rejected", status)


@pytest.mark.parametrize("depth", [1, 32])
def test_list_and_struct_parameters_nested_up_to_32_deep_are_sent(function_stack, depth):
    """The control for the 33-deep cases: the same spec and parameters, within the limit."""
    stack = function_stack
    values = {"run_date": "d", "shapes": nested_list(depth), "options": nested_struct(depth)}
    body = bad_body(
        schedule=f"nested-{depth}", spec_uri=f"gs://{stack.bucket}/bad/list-and-struct", parameter_values=values
    )

    response = requests.post(
        stack.function.url, data=json.dumps(body), timeout=60, headers=scheduler_headers(token=stack.token())
    )

    assert (response.status_code, response.json()["outcome"]) == (200, "created"), response.text
    [job] = [j for j in stack.emulator.pipeline_jobs() if j["name"] == response.json()["job"]]
    assert job["runtimeConfig"]["parameterValues"] == values


def test_any_method_but_post_is_a_405(function_stack):
    response = requests.get(function_stack.function.url, timeout=30)
    assert response.status_code == 405 and "POST" in response.json()["message"]


# -- the CLI ------------------------------------------------------------------------------

CLI_ENV = {
    "VERTEX_CRON_PROJECT": "cli-project",
    "VERTEX_CRON_REGION": "us-central1",
    "VERTEX_CRON_WORKLOAD_SA": "vc-workload@cli-project.iam.gserviceaccount.com",
    "VERTEX_CRON_FUNCTION_SA": "vc-function@cli-project.iam.gserviceaccount.com",
    "VERTEX_CRON_SCHEDULER_SA": "vc-scheduler@cli-project.iam.gserviceaccount.com",
    "VERTEX_CRON_BUILD_SA": "vc-build@cli-project.iam.gserviceaccount.com",
}
GOOD = {"name": "nightly", "--cron": "0 3 * * *", "--time-zone": "UTC", "--param": "run_date={{schedule_time}}"}

# (id, replaced arguments of `deploy` (a "--spec" naming a SPEC_FILES entry), words of the error line)
CLI_CASES = [
    ("cron-out-of-range", {"--cron": "61 * * * *"}, "invalid cron expression"),
    ("cron-six-fields", {"--cron": "0 0 3 * * *"}, "invalid cron expression"),
    ("cron-nickname", {"--cron": "@daily"}, "invalid cron expression"),
    ("cron-empty", {"--cron": ""}, "invalid cron expression"),
    ("time-zone-unknown", {"--time-zone": "Mars/Olympus"}, "is not a time zone of the tz database"),
    ("time-zone-path", {"--time-zone": "../../etc/passwd"}, "is not a time zone of the tz database"),
    ("time-zone-directory", {"--time-zone": "Europe"}, "is not a time zone of the tz database"),
    ("time-zone-legacy-link", {"--time-zone": "US/Eastern"}, "use America/New_York"),
    ("time-zone-fixed-offset", {"--time-zone": "EST"}, "never changes for summer time"),
    ("param-integer-above-2-53", {"--param": "sample_rows=9007199254740993"}, "pass it as a string"),
    ("name-uppercase", {"name": "Nightly"}, "invalid schedule name"),
    ("name-underscore", {"name": "nightly_run"}, "invalid schedule name"),
    ("name-51-chars", {"name": "n" * 51}, "invalid schedule name"),
    ("name-unicode", {"name": "nïghtly"}, "invalid schedule name"),
    ("name-trailing-newline", {"name": "nightly\n"}, "invalid schedule name"),  # regression
    ("workload-sa-not-email", {"--workload-sa": "not-an-email"}, "malformed workload SA email"),
    (
        "workload-sa-compute-default",
        {"--workload-sa": "123-compute@developer.gserviceaccount.com"},
        "default service account",
    ),
    ("scheduler-sa-other-domain", {"--scheduler-sa": "someone@example.com"}, "malformed scheduler SA email"),
    ("param-no-equals", {"--param": "run_date"}, "expected K=V"),
    ("param-unknown", {"--param": "rows=5"}, "has no such parameter"),
    ("param-wrong-type", {"--param": "sample_rows=many"}, "must be an integer"),
    ("param-unknown-placeholder", {"--param": "run_date={{schedule_date}}"}, "unknown placeholder"),  # regression
    ("param-placeholder-never-a-number", {"--param": "sample_rows={{schedule_time:%B}}"}, "must be an integer"),
    ("param-placeholder-no-strftime-code", {"--param": "run_date={{schedule_time:hello}}"}, "no strftime code"),
    ("spec-missing-file", {"--spec": "absent.json"}, "cannot read spec"),
] + [(f"spec-{name}", {"--spec": name}, SPEC_FILE_WORDS[name]) for name in SPEC_FILES]


@pytest.mark.parametrize(("replaced", "words"), [case[1:] for case in CLI_CASES], ids=[case[0] for case in CLI_CASES])
def test_deploy_refuses_bad_arguments_before_any_call(
    emulator, emulator_env, storage_emulator, spec_bucket, tmp_path, monkeypatch, replaced, words
):
    monkeypatch.chdir(tmp_path)
    for name, data in SPEC_FILES.items():
        if replaced.get("--spec") == name:
            (tmp_path / name).write_bytes(data)
    arguments = {**GOOD, "--spec": str(EXAMPLES / "pipeline.json"), **replaced}
    argv = ["deploy", arguments.pop("name")] + [part for flag, value in arguments.items() for part in (flag, value)]
    env = {**CLI_ENV, "VERTEX_CRON_BUCKET": spec_bucket, **emulator_env}

    result = CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and words in result.stderr.splitlines()[0], result.stderr
    assert "Traceback" not in result.output
    assert emulator.calls == [] and emulator.mutating_calls() == 0
    assert [path for _, path in storage_emulator.calls if spec_bucket in path] == []


def test_a_placeholder_for_a_number_deploys_and_each_firing_types_it(
    function_stack, emulator_env, tmp_path, monkeypatch
):
    """The suspect from the issue: `--param sample_rows='{{schedule_time:%Y}}'` for an int."""
    stack = function_stack
    monkeypatch.chdir(tmp_path)
    env = {
        **CLI_ENV,
        "VERTEX_CRON_PROJECT": "rel-project",
        "VERTEX_CRON_BUCKET": stack.bucket,
        "VERTEX_CRON_EMULATOR_HOST": stack.emulator.url,
        "STORAGE_EMULATOR_HOST": stack.storage.url,
        "VERTEX_CRON_POLL_SECONDS": "0.02",
    }
    argv = [
        "deploy",
        "monthly",
        "--spec",
        str(EXAMPLES / "pipeline.json"),
        "--cron",
        "0 3 1 * *",
        "--param",
        "run_date={{schedule_time:%Y-%m-%d}}",
        "--param",
        "sample_rows={{schedule_time:%m}}",
    ]
    deployed = CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)
    assert deployed.exit_code == 0, deployed.output
    [job] = stack.emulator.scheduler_jobs()
    body = base64.b64decode(job["httpTarget"]["body"])
    assert json.loads(body)["parameter_values"]["sample_rows"] == "{{schedule_time:%m}}"

    fired = requests.post(
        stack.function.url,
        data=body,
        timeout=60,
        headers=scheduler_headers(token=stack.token(), schedule_time="2024-05-01T03:00:00Z"),
    )

    assert fired.status_code == 200, fired.text
    [run] = [j for j in stack.emulator.pipeline_jobs() if j["name"] == f"{PARENT}/pipelineJobs/monthly-20240501-030000"]
    assert run["runtimeConfig"]["parameterValues"] == {"run_date": "2024-05-01", "sample_rows": 5}


def test_without_the_variable_only_the_spec_bucket_takes_outputs(start_function, emulator, spec_bucket, spec_uri):
    """VERTEX_CRON_PIPELINE_ROOT_BUCKETS unset: the spec bucket only, whatever the body or spec says."""
    function = start_function(VERTEX_CRON_PIPELINE_ROOT_BUCKETS="")

    in_spec_bucket = fire(function.url, body_for(spec_uri, pipeline_root=f"gs://{spec_bucket}/vertex-cron/root"))
    spec_default = fire(function.url, body_for(spec_uri, schedule="defaulted"))  # the example's root is elsewhere

    assert (in_spec_bucket.status_code, in_spec_bucket.json()["outcome"]) == (200, "created"), in_spec_bucket.text
    assert spec_default.status_code == 403 and spec_default.json()["field"] == "pipeline_root", spec_default.text
    assert "VERTEX_CRON_PIPELINE_ROOT_BUCKETS" in spec_default.json()["message"]
    assert job_names(emulator) == [f"{PARENT}/pipelineJobs/nightly-20240501-020000"]
