"""Cloud Functions v2 + Run v2 IAM (filled in step 2)."""

from __future__ import annotations

from typing import Any


class FunctionsMixin:
    def _functions_routes(self) -> list[tuple[str, str, Any, set[str], str | None]]:
        return []
