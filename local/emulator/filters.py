"""The AIP-160 filter subset Vertex AI's `pipelineJobs.list` accepts (as far as we use it).

Grammar (AND binds tighter than OR; juxtaposition means AND; NOT / leading '-' negate):

    expr       := and_expr ("OR" and_expr)*
    and_expr   := term (["AND"] term)*
    term       := ["NOT" | "-"] (comparison | "(" expr ")")
    comparison := FIELD OP VALUE          OP in = != < <= > >= :
    VALUE      := "quoted string" | bare-word

Fields: display_name, state, pipeline_name, create_time, update_time, start_time,
end_time, labels.KEY (`labels.KEY:*` tests presence), name (also camelCase spellings).
Unknown fields and syntax errors raise ApiError INVALID_ARGUMENT.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .common import invalid, parse_rfc3339

# google.cloud.aiplatform.v1.PipelineState, in number order (a filter may name a state by number).
_STATE_BY_NUMBER = [
    "PIPELINE_STATE_UNSPECIFIED",
    "PIPELINE_STATE_QUEUED",
    "PIPELINE_STATE_PENDING",
    "PIPELINE_STATE_RUNNING",
    "PIPELINE_STATE_SUCCEEDED",
    "PIPELINE_STATE_FAILED",
    "PIPELINE_STATE_CANCELLING",
    "PIPELINE_STATE_CANCELLED",
    "PIPELINE_STATE_PAUSED",
]
PIPELINE_STATES = frozenset(_STATE_BY_NUMBER)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) |
        (?P<op>!=|<=|>=|=|<|>|:) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<word>[A-Za-z0-9_.*\-+/@]+(?:"(?:[^"\\]|\\.)*")?)
    )""",
    re.VERBOSE,
)

_TIME_FIELDS = {
    "create_time": "createTime",
    "update_time": "updateTime",
    "start_time": "startTime",
    "end_time": "endTime",
}


