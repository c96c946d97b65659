"""JSON as Vertex AI and the transport accept it: no NaN/Infinity, no number so large that it
becomes infinity (`1e400`), which transport.py then refuses to send (allow_nan=False), and no
string that is not Unicode text: JSON's `"\\ud800"` escape decodes to a lone UTF-16
surrogate, which cannot be encoded as UTF-8 (a URL with one fails to build; a parameter
with one is refused by Vertex AI only after the request)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# A \uD800-\uDFFF escape: the text may be valid Unicode while the strings it gives are not.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class NotUnicode(ValueError):
    """A string (or key) holding a lone surrogate. `path` locates it: keys and list indexes
    from the top, e.g. ("parameter_values", "run_date"); empty for a top-level string.
    The message names it after `where` (what the checked value is), e.g. `spec: root.x`."""

    def __init__(self, path: tuple[str | int, ...], where: str = "") -> None:
        self.path = path
        located = ": ".join(part for part in (where, dotted(path)) if part) or "the value"
        super().__init__(
            f"{located} is not valid Unicode text (it holds a lone UTF-16 surrogate, "
            "as the escapes \\ud800-\\udfff give when not in a pair)"
        )


def loads(text: str | bytes) -> Any:
    """`json.loads`; ValueError (as json.loads raises it) for a non-finite number, NotUnicode
    (a ValueError) for a lone surrogate. RecursionError for a document nested beyond the
    interpreter's limit: callers catch it."""
    if isinstance(text, (bytes, bytearray)):
        # As json.loads decodes bytes: UTF-8/16/32, letting encoded surrogates through.
        text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
    value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    if _SURROGATE_ESCAPE.search(text) or not _is_unicode(text):
        check_unicode(value)
    return value


def check_unicode(value: Any, *, where: str = "") -> None:
    """NotUnicode naming the first string or key in `value` that is not valid Unicode."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if not _is_unicode(node):
                raise NotUnicode(path, where)
        elif isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and not _is_unicode(key):
                    raise NotUnicode((*path, key.encode("utf-8", "backslashreplace").decode()), where)
                stack.append((child, (*path, key)))
        elif isinstance(node, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(node))


def type_name(value: Any) -> str:
    """The JSON type of a parsed value, for messages: "an object", "null", "a number"..."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def dotted(path: tuple[str | int, ...]) -> str:
    """("a", 0, "b") -> `a[0].b`."""
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path).lstrip(".")


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """True when arrays/objects nest more than `limit` deep (`[1]` is 1, `{"a": [1]}` is 2).
    Iterative, so a value deep enough to break a recursive walk is still measured."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            depth += 1
            if depth > limit:
                return True
            stack.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return False


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token} is too large for a JSON number")
    return value
