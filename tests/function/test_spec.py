import json
from pathlib import Path

import pytest
from vertex_cron_trigger.errors import BadRequest
from vertex_cron_trigger.spec import MAX_YAML_NODES, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_JSON_TEXT = (EXAMPLES / "pipeline.json").read_text()
EXAMPLE_YAML_TEXT = (EXAMPLES / "pipeline.yaml").read_text()
EXPECTED_TYPES = {
    "dry_run": ("BOOLEAN", False),
    "learning_rate": ("NUMBER_DOUBLE", False),
    "run_date": ("STRING", True),
    "sample_rows": ("NUMBER_INTEGER", False),
}


@pytest.mark.parametrize("name", ["pipeline.json", "pipeline.yaml"])
def test_kfp_json_and_yaml_give_the_same_parameters(name):
    spec = parse_spec((EXAMPLES / name).read_bytes(), source=name)
    assert spec.name == "nightly-training"
    assert {p.name: (p.type, p.required) for p in spec.parameters.values()} == EXPECTED_TYPES
    assert spec.default_pipeline_root == "gs://vertex-cron-demo-artifacts/pipeline-root"
    assert len(spec.content_sha256) == 64


def test_whole_pipeline_job_document_brings_its_runtime_config():
    ir = json.loads((EXAMPLES / "pipeline.json").read_text())
    document = {
        "displayName": "x",
        "pipelineSpec": ir,
        "runtimeConfig": {"gcsOutputDirectory": "gs://other/root", "parameterValues": {"run_date": "d"}},
    }
    spec = parse_spec(json.dumps(document).encode(), source="job.json")
    assert spec.default_pipeline_root == "gs://other/root"
    assert spec.preset_values == {"run_date": "d"}
    assert spec.pipeline_spec["pipelineInfo"]["name"] == "nightly-training"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"hello": "world"}', "pipelineInfo"),
        (b"- a\n- b\n", "not a mapping"),
        (b"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n", "KFP v1"),
        (b"key: [unclosed\n", "neither JSON nor YAML"),
        (b'{"root": ', "not valid JSON"),
        (b"a: 1\n---\nb: 2\n", "neither JSON nor YAML"),
        (b"!!python/object:os.system {}\n", "neither JSON nor YAML"),
    ],
)
def test_not_a_spec_says_so(data, words):
    with pytest.raises(BadRequest) as caught:
        parse_spec(data, source="gs://b/x")
    assert "gs://b/x is not a compiled KFP pipeline spec" in caught.value.message
    assert words in caught.value.message


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_loader(request, monkeypatch):
    """Each case runs with libyaml's parser and with PyYAML's pure-Python one: they refuse
    bad input at different points and in different words, and ours must not change."""
    import yaml

    if request.param == "libyaml":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("this PyYAML has no libyaml")
    else:
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    return request.param


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 100_000, "it is nested too deeply (more than 64 levels)"),
        (b"x: " + b"{a: " * 5_000, "it is nested too deeply (more than 64 levels)"),
        (b"- " * 100_000 + b"x", "it is nested too deeply (more than 64 levels)"),
        (b"key: [unclosed\n", "it is neither JSON nor YAML (YAML parsing stopped at line 2, column 1)"),
        (b"a: b: c\n", "it is neither JSON nor YAML (YAML parsing stopped at line 1, column 5)"),
    ],
)
def test_yaml_refusals_are_one_line_in_our_words(yaml_loader, data, message):
    with pytest.raises(BadRequest) as caught:
        parse_spec(data, source="gs://b/x.yaml")
    assert caught.value.message == f"gs://b/x.yaml is not a compiled KFP pipeline spec: {message}"


def test_invalid_json_says_where():
    with pytest.raises(BadRequest) as caught:
        parse_spec(b'{"a": 1,\n "b": }', source="x.json")
    assert caught.value.message.endswith("it is not valid JSON (Expecting value at line 2, column 7)")


def test_yaml_alias_bomb_is_rejected_not_expanded():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(BadRequest) as caught:
        parse_spec("\n".join(lines).encode(), source="bomb.yaml")
    assert "too many nodes" in caught.value.message


def test_a_large_alias_free_yaml_spec_is_refused_before_it_is_built(monkeypatch):
    """Two million YAML nodes took 750 MiB to build; the function has 256."""
    import yaml

    def load_must_not_run(*args, **kwargs):
        raise AssertionError("yaml.load ran on a document with too many nodes")

    monkeypatch.setattr(yaml, "load", load_must_not_run)
    data = b"x: [" + b"0," * (MAX_YAML_NODES + 1) + b"0]"
    assert "too many nodes for YAML" in rejected(data).message


