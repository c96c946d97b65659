"""Placeholders for the run's logical time in string parameter values.

    {{schedule_time}}            RFC 3339 UTC, e.g. 2024-05-01T02:00:00Z
    {{schedule_time:%Y-%m-%d}}   strftime, in the body's time_zone when given (else UTC)
    {{schedule}}                 the schedule's name

Anything else between `{{` and `}}`, or an unclosed `{{`, is a 400: a typo in a
placeholder would otherwise reach the pipeline as literal text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import BadRequest
from .timefmt import format_rfc3339

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# The codes C's strftime has everywhere (Python passes the format to the platform's, which
# would copy an unknown `%Q` through as text), plus ISO 8601 week dates. A format must have
# one, or the "placeholder" renders as the same literal text at every firing.
_PORTABLE_CODES = "aAbBcdHIjmMpSUwWxXyYzZGuV%"
_FORMAT_CODE = re.compile(r"%.?", re.DOTALL)


def render_parameters(
    values: Mapping[str, Any], *, schedule: str, logical_time: datetime, time_zone: str | None
) -> dict[str, Any]:
    """Every string value rendered (errors name `parameter_values.NAME`); others as they are."""
    return {
        name: render(
            value, schedule=schedule, logical_time=logical_time, time_zone=time_zone, field=f"parameter_values.{name}"
        )
        if isinstance(value, str)
        else value
        for name, value in values.items()
    }


def has_placeholders(value: Any) -> bool:
    """True for a string that only its firing's logical time can complete (or a bad one)."""
    return isinstance(value, str) and "{{" in value


def render(
    value: str, *, schedule: str, logical_time: datetime, time_zone: str | None, field: str = "parameter_values"
) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, colon, fmt = match.group(1).strip().partition(":")
        if name == "schedule" and not colon:
            return schedule
        if name == "schedule_time" and not colon:
            return format_rfc3339(logical_time)
        if name == "schedule_time" and fmt.strip():
            return _strftime(logical_time, time_zone, fmt, field)
        raise BadRequest(
            f"{field}: unknown placeholder {match.group(0)!r}; use {{{{schedule_time}}}}, "
            "{{schedule_time:%Y-%m-%d}} or {{schedule}}",
            field=field,
        )

    if "{{" in _PLACEHOLDER.sub("", value):
        raise BadRequest(f"{field}: unclosed '{{{{' in {value!r:.80}", field=field)
    return _PLACEHOLDER.sub(substitute, value)


def _strftime(moment: datetime, time_zone: str | None, fmt: str, field: str) -> str:
    codes = _FORMAT_CODE.findall(fmt)
    unknown = next((code for code in codes if len(code) < 2 or code[1] not in _PORTABLE_CODES), None)
    if unknown or not set(codes) - {"%%"}:
        why = f"{unknown!r} is not a strftime code" if unknown else "it has no strftime code"
        raise BadRequest(
            f"{field}: cannot render {{{{schedule_time:{fmt!r:.40}}}}}: {why} (the codes are "
            f"{' '.join('%' + code for code in _PORTABLE_CODES)})",
            field=field,
        )
    try:
        return _local(moment, time_zone).strftime(fmt)
    except (ValueError, OverflowError) as exc:  # unencodable format; a zone past year 9999
        raise BadRequest(f"{field}: cannot render {{{{schedule_time:{fmt!r:.40}}}}} ({exc})", field=field) from exc


def _local(moment: datetime, time_zone: str | None) -> datetime:
    if not time_zone:
        return moment.astimezone(UTC)
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(time_zone))
