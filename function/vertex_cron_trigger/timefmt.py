"""RFC 3339 in and out, at millisecond precision (the precision of job ids)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# fromisoformat alone would also accept dates without a time or an offset.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_rfc3339(text: str) -> datetime:
    """An aware UTC datetime truncated to milliseconds; ValueError when not RFC 3339."""
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp like 2024-05-01T02:00:00Z")
    head, dot, rest = text.partition(".")
    if dot:  # Scheduler may send more digits than Python's parser takes.
        digits = re.match(r"[0-9]+", rest).group()  # type: ignore[union-attr]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z")).astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{text!r} is outside the years 1-9999 in UTC") from exc
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def format_rfc3339(moment: datetime) -> str:
    """`2024-05-01T02:00:00Z`, or with `.123` when the time has milliseconds."""
    moment = moment.astimezone(UTC)
    millis = f".{moment.microsecond // 1000:03d}" if moment.microsecond // 1000 else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + millis + "Z"
