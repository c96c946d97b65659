"""Local checks that run before any cloud call: names, identities, time zones, sizes."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vertex_cron_trigger.body import MAX_BODY_BYTES, SCHEDULE_NAME_RE

from .errors import ValidationError

# Cloud Scheduler: "Fixed maximum job size (payload): 1 MB total including ~1 KB request
# overhead" (cloud.google.com/scheduler/quotas). The function accepts less, so its limit binds.
SCHEDULER_JOB_MAX_BYTES = 1_000_000 - 1_024
MAX_SCHEDULER_BODY_BYTES = min(MAX_BODY_BYTES, SCHEDULER_JOB_MAX_BYTES)

_SA_LOCAL = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_USER_MANAGED_SA = re.compile(rf"^{_SA_LOCAL}@[a-z0-9.:-]+\.iam\.gserviceaccount\.com$")
# Google-created defaults carry broad Editor grants; using them defeats least privilege.
_DEFAULT_SAS = (
    re.compile(r"^\d+-compute@developer\.gserviceaccount\.com$"),
    re.compile(r"^[a-z0-9.:-]+@appspot\.gserviceaccount\.com$"),
)


def check_schedule_name(name: str) -> str:
    if not isinstance(name, str) or not SCHEDULE_NAME_RE.fullmatch(name):
        raise ValidationError(
            f"invalid schedule name {name!r}",
            details=f"a schedule name must match {SCHEDULE_NAME_RE.pattern} "
            "(lowercase letter first, then lowercase letters, digits or '-', at most 50)",
        )
    return name


def check_service_account(role: str, email: str, *, allow_default: bool) -> str:
    """`role` names the identity in messages, e.g. "workload SA"."""
    if any(p.match(email) for p in _DEFAULT_SAS):
        if allow_default:
            return email
        raise ValidationError(
            f"refusing the default service account {email} as the {role}",
            details="default service accounts have broad Editor grants; create a dedicated one "
            "(see infra/) or pass --allow-default-service-account",
        )
    if not _USER_MANAGED_SA.match(email):
        raise ValidationError(
            f"malformed {role} email {email!r}",
            details="expected NAME@PROJECT.iam.gserviceaccount.com",
        )
    return email


def check_time_zone(time_zone: str) -> str:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValidationError(
            f"unknown time zone {time_zone!r}",
            details="use an IANA time zone name such as UTC, Europe/Paris or America/New_York",
        ) from exc
    return time_zone


def check_body_size(schedule: str, body: bytes) -> bytes:
    if len(body) > MAX_SCHEDULER_BODY_BYTES:
        raise ValidationError(
            f"schedule {schedule}: the Scheduler request body is {len(body)} bytes, over the "
            f"{MAX_SCHEDULER_BODY_BYTES}-byte limit",
            details="parameter values travel in the body; pass large values through the spec or GCS",
        )
    return body
