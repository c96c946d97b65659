"""Cloud Scheduler v1 jobs (filled in step 2)."""

from __future__ import annotations

from typing import Any


class SchedulerMixin:
    def _scheduler_routes(self) -> list[tuple[str, str, Any, set[str], str | None]]:
        return []
