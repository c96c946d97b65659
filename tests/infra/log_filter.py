"""The part of the Cloud Logging query language infra/alerts.tf's filters use, to check that
the entries vertex-cron and Cloud Scheduler write match them: comparisons joined by AND;
`=` (equal), `=~` (regular expression) and `>=` (severity order); dotted field paths.
Source: cloud.google.com/logging/docs/view/logging-query-language."""

from __future__ import annotations

import re
from typing import Any

SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]
_COMPARISON = re.compile(r'^\s*([\w.@]+)\s*(=~|>=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\w+))\s*$')


def matches(log_filter: str, entry: dict[str, Any]) -> bool:
    return all(_holds(clause, entry) for clause in log_filter.split(" AND "))


def _holds(clause: str, entry: dict[str, Any]) -> bool:
    found = _COMPARISON.match(clause)
    assert found, f"not a comparison this checker knows: {clause!r}"
    path, op, quoted, bare = found.groups()
    wanted = quoted.replace('\\"', '"') if quoted is not None else bare
    value: Any = entry
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return False
    if op == "=~":
        return re.search(wanted, str(value)) is not None
    if op == ">=":
        return SEVERITIES.index(str(value)) >= SEVERITIES.index(wanted)
    return str(value) == wanted
