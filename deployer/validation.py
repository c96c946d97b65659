"""Checks that run before any cloud call: names, identities, time zones, sizes, and
the formats of the settings that end up in resource names and URLs (project, region,
bucket, function name), so a typo is a usage error here, not a puzzling answer from Google.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta

from vertex_cron_trigger.body import MAX_BODY_BYTES, SCHEDULE_NAME_RE
from vertex_cron_trigger.catch_up import RESERVED_SCHEDULE_NAME, SWEEP_JOB
from vertex_cron_trigger.time_zones import time_zone_problem

from .errors import SettingsError, ValidationError

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


# Project IDs: 6-30 characters, a lowercase letter first, then lowercase letters, digits or
# hyphens, no hyphen last. Old Google Workspace projects are domain-scoped: `example.com:my-project`.
_PROJECT_ID = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_PROJECT = re.compile(rf"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+:)?{_PROJECT_ID}$")
# Regions are `<area>-<direction><number>`: us-central1, europe-west10, northamerica-northeast1.
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]{1,2}$")
# Cloud Functions v2 function IDs: 4-63 characters of [a-z0-9-], a letter first, no hyphen last
# (the ID also names the function's Cloud Run service).
_FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9-]{2,61}[a-z0-9]$")
# Cloud Storage bucket names (cloud.google.com/storage/docs/buckets#naming).
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_GOOGLE_LOOKALIKE = re.compile(r"g[o0]{2}g[l1]e")

# A catch-up window: whole days, hours, minutes or seconds, e.g. 6h, 90m, 1d, 1d12h.
_DURATION = re.compile(r"^(?:[0-9]{1,7}[dhms])+$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# Each sweep looks back over the window for fire times without a run (one list of the
# schedule's runs per sweep, and a capped number of runs created): a week covers a long
# weekend's outage; anything older is a backfill (`vertex-cron backfill`), done on purpose.
MAX_CATCH_UP = timedelta(days=7)
MAX_CATCH_UP_TEXT = "7d"
# desired.min_catch_up() (the retry policy's give-up span plus one sweep period), written out
# so that the help text needs neither; tests/deployer keep the two equal.
MIN_CATCH_UP_TEXT = "41m15s"


def check_project(project: str, *, source: str) -> str:
    return _matching(
        project,
        _PROJECT,
        what="project ID",
        source=source,
        details="a project ID has 6-30 characters: a lowercase letter first, then lowercase letters, "
        "digits or '-', not ending in '-' (or the legacy form example.com:my-project); "
        "use the ID, not the project's display name or number",
    )


def check_region(region: str, *, source: str) -> str:
    return _matching(
        region,
        _REGION,
        what="region",
        source=source,
        details="expected a Google Cloud region such as us-central1 or europe-west1 (not a zone "
        "like europe-west1-b, not a multi-region like EU)",
    )


def check_function_name(name: str, *, source: str) -> str:
    return _matching(
        name,
        _FUNCTION_NAME,
        what="function name",
        source=source,
        details="a Cloud Functions (2nd gen) name has 4-63 characters: a lowercase letter first, "
        "then lowercase letters, digits or '-', not ending in '-'",
    )


def _matching(value: str, pattern: re.Pattern[str], *, what: str, source: str, details: str) -> str:
    if not pattern.fullmatch(value):
        raise SettingsError(f"invalid {what} {value!r} (from {source})", details=details)
    return value


def check_bucket(bucket: str, *, source: str) -> str:
    problem = _bucket_problem(bucket)
    if problem:
        raise SettingsError(
            f"invalid bucket name {bucket!r} (from {source}): {problem}",
            details="bucket names use lowercase letters, digits, '-', '_' and '.', start and end with a "
            "letter or digit, and have 3-63 characters (up to 222 with dots, 63 per dot-separated part)",
        )
    return bucket


def _bucket_problem(bucket: str) -> str | None:
    if bucket.startswith("gs://") or "/" in bucket:
        return "give the bucket's name only, without gs:// or a path"
    if not 3 <= len(bucket) <= (222 if "." in bucket else 63):
        return "wrong length"
    if not _BUCKET_CHARS.fullmatch(bucket):
        return "not a valid bucket name"
    if any(not 1 <= len(part) <= 63 for part in bucket.split(".")):
        return "each dot-separated part must have 1-63 characters"
    if bucket.startswith("goog") or _GOOGLE_LOOKALIKE.search(bucket):
        return "names may not start with 'goog' or contain 'google'"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        return None
    return "names may not be IP addresses"


def check_schedule_name(name: str) -> str:
    if not isinstance(name, str) or not SCHEDULE_NAME_RE.fullmatch(name):
        raise ValidationError(
            f"invalid schedule name {name!r}",
            details=f"a schedule name must match {SCHEDULE_NAME_RE.pattern} "
            "(lowercase letter first, then lowercase letters, digits or '-', at most 50)",
        )
    if name == RESERVED_SCHEDULE_NAME:
        raise ValidationError(
            f"the schedule name {name!r} is reserved: no schedule can have it",
            details=f"vertex-cron's catch-up sweep has the Scheduler job {SWEEP_JOB}, which a schedule "
            f"named {name!r} would have too",
        )
    return name


def check_catch_up(text: object) -> timedelta:
    """A schedule's catch-up window: a positive duration of at most MAX_CATCH_UP."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text.strip()):
        raise ValidationError(
            f"catch_up must be a duration such as 6h, 90m or 1d, got {text!r:.80}",
            details="whole days (d), hours (h), minutes (m) or seconds (s), combinable: 1d12h",
        )
    window = timedelta(seconds=sum(int(n) * _UNIT_SECONDS[unit] for n, unit in re.findall(r"([0-9]+)([dhms])", text)))
    if window <= timedelta(0):
        raise ValidationError(f"catch_up must be a positive duration, got {text!r}")
    if window > MAX_CATCH_UP:
        raise ValidationError(
            f"catch_up {text} is longer than the maximum of {MAX_CATCH_UP_TEXT}",
            details="older fire times are caught up on purpose: `vertex-cron backfill NAME --from ... --to ...`",
        )
    return window


def format_duration(span: timedelta) -> str:
    """`span` as a catch-up window is written, in whole seconds: 41m15s, 1d2h."""
    seconds, parts = int(span.total_seconds()), []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


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
    """The function's own check (vertex_cron_trigger.time_zones), before any job is written."""
    problem = time_zone_problem(time_zone)
    if problem:
        raise ValidationError(f"time zone {time_zone!r} {problem}")
    return time_zone


def check_body_size(schedule: str, body: bytes) -> bytes:
    if len(body) > MAX_SCHEDULER_BODY_BYTES:
        raise ValidationError(
            f"schedule {schedule}: the Scheduler request body is {len(body)} bytes, over the "
            f"{MAX_SCHEDULER_BODY_BYTES}-byte limit",
            details="parameter values travel in the body; pass large values through the spec or GCS",
        )
    return body
