"""Bytes of a compiled pipeline -> `PipelineSpec`.

Accepted: KFP IR as JSON, KFP IR as YAML (kfp 2.x writes `# PIPELINE DEFINITION` YAML),
and a whole PipelineJob document (top-level `pipelineSpec` + `runtimeConfig`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest

MAX_SPEC_BYTES = 4 * 1024 * 1024
# YAML aliases share nodes, so a small file can describe a huge tree ("billion laughs");
# counting nodes as visited (not as stored) bounds the work of everything downstream.
_MAX_NODES = 1_000_000
_MAX_DEPTH = 200
PARAMETER_TYPES = frozenset(
    {"NUMBER_INTEGER", "NUMBER_DOUBLE", "BOOLEAN", "STRING", "LIST", "STRUCT"}
)


@dataclass(frozen=True)
class ParameterDef:
    name: str
    type: str  # one of PARAMETER_TYPES
    required: bool  # neither optional nor defaulted in the spec


@dataclass(frozen=True)
class PipelineSpec:
    """A parsed spec. `pipeline_spec` is shared by cached callers: never mutate it."""

    pipeline_spec: Mapping[str, Any]
    parameters: Mapping[str, ParameterDef]
    content_sha256: str
    default_pipeline_root: str | None = None
    # Values a whole PipelineJob document already sets; the body overrides them.
    preset_values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.pipeline_spec["pipelineInfo"]["name"])


def parse_spec(data: bytes, *, source: str) -> PipelineSpec:
    if len(data) > MAX_SPEC_BYTES:
        raise _not_a_spec(source, f"it is {len(data)} bytes; the limit is {MAX_SPEC_BYTES}")
    document = load_document(data, source)
    _check_size(document, source)
    if not isinstance(document, dict):
        raise _not_a_spec(source, "the top level is not a mapping")
    if "pipelineSpec" in document:
        return _from_pipeline_job(document, data, source)
    return _from_ir(document, data, source, runtime_config={})


def load_document(data: bytes, source: str) -> Any:
    """JSON or YAML bytes -> the document. YAML costs an import and a slower parse, which is
    why the deployer uploads every spec as JSON (the function still reads YAML it is given)."""
    stripped = data.lstrip()
    try:
        if stripped.startswith(b"{"):
            return json.loads(data)
        import yaml  # lazily: only YAML specs pay for it

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        _check_yaml_depth(yaml, data, loader, source)
        return yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    except BadRequest:
        raise
    except RecursionError as exc:
        raise _not_a_spec(source, "it is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _not_a_spec(source, f"it is not valid JSON ({exc})") from exc
    except Exception as exc:  # yaml.YAMLError, imported lazily above
        raise _not_a_spec(source, f"it is neither JSON nor YAML ({str(exc)[:200]})") from exc


def _check_yaml_depth(yaml: Any, data: bytes, loader: Any, source: str) -> None:
    """libyaml's composer recurses in C: a few MB of `[[[[` or `- - - -` overflow the stack
    and kill the process (no exception). Its event stream is flat, so walk it first and
    stop at the first node nested deeper than _MAX_DEPTH."""
    depth = 0
    for event in yaml.parse(data, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > _MAX_DEPTH:
                raise _not_a_spec(source, "it is nested too deeply")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_size(document: Any, source: str) -> None:
    budget = _MAX_NODES
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > _MAX_DEPTH:
            raise _not_a_spec(source, "it expands to too many nodes or is nested too deeply")
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)


def _from_pipeline_job(document: Mapping[str, Any], data: bytes, source: str) -> PipelineSpec:
    runtime_config = document.get("runtimeConfig") or {}
    if not isinstance(runtime_config, dict):
        raise _not_a_spec(source, "runtimeConfig is not a mapping")
    if not isinstance(document["pipelineSpec"], dict):
        raise _not_a_spec(source, "pipelineSpec is not a mapping")
    return _from_ir(document["pipelineSpec"], data, source, runtime_config=runtime_config)


def _from_ir(
    ir: Mapping[str, Any], data: bytes, source: str, *, runtime_config: Mapping[str, Any]
) -> PipelineSpec:
    if "apiVersion" in ir and "kind" in ir:
        raise _not_a_spec(source, "it looks like a KFP v1 / Argo workflow; compile it with kfp 2.x")
    root = ir.get("root")
    info = ir.get("pipelineInfo")
    if not isinstance(root, dict) or not isinstance(info, dict) or not info.get("name"):
        raise _not_a_spec(source, "it has no root and pipelineInfo.name, which kfp 2.x always writes")
    preset = runtime_config.get("parameterValues") or {}
    if not isinstance(preset, dict):
        raise _not_a_spec(source, "runtimeConfig.parameterValues is not a mapping")
    return PipelineSpec(
        pipeline_spec=ir,
        parameters=_parameters(root, source),
        content_sha256=hashlib.sha256(data).hexdigest(),
        default_pipeline_root=runtime_config.get("gcsOutputDirectory") or ir.get("defaultPipelineRoot"),
        preset_values=preset,
    )


def _parameters(root: Mapping[str, Any], source: str) -> dict[str, ParameterDef]:
    inputs = root.get("inputDefinitions") or {}
    if not isinstance(inputs, dict):
        raise _not_a_spec(source, "root.inputDefinitions is not a mapping")
    definitions = inputs.get("parameters") or {}
    if not isinstance(definitions, dict):
        raise _not_a_spec(source, "root.inputDefinitions.parameters is not a mapping")
    parameters = {}
    for name, definition in definitions.items():
        kind = definition.get("parameterType") if isinstance(definition, dict) else None
        if kind not in PARAMETER_TYPES:
            raise _not_a_spec(source, f"root parameter {name!r} has unsupported parameterType {kind!r}")
        optional = bool(definition.get("isOptional")) or "defaultValue" in definition
        parameters[name] = ParameterDef(name=name, type=kind, required=not optional)
    return parameters


def _not_a_spec(source: str, why: str) -> BadRequest:
    return BadRequest(f"{source} is not a compiled KFP pipeline spec: {why}", field="spec_uri")
