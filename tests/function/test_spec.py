import json
from pathlib import Path

import pytest

from vertex_cron_trigger.errors import BadRequest
from vertex_cron_trigger.spec import parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
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


def test_yaml_alias_bomb_is_rejected_not_expanded():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(BadRequest) as caught:
        parse_spec("\n".join(lines).encode(), source="bomb.yaml")
    assert "too many nodes" in caught.value.message


def test_deep_nesting_is_rejected():
    with pytest.raises(BadRequest):
        parse_spec(b"[" * 5000 + b"]" * 5000, source="deep.json")