def test_a_json_spec_with_a_lone_surrogate_is_refused_naming_where():
    error = rejected(EXAMPLE_JSON_TEXT.replace('"sdkVersion": "kfp-2.17.0"', '"sdkVersion": "kfp\\ud800"'))
    assert "is not a compiled KFP pipeline spec: sdkVersion is not valid Unicode text" in error.message


def test_a_yaml_spec_with_a_lone_surrogate_is_refused_by_either_loader(yaml_loader):
    """libyaml refuses the escape itself (we say where); PyYAML's pure-Python loader decodes
    it, and the spec check names the field."""
    line = EXAMPLE_YAML_TEXT.splitlines().index("sdkVersion: kfp-2.17.0") + 1
    for text in (
        EXAMPLE_YAML_TEXT.replace("sdkVersion: kfp-2.17.0", 'sdkVersion: "kfp\\ud800"'),
        EXAMPLE_YAML_TEXT.replace("sdkVersion: kfp-2.17.0", 'sdkVersion: kfp\n"\\udc00": 1'),
    ):
        error = rejected(text)
        assert "is not a compiled KFP pipeline spec: " in error.message
        if yaml_loader == "libyaml":
            assert f"YAML parsing stopped at line {line}" in error.message or f"line {line + 1}" in error.message
        else:
            assert "is not valid Unicode text" in error.message


def test_deep_nesting_is_rejected():
    with pytest.raises(BadRequest):
        parse_spec(b"[" * 5000 + b"]" * 5000, source="deep.json")


EXAMPLE_JSON = (EXAMPLES / "pipeline.json").read_text()
EXAMPLE_YAML = (EXAMPLES / "pipeline.yaml").read_text()


def rejected(data: bytes | str, source: str = "gs://b/x") -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse_spec(data.encode() if isinstance(data, str) else data, source=source)
    assert caught.value.status == 400 and caught.value.field == "spec_uri"
    return caught.value


def with_default(json_value: str) -> str:
    """The example JSON spec with learning_rate's defaultValue replaced by raw JSON text."""
    assert '"defaultValue": 0.01' in EXAMPLE_JSON
    return EXAMPLE_JSON.replace('"defaultValue": 0.01', f'"defaultValue": {json_value}', 1)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_json_specs_are_strict_json(constant):
    error = rejected(with_default(constant))
    assert "gs://b/x is not a compiled KFP pipeline spec" in error.message and "JSON" in error.message


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("defaultValue: 0.01", "defaultValue: .nan", "nan"),
        ("defaultValue: 0.01", "defaultValue: -.inf", "-inf"),
        ("defaultValue: 0.01", "defaultValue: !!float 1e400", "inf"),
        ("sdkVersion: kfp-2.17.0", "sdkVersion: 2024-05-01", "YAML timestamp"),
        ("sdkVersion: kfp-2.17.0", "sdkVersion: 2024-05-01T02:00:00Z", "YAML timestamp"),
        ("sdkVersion: kfp-2.17.0", "sdkVersion: !!binary a2ZwLTIuMTcuMA==", "!!binary"),
        ("sdkVersion: kfp-2.17.0", "sdkVersion: !!set {a, b}", "!!set"),
        ("sdkVersion: kfp-2.17.0", "sdkVersion: !!omap [a: 1]", "!!omap"),
        ("sdkVersion: kfp-2.17.0", "sdkVersion: kfp-2.17.0\nextra: {1: one}", "not a string"),
        ("sdkVersion: kfp-2.17.0", "sdkVersion: kfp-2.17.0\non: true", "not a string"),
    ],
)
def test_yaml_values_json_cannot_hold_are_refused_and_located(old, new, words):
    assert old in EXAMPLE_YAML
    error = rejected(EXAMPLE_YAML.replace(old, new, 1))
    assert "gs://b/x is not a compiled KFP pipeline spec" in error.message and words in error.message


def test_the_offending_yaml_value_is_named_by_its_path():
    error = rejected(EXAMPLE_YAML.replace("defaultValue: 0.01", "defaultValue: .nan", 1))
    assert "root.inputDefinitions.parameters.learning_rate.defaultValue" in error.message


def test_any_yaml_alias_is_refused_even_a_harmless_one():
    data = EXAMPLE_YAML.replace("sdkVersion: kfp-2.17.0", "sdkVersion: &v kfp-2.17.0\nsdkAgain: *v", 1)
    assert "alias" in rejected(data).message
    # Anchors alone expand nothing: they are allowed.
    assert (
        parse_spec(
            EXAMPLE_YAML.replace("sdkVersion: kfp-2.17.0", "sdkVersion: &v kfp-2.17.0", 1).encode(), source="a"
        ).name
        == "nightly-training"
    )


