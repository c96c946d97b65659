"""JSON as Vertex AI and `requests` accept it: no NaN/Infinity, and no number so large
that it becomes infinity (`1e400`), which `requests` then refuses to send (allow_nan=False)."""

from __future__ import annotations

import json
import math
from typing import Any


def loads(text: str | bytes) -> Any:
    """`json.loads`; ValueError (as json.loads raises it) for a non-finite number."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token} is too large for a JSON number")
    return value