@dataclass
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise invalid(f"Invalid filter: unexpected character at position {pos}: {text[pos : pos + 10]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(_Tok(kind, value))
    return tokens


Predicate = Callable[[dict[str, Any]], bool]


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise invalid("Invalid filter: unexpected end of expression.")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.peek() is not None:
            raise invalid(f"Invalid filter: unexpected token {self.peek().text!r}.")  # type: ignore[union-attr]
        return pred

    def expr(self) -> Predicate:
        parts = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text == "OR":
            self.next()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda job: any(part(job) for part in parts)

    def and_expr(self) -> Predicate:
        parts = [self.term()]
        while (
            (tok := self.peek()) is not None and tok.kind != "rparen" and not (tok.kind == "word" and tok.text == "OR")
        ):
            if tok.kind == "word" and tok.text == "AND":
                self.next()
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda job: all(part(job) for part in parts)

    def term(self) -> Predicate:
        tok = self.next()
        if tok.kind == "word" and tok.text == "NOT":
            inner = self.term()
            return lambda job: not inner(job)
        if tok.kind == "word" and tok.text.startswith("-") and len(tok.text) > 1:
            tok = _Tok("word", tok.text[1:])
            inner = self._comparison(tok)
            return lambda job: not inner(job)
        if tok.kind == "lparen":
            inner = self.expr()
            close = self.next()
            if close.kind != "rparen":
                raise invalid("Invalid filter: missing ')'.")
            return inner
        if tok.kind != "word":
            raise invalid(f"Invalid filter: expected a field name, got {tok.text!r}.")
        if tok.text in {"AND", "OR"}:
            raise invalid(f"Invalid filter: unexpected {tok.text}.")
        return self._comparison(tok)

    def _comparison(self, field_tok: _Tok) -> Predicate:
        op = self.next()
        if op.kind != "op":
            raise invalid(f"Invalid filter: expected an operator after {field_tok.text!r}.")
        value_tok = self.next()
        if value_tok.kind not in {"string", "word"}:
            raise invalid(f"Invalid filter: expected a value after {field_tok.text}{op.text}.")
        return _compile(field_tok.text, op.text, value_tok.text)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == ":":
        if expected == "*":
            return actual is not None
        if actual is None:
            return False
        if isinstance(expected, str) and "*" in expected:
            return fnmatch.fnmatchcase(str(actual), expected)
        return actual == expected
    if actual is None:
        return op == "!="
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    try:
        if op == "<":
            return actual < expected
        if op == "<=":
            return actual <= expected
        if op == ">":
            return actual > expected
        if op == ">=":
            return actual >= expected
    except TypeError:
        return False
    raise invalid(f"Invalid filter: unsupported operator {op}.")


def _compile(field: str, op: str, value: str) -> Predicate:
    raw_field = field
    if field.startswith("labels."):
        key = field[len("labels.") :]
        if key.startswith('"') and key.endswith('"'):
            key = key[1:-1]
        if not key:
            raise invalid("Invalid filter: empty label key.")
        if op not in {"=", "!=", ":"}:
            raise invalid(f"Invalid filter: operator {op} is not supported for labels.")
        return lambda job: _compare((job.get("labels") or {}).get(key), op, value)
    field = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), field)
    if field == "labels" and op == ":":
        return lambda job: value in (job.get("labels") or {})
    if field == "state":
        if value.isdigit() and int(value) < len(_STATE_BY_NUMBER):
            value = _STATE_BY_NUMBER[int(value)]
        if value not in PIPELINE_STATES:
            raise invalid(f'Invalid filter: unknown state value "{value}".')
        if op not in {"=", "!=", ":"}:
            raise invalid(f"Invalid filter: operator {op} is not supported for state.")
        return lambda job: _compare(job.get("state", "PIPELINE_STATE_UNSPECIFIED"), op, value)
    if field == "display_name":
        return lambda job: _compare(job.get("displayName", ""), op, value)
    if field == "name":
        return lambda job: (
            _compare(job.get("name", ""), op, value) or _compare(job.get("name", "").rsplit("/", 1)[-1], op, value)
        )
    if field == "pipeline_name":
        return lambda job: _compare(((job.get("pipelineSpec") or {}).get("pipelineInfo") or {}).get("name"), op, value)
    if field in _TIME_FIELDS:
        key = _TIME_FIELDS[field]
        if op == ":" and value == "*":
            return lambda job: job.get(key) is not None
        try:
            expected = parse_rfc3339(value)
        except ValueError:
            raise invalid(f'Invalid filter: "{value}" is not an RFC 3339 timestamp for {field}.') from None
        return lambda job: _compare(parse_rfc3339(job[key]) if job.get(key) else None, op, expected)
    raise invalid(f"Invalid filter: unsupported field {raw_field!r}.")


def compile_filter(text: str | None) -> Predicate:
    if text is None or not text.strip():
        return lambda job: True
    return _Parser(_tokenize(text)).parse()


_ORDER_FIELDS = {
    "create_time": "createTime",
    "update_time": "updateTime",
    "start_time": "startTime",
    "end_time": "endTime",
    "display_name": "displayName",
    "name": "name",
}


def sort_jobs(jobs: list[dict[str, Any]], order_by: str | None) -> list[dict[str, Any]]:
    """Sort by an AIP-132 order_by ("create_time desc, display_name"); default create_time desc."""
    clauses: list[tuple[str, bool]] = []
    for part in (order_by or "create_time desc").split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in {"asc", "desc"}):
            raise invalid(f"Invalid order_by: {part.strip()!r}.")
        field = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), words[0])
        if field not in _ORDER_FIELDS:
            raise invalid(f"Invalid order_by field {words[0]!r}: supported are {', '.join(sorted(_ORDER_FIELDS))}.")
        clauses.append((_ORDER_FIELDS[field], len(words) == 2 and words[1].lower() == "desc"))
    result = sorted(jobs, key=lambda j: j.get("name", ""))
    for key, desc in reversed(clauses):
        result.sort(key=_sort_key(key), reverse=desc)
    return result


def _sort_key(field: str) -> Callable[[dict[str, Any]], Any]:
    if field.endswith("Time"):  # unset times sort first, as the earliest
        return lambda job: parse_rfc3339(job[field]) if job.get(field) else float("-inf")
    return lambda job: job.get(field, "")
