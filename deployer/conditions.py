"""IAM conditions on Cloud Storage grants, decided for a whole pipeline root.

`vertex-cron doctor` must know whether a conditional binding lets the workload SA work
under a pipeline root `gs://BUCKET/PREFIX`: for *every* request a run makes there, not for
one object. Cloud Storage evaluates a condition per request against the resource's
`resource.name` (`projects/_/buckets/B` for the bucket, `projects/_/buckets/B/objects/O`
for an object), `resource.type`, `resource.service` and, for objects.list, the listed
prefix `api.getAttribute("storage.googleapis.com/objectListPrefix", DEFAULT)` (absent on
other requests, so DEFAULT). Sources: docs/fidelity.md, "Identities and IAM".

Only the CEL subset infra/ and Google's storage examples use is read: those terms
compared with `== "…"` or `.startsWith("…")`, combined with `&&`, `||` and parentheses.
Anything else (negation, `endsWith`, times, other attributes) raises Unevaluable: doctor
then says it did not evaluate the binding instead of guessing.

A condition "holds" only when it is true for every request of the kind under the root,
e.g. `resource.name.startsWith("projects/_/buckets/B/objects/a/")` holds for the objects
of root `gs://B/a/b` but not of `gs://B/a` (objects under `a2/` share that prefix too,
and objects outside `a/` are requested by the run). `A || B` holds when A or B holds
(sound, not complete: two halves that only together cover the root are not recognised).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

LIST_PREFIX_ATTRIBUTE = "storage.googleapis.com/objectListPrefix"
_STORAGE = "storage.googleapis.com"


class Unevaluable(Exception):
    """The condition uses CEL beyond the subset read here."""


class Request(enum.Enum):
    """The kinds of Cloud Storage request a permission is checked on."""

    BUCKET = "bucket"  # storage.buckets.*: the bucket itself
    LIST = "list"  # storage.objects.list: the bucket, with the listed prefix
    OBJECT = "object"  # every other storage.objects.*: one object


def request_kind(permission: str) -> Request:
    if permission == "storage.objects.list":
        return Request.LIST
    if permission.startswith("storage.objects."):
        return Request.OBJECT
    return Request.BUCKET


@dataclass(frozen=True)
class _Text:
    """A value known exactly, or (`open`) only by a prefix every instance of it starts with."""

    known: str
    open: bool = False

    def starts_with(self, prefix: str) -> bool:
        return self.known.startswith(prefix)

    def equals(self, value: str) -> bool:
        return not self.open and self.known == value


def holds(expression: str, *, bucket: str, prefix: str, kind: Request) -> bool:
    """Whether `expression` is true for every `kind` request under gs://bucket/prefix
    (`prefix` empty or ending in "/"). Raises Unevaluable beyond the subset."""
    bucket_name = f"projects/_/buckets/{bucket}"
    terms = {
        "resource.service": _Text(_STORAGE),
        "resource.name": _Text(f"{bucket_name}/objects/{prefix}", open=True)
        if kind is Request.OBJECT
        else _Text(bucket_name),
        "resource.type": _Text(f"{_STORAGE}/Object" if kind is Request.OBJECT else f"{_STORAGE}/Bucket"),
    }
    listed = _Text(prefix, open=True) if kind is Request.LIST else None
    parser = _Parser(_tokens(expression), terms, listed)
    result = parser.disjunction()
    if parser.peek() is not None:
        raise Unevaluable(f"unexpected {parser.peek()!r}")
    return result


_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>&&|\|\||==|[(),])|(?P<name>\.?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))'
)


def _tokens(expression: str) -> list[str]:
    tokens, position, end = [], 0, len(expression.rstrip())
    while position < end:
        match = _TOKEN.match(expression, position)
        if match is None:
            raise Unevaluable(f"cannot read {expression[position:]!r}")
        name = match.group("name")
        if name and name.endswith(".startsWith"):
            if name != ".startsWith":
                tokens.append(name.removesuffix(".startsWith"))
            tokens.append(".startsWith")
        else:
            tokens.append(match.group(match.lastgroup or "op"))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], terms: dict[str, _Text], listed: _Text | None) -> None:
        self._tokens, self._terms, self._listed = tokens, terms, listed

    def peek(self) -> str | None:
        return self._tokens[0] if self._tokens else None

    def _take(self, expected: str | None = None) -> str:
        if not self._tokens:
            raise Unevaluable("the expression ends too early")
        token = self._tokens.pop(0)
        if expected is not None and token != expected:
            raise Unevaluable(f"expected {expected!r}, got {token!r}")
        return token

    def _string(self) -> str:
        token = self._take()
        if not token.startswith('"'):
            raise Unevaluable(f"expected a string, got {token!r}")
        return re.sub(r"\\(.)", r"\1", token[1:-1])

    def disjunction(self) -> bool:
        result = self._conjunction()
        while self.peek() == "||":
            self._take()
            result = self._conjunction() or result  # parse both sides whatever the first gave
        return result

    def _conjunction(self) -> bool:
        result = self._primary()
        while self.peek() == "&&":
            self._take()
            result = self._primary() and result
        return result

    def _primary(self) -> bool:
        if self.peek() == "(":
            self._take()
            result = self.disjunction()
            self._take(")")
            return result
        value = self._value()
        operator = self._take()
        if operator == ".startsWith":
            self._take("(")
            prefix = self._string()
            self._take(")")
            return value.starts_with(prefix)
        if operator == "==":
            return value.equals(self._string())
        raise Unevaluable(f"unsupported operator {operator!r}")

    def _value(self) -> _Text:
        term = self._take()
        if term in self._terms:
            return self._terms[term]
        if term == "api.getAttribute":
            self._take("(")
            attribute = self._string()
            self._take(",")
            default = self._string()
            self._take(")")
            if attribute != LIST_PREFIX_ATTRIBUTE:
                raise Unevaluable(f"attribute {attribute!r}")
            return self._listed if self._listed is not None else _Text(default)
        raise Unevaluable(f"unsupported term {term!r}")