def test_an_alias_bomb_of_big_strings_is_refused_before_it_is_built():
    big = "x" * 100_000
    lines = [f"a0: &a0 {big}"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 4)}]" for i in range(1, 12)]
    assert "alias" in rejected("\n".join(lines)).message


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("form", ["json", "yaml-flow", "yaml-block"])
def test_specs_nest_at_most_64_levels(form):
    def spec_with(depth: int) -> str:
        # The value's list starts at level 6: the document, root, inputDefinitions, parameters, x.
        inner = depth - 5
        if form == "json":
            return (
                '{"pipelineInfo": {"name": "p"}, "root": {"inputDefinitions": {"parameters": {"x": '
                '{"parameterType": "LIST", "defaultValue": ' + nested(inner) + "}}}}}"
            )
        value = nested(inner) if form == "yaml-flow" else "\n          " + "- " * (inner - 1) + "[]"
        return (
            "pipelineInfo: {name: p}\nroot:\n  inputDefinitions:\n    parameters:\n      x:\n"
            "        parameterType: LIST\n        defaultValue: " + value + "\n"
        )

    assert parse_spec(spec_with(64).encode(), source="ok").name == "p"
    assert "nested too deeply" in rejected(spec_with(65)).message


@pytest.mark.parametrize(
    ("root", "words"),
    [
        ("/tmp/pipeline-root", "gs://"),
        ("gs://", "bucket"),
        ("gs://b/x", "bucket"),
        ("s3://bucket/x", "gs://"),
        ("gs://bucket/a\u0000b", "control"),
        (5, "string"),
        (["gs://bucket/x"], "string"),
    ],
)
def test_default_pipeline_root_must_be_a_gcs_uri(root, words):
    document = json.loads(EXAMPLE_JSON) | {"defaultPipelineRoot": root}
    error = rejected(json.dumps(document))
    assert error.message.startswith("spec gs://b/x: defaultPipelineRoot ") and words in error.message
    job = {"pipelineSpec": json.loads(EXAMPLE_JSON), "runtimeConfig": {"gcsOutputDirectory": root}}
    error = rejected(json.dumps(job))
    assert "runtimeConfig.gcsOutputDirectory" in error.message and words in error.message


def test_an_empty_runtime_root_falls_back_to_the_default_root():
    job = {"pipelineSpec": json.loads(EXAMPLE_JSON), "runtimeConfig": {"gcsOutputDirectory": ""}}
    assert parse_spec(json.dumps(job).encode(), source="j").default_pipeline_root == (
        "gs://vertex-cron-demo-artifacts/pipeline-root"
    )


def pipeline_job(**preset):
    return json.dumps({"pipelineSpec": json.loads(EXAMPLE_JSON), "runtimeConfig": {"parameterValues": preset}})


@pytest.mark.parametrize(
    ("preset", "words"),
    [
        ({"sample_rows": "many"}, "runtimeConfig.parameterValues.sample_rows must be an integer"),
        ({"sample_rows": 1.5}, "runtimeConfig.parameterValues.sample_rows must be an integer"),
        ({"dry_run": "maybe"}, "runtimeConfig.parameterValues.dry_run must be true or false"),
        ({"epochs": 3}, "runtimeConfig.parameterValues.epochs: pipeline 'nightly-training' has no such parameter"),
    ],
)
def test_a_pipeline_job_document_s_own_bad_values_are_blamed_on_the_spec(preset, words):
    error = rejected(pipeline_job(**preset), source="gs://b/job.json#7")
    assert error.message.startswith("spec gs://b/job.json#7: ") and words in error.message
    assert "parameter_values" not in error.message


def test_preset_values_are_typed_when_the_spec_is_parsed():
    spec = parse_spec(pipeline_job(sample_rows="500", learning_rate=1, run_date="d").encode(), source="j")
    assert spec.preset_values == {"sample_rows": 500, "learning_rate": 1.0, "run_date": "d"}
    assert type(spec.preset_values["sample_rows"]) is int and type(spec.preset_values["learning_rate"]) is float


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"encryptionSpec": {"kmsKeyName": "k"}}, "encryptionSpec"),
        ({"network": "projects/1/global/networks/n"}, "network"),
        ({"serviceAccount": "someone@p.iam.gserviceaccount.com"}, "serviceAccount"),
        ({"runtimeConfig": {"failurePolicy": "PIPELINE_FAILURE_POLICY_FAIL_FAST"}}, "runtimeConfig.failurePolicy"),
    ],
)
def test_pipeline_job_fields_the_function_would_drop_are_refused(extra, named):
    """Dropped, a CMEK key or a VPC would silently not apply to the run."""
    document = {"pipelineSpec": json.loads((EXAMPLES / "pipeline.json").read_text()), **extra}
    with pytest.raises(BadRequest) as caught:
        parse_spec(json.dumps(document).encode(), source="job.json")
    assert f"field {named} is not supported" in caught.value.message and caught.value.field == "spec_uri"
