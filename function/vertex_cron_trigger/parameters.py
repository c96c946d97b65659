"""Parameter values typed against the pipeline's root `inputDefinitions`.

Vertex AI takes `runtimeConfig.parameterValues` as protobuf Values and checks them against
the spec; sending `1000.0` for a NUMBER_INTEGER fails the run, so values are converted here
and a wrong one is a 400 naming the parameter before any job exists. A string is accepted
for a non-string parameter when it parses as that type (`--param rows=500`, placeholders:
zero-padded numbers such as `{{schedule_time:%m}}` -> "05" count as numbers).
LIST and STRUCT values may nest at most MAX_VALUE_DEPTH levels.

Numbers reach Vertex AI as protobuf Value `number_value`s, which are doubles: an integer
beyond ±2^53 (MAX_EXACT_INTEGER), alone or inside a LIST or STRUCT, would arrive as another
number, so it is refused with the advice to pass it as a string. A number beyond the range
of a double is refused too.

The same conversion types a PipelineJob document's preset values when its spec is parsed
(spec.py), with errors naming `runtimeConfig.parameterValues.NAME` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from . import strict_json
from .errors import BadRequest
from .spec import PipelineSpec

# `[1]` is 1 level, `{"a": [1]}` 2. Deeper values are refused before they reach Vertex AI,
# whose protobuf Values nest two messages per JSON level and cap the total.
MAX_VALUE_DEPTH = 32
# The largest integer a double holds exactly, and so the largest a parameter may carry.
MAX_EXACT_INTEGER = 2**53


def coerce_parameters(spec: PipelineSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the values given are returned: spec defaults are left to Vertex AI."""
    coerced = {}
    for name, value in values.items():
        definition = spec.parameters.get(name)
        if definition is None:
            known = ", ".join(sorted(spec.parameters)) or "none"
            raise BadRequest(
                f"parameter_values.{name}: pipeline {spec.name!r} has no such parameter (it has: {known})",
                field=f"parameter_values.{name}",
            )
        field = f"parameter_values.{name}"
        coerced[name] = convert_value(definition.type, value, label=field, field=field)
    missing = sorted(p.name for p in spec.parameters.values() if p.required and p.name not in coerced)
    if missing:
        raise BadRequest(
            f"parameter_values.{missing[0]} is required by pipeline {spec.name!r} and has no default",
            field=f"parameter_values.{missing[0]}",
        )
    return coerced


def convert_value(kind: str, value: Any, *, label: str, field: str) -> Any:
    """`value` as parameter type `kind`; a BadRequest saying "`label` must be ..." else."""
    if isinstance(value, str) and kind != "STRING":
        value = _from_text(kind, value, label, field)
    try:
        converted = _CONVERTERS[kind](value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{label} must be {_EXPECTED[kind]} ({kind}), got {value!r:.80}", field=field) from exc
    if strict_json.nesting_depth_exceeds(converted, MAX_VALUE_DEPTH):
        raise BadRequest(f"{label} is nested more than {MAX_VALUE_DEPTH} levels deep", field=field)
    inexact = _inexact_integer(converted)
    if inexact is not None:
        raise BadRequest(
            f"{label}{inexact} is an integer beyond ±2^53: Vertex AI carries numbers as doubles and would "
            "change it; pass it as a string",
            field=field,
        )
    try:  # a value not from JSON (a --param, a YAML spec) may hold a lone surrogate
        strict_json.check_unicode(converted, where=label)
    except strict_json.NotUnicode as exc:
        raise BadRequest(str(exc), field=field) from exc
    return converted


def _from_text(kind: str, text: str, label: str, field: str) -> Any:
    text = text.strip()
    if kind in _NUMBERS and _ZERO_PADDED.fullmatch(text):
        return int(text)  # what {{schedule_time:%m}} renders ("05"); JSON has no leading zeros
    try:
        return strict_json.loads(text)
    except RecursionError as exc:
        raise BadRequest(f"{label} is nested more than {MAX_VALUE_DEPTH} levels deep", field=field) from exc
    except ValueError as exc:
        raise BadRequest(
            f"{label} must be {_EXPECTED[kind]} ({kind}), got the string {text!r:.80}", field=field
        ) from exc


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not integral")
    return int(value)


def _double(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number")
    try:
        return float(value)
    except OverflowError as exc:  # an integer literal beyond the range of a double
        raise ValueError("beyond the range of a double") from exc


def _inexact_integer(value: Any) -> str | None:
    """Where in `value` ("" for itself, `.key`, `[0]`) the first integer a double cannot hold
    exactly is, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_EXACT_INTEGER:
            return path
        if isinstance(node, dict):
            stack.extend((child, f"{path}.{key}") for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(node))
    return None


def _exactly(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            raise TypeError(f"not {kind.__name__}")
        return value

    return check


_NUMBERS = frozenset({"NUMBER_INTEGER", "NUMBER_DOUBLE"})
_ZERO_PADDED = re.compile(r"-?0[0-9]+")
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "NUMBER_INTEGER": _integer,
    "NUMBER_DOUBLE": _double,
    "BOOLEAN": _exactly(bool),
    "STRING": _exactly(str),
    "LIST": _exactly(list),
    "STRUCT": _exactly(dict),
}
_EXPECTED = {
    "NUMBER_INTEGER": "an integer",
    "NUMBER_DOUBLE": "a number",
    "BOOLEAN": "true or false",
    "STRING": "a string",
    "LIST": "a JSON array",
    "STRUCT": "a JSON object",
}
