"""Bytes of a compiled pipeline -> `PipelineSpec`.

Accepted: KFP IR as JSON, KFP IR as YAML (kfp 2.x writes `# PIPELINE DEFINITION` YAML),
and a whole PipelineJob document (top-level `pipelineSpec` + `runtimeConfig`).

Only what a PipelineJob can carry is accepted, since the spec is re-sent as JSON at every
firing: strict JSON (no NaN/Infinity), and YAML limited to JSON's types (no `.nan`/`.inf`,
timestamps, `!!binary`, `!!set`, `!!omap`, non-string keys) and without aliases (kfp never
writes them; refusing them stops alias bombs whatever their size). A pipeline root must be
a gs:// URI, and a PipelineJob document's preset parameter values are typed here, errors
naming `runtimeConfig.parameterValues.NAME` in the spec.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from . import strict_json
from .errors import BadRequest
from .spec_uri import gcs_directory_problem

MAX_SPEC_BYTES = 4 * 1024 * 1024
# Bounds the work of everything downstream (hashing, deep copies, re-serialising per firing).
_MAX_NODES = 1_000_000
# YAML nodes cost ~350 bytes each once loaded (JSON's far less), and a 4 MiB `[0,0,0,...`
# holds 2 million: counted in the event stream, before anything is built. kfp specs have
# a few thousand nodes.
MAX_YAML_NODES = 100_000
# kfp's deepest structure is ~10 levels plus a parameter constant (itself capped at 32), and
# Vertex AI parses the spec into protobuf Structs, whose nesting it limits too.
MAX_SPEC_DEPTH = 64
# What a parsed spec costs in memory beyond its file's bytes, per JSON value: measured once with
# tracemalloc (CPython 3.11, 64-bit) over specs of 200,000 values of each shape. The most costly
# are objects (a dict and its key per value, ~104 bytes; lists of distinct strings ~53, floats
# ~23, shared small ints and booleans ~5). The spec cache is bounded by this estimate, since
# the file's size alone says little: `[{"a":0},...]` takes 16 times its bytes once parsed.
NODE_BYTES = 110
_JSON_SCALARS = (str, int, float, bool, type(None))
PARAMETER_TYPES = frozenset({"NUMBER_INTEGER", "NUMBER_DOUBLE", "BOOLEAN", "STRING", "LIST", "STRUCT"})


class ParameterDef(NamedTuple):
    name: str
    type: str  # one of PARAMETER_TYPES
    required: bool  # neither optional nor defaulted in the spec


class PipelineSpec(NamedTuple):
    """A parsed spec. `pipeline_spec` is shared by cached callers: never mutate it."""

    pipeline_spec: Mapping[str, Any]
    parameters: Mapping[str, ParameterDef]
    content_sha256: str
    # An upper estimate of the memory the parsed document holds: its bytes plus NODE_BYTES per value.
    memory_bytes: int = 0
    default_pipeline_root: str | None = None
    # Values a whole PipelineJob document already sets; the body overrides them.
    preset_values: Mapping[str, Any] = MappingProxyType({})  # read-only: the default is shared

    @property
    def name(self) -> str:
        return str(self.pipeline_spec["pipelineInfo"]["name"])


def parse_spec(data: bytes, *, source: str) -> PipelineSpec:
    if len(data) > MAX_SPEC_BYTES:
        raise _not_a_spec(source, f"it is {len(data)} bytes; the limit is {MAX_SPEC_BYTES}")
    document, nodes = _load(data, source)
    if not isinstance(document, dict):
        raise _not_a_spec(source, "the top level is not a mapping")
    if "pipelineSpec" in document:
        spec = _from_pipeline_job(document, data, source)
    else:
        spec = _from_ir(document, data, source, runtime_config={})
    return spec._replace(memory_bytes=len(data) + nodes * NODE_BYTES)


def load_document(data: bytes, source: str) -> Any:
    """JSON or YAML bytes -> the document, holding only what JSON can (see the module doc).
    YAML costs an import and a slower parse, which is why the deployer uploads every spec
    as JSON (the function still reads YAML it is given)."""
    return _load(data, source)[0]


def _load(data: bytes, source: str) -> tuple[Any, int]:
    """(the document, how many values it holds)."""
    stripped = data.lstrip()
    try:
        if stripped.startswith(b"{"):
            document = strict_json.loads(data)
        else:
            import yaml  # lazily: only YAML specs pay for it

            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            _check_yaml_events(yaml, data, loader, source)
            document = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
            strict_json.check_unicode(document)  # YAML's "\ud800" escape, like JSON's
    except BadRequest:
        raise
    except strict_json.NotUnicode as exc:
        raise _not_a_spec(source, str(exc)) from exc
    except RecursionError as exc:
        raise _not_a_spec(source, "it is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise _not_a_spec(source, _json_problem(exc)) from exc
    except Exception as exc:  # yaml.YAMLError, imported lazily above
        raise _not_a_spec(source, _yaml_problem(exc, data)) from exc
    return document, _check_tree(document, source)


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    return f"it is not valid JSON ({str(exc).splitlines()[0][:200]})"


def _yaml_problem(exc: Exception, data: bytes) -> str:
    """A YAML parser's refusal in our words, with where it stopped. The parser's own text is
    multi-line and differs between versions and between libyaml and pure Python (6.0.4's
    libyaml refuses deep flow nesting itself, before our event walk sees it), so it is not
    passed on: where the text up to that point is nested past our limit, that is the reason."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return "it is neither JSON nor YAML"
    before = data[: mark.index]
    if before.count(b"[") + before.count(b"{") - before.count(b"]") - before.count(b"}") > MAX_SPEC_DEPTH:
        return f"it is nested too deeply (more than {MAX_SPEC_DEPTH} levels)"
    return f"it is neither JSON nor YAML (YAML parsing stopped at line {mark.line + 1}, column {mark.column + 1})"


