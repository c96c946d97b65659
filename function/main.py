"""Cloud Functions entry point: `trigger`, called by Cloud Scheduler (see docs/function.md)."""

from vertex_cron_trigger.handler import trigger

__all__ = ["trigger"]
