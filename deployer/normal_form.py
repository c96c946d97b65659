"""The servers' normal form of the fields vertex-cron sets, so a plan compares like with like.

Google's APIs do not store a field exactly as it was sent: Cloud Scheduler adds a "/" to a
URI with an empty path and headers of its own, Cloud Functions adds LOG_EXECUTION_ID to the
environment, IAM ignores the case of an email in a member, and a Duration read back through
the client library is printed in protobuf's JSON form. Comparing what vertex-cron would send
with what it reads back by plain equality made every no-op deploy rewrite every job, and
made "does this job call the function?" answer no (deleting a function still in use, and
dropping invokers still in use).

`normalize(field, value)` brings a value of a field (a models.py dotted path) into that
normal form; the planner runs both sides of every comparison through it. One function per
kind of field, and `FIELD_KINDS` says which kind each field is. Each rule's source is
recorded in docs/fidelity.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Headers Cloud Scheduler sets itself and shows when a job is read (HttpTarget.headers in the
# REST reference; the Terraform provider's http_headers flattener removes the same ones).
_SCHEDULER_USER_AGENT = "Google-Cloud-Scheduler"
_SCHEDULER_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_SCHEDULER_HEADER = re.compile(r"^(x-google-|x-appengine-|content-length$|authorization$)", re.IGNORECASE)
# Environment variables Cloud Functions sets itself on a function it deploys.
_PLATFORM_ENVIRONMENT = frozenset({"LOG_EXECUTION_ID"})
# IAM member types whose value is case-sensitive; every other type's value is compared
# case-insensitively by IAM (the Terraform provider's NormalizeIamPrincipalCasing).
_CASE_SENSITIVE_MEMBERS = ("allUsers", "allAuthenticatedUsers", "principal:", "principalSet:", "principalHierarchy:")
_DURATION = re.compile(r"^(-?\d+(?:\.\d{1,9})?)s$")


def url(value: Any) -> Any:
    """A URL as Cloud Scheduler stores it: an empty path becomes "/" (RFC 3986 6.2.3: the
    two are equivalent); scheme and host are case-insensitive (6.2.2.1)."""
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return value
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, parts.fragment))


def duration(value: Any) -> Any:
    """A google.protobuf.Duration's JSON form, compared by value: "30s" == "30.000s"."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        return value
    try:
        seconds = Decimal(match.group(1)).normalize()
    except InvalidOperation:
        return value
    return f"{seconds:f}s"


def scheduler_headers(headers: Any) -> Any:
    """The headers a job was given, without those Cloud Scheduler adds on its own."""
    if not isinstance(headers, Mapping):
        return headers
    return {
        name: value
        for name, value in headers.items()
        if not (
            _SCHEDULER_HEADER.match(name)
            or (name.lower() == "user-agent" and value == _SCHEDULER_USER_AGENT)
            or (name.lower() == "content-type" and value == _SCHEDULER_DEFAULT_CONTENT_TYPE)
        )
    }


def function_environment(environment: Any) -> Any:
    """A function's environment without the variables Cloud Functions adds on its own."""
    if not isinstance(environment, Mapping):
        return environment
    return {name: value for name, value in environment.items() if name not in _PLATFORM_ENVIRONMENT}


def member(value: str) -> str:
    """An IAM member with the case of its value folded where IAM ignores it
    ("serviceAccount:A@x" is "serviceAccount:a@x"; a "deleted:" member keeps its prefix)."""
    prefix = "deleted:" if value.startswith("deleted:") else ""
    rest = value[len(prefix) :]
    if rest.startswith(_CASE_SENSITIVE_MEMBERS):
        return value
    kind, separator, principal = rest.partition(":")
    return f"{prefix}{kind}{separator}{principal.lower()}" if separator else value


FIELD_KINDS: Mapping[str, Callable[[Any], Any]] = {
    "http_target.uri": url,
    # The function compares a token's audience scheme-, case- and trailing-slash-insensitively
    # (vertex_cron_trigger.oidc.normalize_audience), so two audiences equal as URLs are one.
    "http_target.oidc_token.audience": url,
    "http_target.headers": scheduler_headers,
    "retry_config.max_retry_duration": duration,
    "retry_config.min_backoff_duration": duration,
    "retry_config.max_backoff_duration": duration,
    "attempt_deadline": duration,
    "service_config.environment_variables": function_environment,
}


def normalize(field: str, value: Any) -> Any:
    """`value` of `field` in the server's normal form. Each kind returns a value of another
    type than its own (None when absent, a models.Pending) as it is."""
    kind = FIELD_KINDS.get(field)
    return value if kind is None else kind(value)