def _check_yaml_events(yaml: Any, data: bytes, loader: Any, source: str) -> None:
    """Walk libyaml's event stream, which is flat and costs almost no memory, before
    `yaml.load` builds anything: stop at the first alias, at the first node nested deeper
    than MAX_SPEC_DEPTH (libyaml's composer recurses in C, so a few MB of `[[[[` overflow
    the stack and kill the process with no exception), and at node MAX_YAML_NODES (building
    millions of nodes takes seconds and far more memory than the function has)."""
    depth = 0
    nodes = 0
    for event in yaml.parse(data, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.ScalarEvent)):
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise _not_a_spec(
                    source,
                    f"it has too many nodes for YAML (more than {MAX_YAML_NODES}; kfp specs have a few thousand)",
                )
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                raise _not_a_spec(source, f"it is nested too deeply (more than {MAX_SPEC_DEPTH} levels)")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            raise _not_a_spec(
                source,
                f"it uses a YAML alias (*{str(event.anchor)[:40]}); kfp never writes one, and aliases "
                "can expand a small file to too many nodes",
            )


def _check_tree(document: Any, source: str) -> int:
    """Only JSON's types, at most _MAX_NODES nodes (returns how many), at most MAX_SPEC_DEPTH deep. Iterative,
    with one iterator per open container (not one entry per pending value), so neither a
    deep tree nor a very wide list costs more than the document itself."""
    budget = _MAX_NODES
    # (the open container's (key, value) iterator, whether it is a mapping, its depth, its path)
    stack: list[tuple[Any, bool, int, tuple[Any, ...]]] = []

    def visit(node: Any, depth: int, path: tuple[Any, ...]) -> None:
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise _not_a_spec(source, f"it expands to too many nodes (more than {_MAX_NODES})")
        if isinstance(node, (dict, list)):
            if depth + 1 > MAX_SPEC_DEPTH:
                raise _not_a_spec(source, f"it is nested too deeply (more than {MAX_SPEC_DEPTH} levels)")
            is_mapping = isinstance(node, dict)
            items = iter(node.items()) if isinstance(node, dict) else enumerate(node)
            stack.append((items, is_mapping, depth + 1, path))
        elif isinstance(node, float) and not math.isfinite(node):
            raise _not_a_spec(source, f"{_path(path)} is {node}, which JSON cannot hold")
        elif not isinstance(node, _JSON_SCALARS):
            raise _not_a_spec(source, f"{_path(path)} is {_yaml_kind(node)}, which JSON cannot hold (quote it)")

    visit(document, 0, ())
    while stack:
        items, is_mapping, depth, path = stack[-1]
        for key, value in items:
            if is_mapping and not isinstance(key, str):
                raise _not_a_spec(
                    source, f"the key {key!r:.60} at {_path(path)} is {_yaml_kind(key)}, not a string (quote it)"
                )
            visit(value, depth, (path, key))
            if stack[-1][0] is not items:
                break  # descend into the container just opened; this iterator resumes after it
        else:
            stack.pop()
    return _MAX_NODES - budget


def _path(link: tuple[Any, ...]) -> str:
    """`(((), "root"), "dag")` -> `root.dag`; list indexes as `[0]`."""
    keys: list[Any] = []
    while link:
        link, key = link
        keys.append(key)
    return strict_json.dotted(tuple(reversed(keys))) or "the top level"


