import json
from pathlib import Path

import pytest
from vertex_cron_trigger.errors import BadRequest
from vertex_cron_trigger.parameters import coerce_parameters
from vertex_cron_trigger.spec import parse_spec

SPEC = parse_spec((Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml").read_bytes(), source="p")
STRUCTURED = parse_spec(
    b'{"pipelineInfo": {"name": "s"}, "root": {"inputDefinitions": {"parameters": {'
    b'"items": {"parameterType": "LIST", "isOptional": true},'
    b'"config": {"parameterType": "STRUCT", "isOptional": true}}}}}',
    source="s",
)


def test_values_get_the_spec_types_and_defaults_are_not_resent():
    values = coerce_parameters(SPEC, {"run_date": "2024-05-01", "sample_rows": 500.0, "learning_rate": 1})
    assert values == {"run_date": "2024-05-01", "sample_rows": 500, "learning_rate": 1.0}
    assert type(values["sample_rows"]) is int and type(values["learning_rate"]) is float


def test_strings_are_accepted_when_they_parse_as_the_type():
    values = coerce_parameters(SPEC, {"run_date": "d", "sample_rows": "42", "dry_run": "true", "learning_rate": "0.5"})
    assert values == {"run_date": "d", "sample_rows": 42, "dry_run": True, "learning_rate": 0.5}
    assert coerce_parameters(STRUCTURED, {"items": "[1, 2]", "config": {"k": "v"}}) == {
        "items": [1, 2],
        "config": {"k": "v"},
    }


@pytest.mark.parametrize(
    ("values", "name", "words"),
    [
        ({"run_date": "d", "sample_rows": 1.5}, "sample_rows", "an integer"),
        ({"run_date": "d", "sample_rows": True}, "sample_rows", "an integer"),
        ({"run_date": "d", "dry_run": 1}, "dry_run", "true or false"),
        ({"run_date": "d", "dry_run": "maybe"}, "dry_run", "true or false"),
        ({"run_date": 20240501}, "run_date", "a string"),
        ({"run_date": "d", "learning_rate": "NaN"}, "learning_rate", "a number"),
        ({"run_date": "d", "epochs": 3}, "epochs", "no such parameter"),
        ({}, "run_date", "required"),
    ],
)
def test_wrong_values_name_the_parameter(values, name, words):
    with pytest.raises(BadRequest) as caught:
        coerce_parameters(SPEC, values)
    assert caught.value.field == f"parameter_values.{name}" and words in caught.value.message


@pytest.mark.parametrize(
    ("name", "value"), [("run_date", "2024\udced"), ("items", ["\ud800"]), ("config", {"k": {"\udfff": 1}})]
)
def test_values_that_are_not_unicode_text_are_refused(name, value):
    """What a --param with undecodable bytes (click's surrogateescape) or a YAML escape gives."""
    spec = SPEC if name == "run_date" else STRUCTURED
    with pytest.raises(BadRequest) as caught:
        coerce_parameters(spec, {name: value})
    assert caught.value.field == f"parameter_values.{name}"
    assert caught.value.message.startswith(f"parameter_values.{name}") and "not valid Unicode" in caught.value.message


def test_structured_types_are_checked():
    with pytest.raises(BadRequest, match="a JSON array"):
        coerce_parameters(STRUCTURED, {"items": {"not": "a list"}})


def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_struct(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_list_and_struct_values_nest_at_most_32_levels():
    within = {"items": nested_list(32), "config": nested_struct(32)}
    assert coerce_parameters(STRUCTURED, within) == within
    for name, value in (
        ("items", nested_list(33)),
        ("config", nested_struct(33)),
        ("items", json.dumps(nested_list(33))),
        ("config", json.dumps(nested_struct(33))),
    ):
        with pytest.raises(BadRequest) as caught:
            coerce_parameters(STRUCTURED, {name: value})
        assert caught.value.field == f"parameter_values.{name}" and "32 levels" in caught.value.message


def test_a_string_too_deep_for_the_json_parser_is_a_400_not_a_crash():
    with pytest.raises(BadRequest) as caught:
        coerce_parameters(STRUCTURED, {"items": "[" * 50_000 + "]" * 50_000})
    assert caught.value.field == "parameter_values.items"


@pytest.mark.parametrize(
    ("values", "spec", "name", "where"),
    [
        ({"run_date": "d", "sample_rows": 2**53 + 1}, SPEC, "sample_rows", "parameter_values.sample_rows is"),
        ({"run_date": "d", "sample_rows": -(2**63)}, SPEC, "sample_rows", "parameter_values.sample_rows is"),
        ({"run_date": "d", "sample_rows": "9007199254740993"}, SPEC, "sample_rows", "parameter_values.sample_rows is"),
        ({"run_date": "d", "sample_rows": 1e300}, SPEC, "sample_rows", "parameter_values.sample_rows is"),
        ({"items": [1, [2, 2**60]]}, STRUCTURED, "items", "parameter_values.items[1][1] is"),
        ({"config": {"id": 10**20}}, STRUCTURED, "config", "parameter_values.config.id is"),
    ],
)
def test_integers_a_double_cannot_hold_are_refused_with_the_advice_to_send_a_string(values, spec, name, where):
    """Vertex AI's parameter values are protobuf Value numbers (doubles): 2^53 + 1 would arrive as 2^53."""
    with pytest.raises(BadRequest) as caught:
        coerce_parameters(spec, values)
    assert caught.value.field == f"parameter_values.{name}"
    assert where in caught.value.message and "as a string" in caught.value.message


def test_integers_up_to_2_53_pass_exactly():
    assert coerce_parameters(SPEC, {"run_date": "d", "sample_rows": 2**53})["sample_rows"] == 2**53
    assert coerce_parameters(STRUCTURED, {"items": [-(2**53)]}) == {"items": [-(2**53)]}


def test_a_number_beyond_the_range_of_a_double_is_a_400_for_a_double():
    with pytest.raises(BadRequest) as caught:
        coerce_parameters(SPEC, {"run_date": "d", "learning_rate": 10**400})
    assert caught.value.field == "parameter_values.learning_rate" and "a number" in caught.value.message
