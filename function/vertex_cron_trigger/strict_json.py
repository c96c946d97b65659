"""JSON as Vertex AI and `requests` accept it: no NaN/Infinity, and no number so large
that it becomes infinity (`1e400`), which `requests` then refuses to send (allow_nan=False)."""

from __future__ import annotations

import json
import math
from typing import Any


def loads(text: str | bytes) -> Any:
    """`json.loads`; ValueError (as json.loads raises it) for a non-finite number.
    RecursionError for a document nested beyond the interpreter's limit: callers catch it."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


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