def _yaml_kind(value: Any) -> str:
    from datetime import date

    if isinstance(value, date):
        return "a YAML timestamp"
    if isinstance(value, bytes):
        return "YAML !!binary"
    if isinstance(value, (set, frozenset)):
        return "a YAML !!set"
    if isinstance(value, tuple):
        return "a YAML !!omap/!!pairs entry"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return f"a YAML {type(value).__name__}"


# What a whole PipelineJob document may hold. The function builds each run's PipelineJob
# itself (its own displayName, labels and serviceAccount; see pipeline_job.py), so only the
# pipeline, its default output directory and its parameter values are taken from it; any
# other field (`encryptionSpec`, `network`, `reservedIpRanges`, `runtimeConfig.failurePolicy`...)
# would be dropped, a run unlike the one the document describes, so it is refused instead.
_JOB_FIELDS = frozenset({"pipelineSpec", "runtimeConfig", "displayName", "labels"})
_RUNTIME_CONFIG_FIELDS = frozenset({"gcsOutputDirectory", "parameterValues"})


def _from_pipeline_job(document: Mapping[str, Any], data: bytes, source: str) -> PipelineSpec:
    runtime_config = document.get("runtimeConfig") or {}
    if not isinstance(runtime_config, dict):
        raise _not_a_spec(source, "runtimeConfig is not a mapping")
    unsupported = sorted(set(document) - _JOB_FIELDS) + sorted(
        f"runtimeConfig.{name}" for name in set(runtime_config) - _RUNTIME_CONFIG_FIELDS
    )
    if unsupported:
        raise BadRequest(
            f"spec {source}: the PipelineJob field {unsupported[0]} is not supported: vertex-cron takes only "
            "pipelineSpec, runtimeConfig.gcsOutputDirectory and runtimeConfig.parameterValues from a PipelineJob "
            "document, and refuses what it would otherwise silently drop",
            field="spec_uri",
        )
    if not isinstance(document["pipelineSpec"], dict):
        raise _not_a_spec(source, "pipelineSpec is not a mapping")
    return _from_ir(document["pipelineSpec"], data, source, runtime_config=runtime_config)


def _from_ir(ir: Mapping[str, Any], data: bytes, source: str, *, runtime_config: Mapping[str, Any]) -> PipelineSpec:
    if "apiVersion" in ir and "kind" in ir:
        raise _not_a_spec(source, "it looks like a KFP v1 / Argo workflow; compile it with kfp 2.x")
    root = ir.get("root")
    info = ir.get("pipelineInfo")
    if not isinstance(root, dict) or not isinstance(info, dict) or not info.get("name"):
        raise _not_a_spec(source, "it has no root and pipelineInfo.name, which kfp 2.x always writes")
    preset = runtime_config.get("parameterValues") or {}
    if not isinstance(preset, dict):
        raise _not_a_spec(source, "runtimeConfig.parameterValues is not a mapping")
    parameters = _parameters(root, source)
    return PipelineSpec(
        pipeline_spec=ir,
        parameters=parameters,
        content_sha256=hashlib.sha256(data).hexdigest(),
        default_pipeline_root=_pipeline_root(ir, runtime_config, source),
        preset_values=_typed_presets(preset, parameters, str(info["name"]), source),
    )


def _pipeline_root(ir: Mapping[str, Any], runtime_config: Mapping[str, Any], source: str) -> str | None:
    """The run's default gcsOutputDirectory. Both places are checked when set: a spec
    carrying a bad root is a bad spec, even when the body overrides it."""
    candidates = [
        ("runtimeConfig.gcsOutputDirectory", runtime_config.get("gcsOutputDirectory")),
        ("defaultPipelineRoot", ir.get("defaultPipelineRoot")),
    ]
    for name, value in candidates:
        problem = None if value in (None, "") else gcs_directory_problem(value)
        if problem:
            raise BadRequest(f"spec {source}: {name} {problem}", field="spec_uri")
    return next((value for _, value in candidates if value), None)


def _typed_presets(
    preset: Mapping[str, Any], parameters: Mapping[str, ParameterDef], pipeline: str, source: str
) -> dict[str, Any]:
    """A PipelineJob document's own values, typed like the body's, but blamed on the spec."""
    from .parameters import convert_value

    typed = {}
    for name, value in preset.items():
        where = f"spec {source}: runtimeConfig.parameterValues.{name}"
        definition = parameters.get(name)
        if definition is None:
            known = ", ".join(sorted(parameters)) or "none"
            raise BadRequest(
                f"{where}: pipeline {pipeline!r} has no such parameter (it has: {known})", field="spec_uri"
            )
        typed[name] = convert_value(definition.type, value, label=where, field="spec_uri")
    return typed


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
