"""What an emulated API declares (its `Route`s) and what its handlers take and give back."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    headers: dict[str, str]
    base_url: str


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(payload, indent=None).encode(),
        {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
    )


class Route(NamedTuple):
    """One REST method: `handler(request, **path groups)` answers a JSON-able value or a Response."""

    method: str
    pattern: str  # a regular expression matched against the whole path; its named groups are arguments
    handler: Callable[..., Any]
    query: tuple[str, ...] = ()  # the query parameters it takes besides Google's system ones
    body_type: str | None = None  # the message type its body must parse as (common.message_types)
    # False for paths no Discovery document describes (Google's OAuth2 keys, a signed
    # Cloud Storage URL, a KFP repository's own host): the server does not check them.
    described: bool = True
