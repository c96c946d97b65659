"""HTTP/1.1 for the trigger's calls to Google, over the standard library's http.client.

functions-framework has already loaded http.client, ssl and json before the first request,
so this costs the cold start nothing; `requests` (with urllib3, charset_normalizer and idna)
cost the first firing ~57 ms and ~3 MiB.

- Connections are kept alive and reused per (scheme, host, port), shared by the worker's
  threads: one is taken for a request and given back once its answer is read to the end.
  An idle one the server has closed reads as ready (EOF) and is dropped before reuse, as
  urllib3 does.
- TLS uses the default context: certificates and host names verified against the system's CAs.
- `timeout` is (connect, read) seconds: connect bounds the TCP and TLS handshakes, read
  every wait for data.
- A request that gets no complete answer raises an HttpFailure. Its subclasses keep the
  names of the `requests` exceptions the function's log lines have always carried, so
  alerts matching them keep working. A URL that cannot be sent is InvalidUrl.

    HttpFailure
    ├── ConnectTimeout         no connection (TCP or TLS handshake) within the connect timeout
    ├── ReadTimeout            no data within the read timeout
    ├── SSLError               the TLS handshake or a certificate check failed
    ├── ConnectionError        refused, reset, no such host, closed before the status line
    ├── ContentDecodingError   a body in a Content-Encoding not asked for (requests are
    │                          sent with http.client's `Accept-Encoding: identity`)
    └── ChunkedEncodingError   the body broke off before its announced end
"""

from __future__ import annotations

import http.client
import json as json_module
import selectors
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

Timeout = tuple[float, float]  # (connect, read) seconds
_Key = tuple[str, str, int]  # (scheme, host, port)
MAX_IDLE_PER_HOST = 8  # functions-framework's worker serves 8 threads


class InvalidUrl(ValueError):
    """The URL has no http(s) scheme or no host: it was built from a bad setting."""


class HttpFailure(Exception):
    """No complete answer (the tree above); the request may or may not have been acted on."""


class ConnectTimeout(HttpFailure):
    pass


class ReadTimeout(HttpFailure):
    pass


class SSLError(HttpFailure):
    pass


class ConnectionError(HttpFailure):  # requests' name, which log lines and alerts carry
    pass


class ContentDecodingError(HttpFailure):
    pass


class ChunkedEncodingError(HttpFailure):
    pass


_CAUGHT = (OSError, http.client.HTTPException)  # what http.client, socket and ssl raise


class Response:
    """A status and headers; the body read at once (`content`) or streamed (`read1`)."""

    def __init__(self, raw: http.client.HTTPResponse, release: Callable[[bool], None]) -> None:
        self._raw = raw
        self._release: Callable[[bool], None] | None = release  # gives the connection back, or closes it
        self._content: bytes | None = None
        self.status_code = raw.status
        self.headers = raw.headers  # case-insensitive .get

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def content(self) -> bytes:
        if self._content is None:
            try:
                self._content = self._raw.read()
            except _CAUGHT as exc:
                self._finish(reusable=False)
                raise _failure(exc, reading_body=True) from exc
            self._finish(reusable=True)
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def read1(self, size: int) -> bytes:
        """What has arrived, at most `size` bytes, from one read of the socket at most."""
        try:
            return self._raw.read1(size)
        except _CAUGHT as exc:
            self._finish(reusable=False)
            raise _failure(exc, reading_body=True) from exc

    def close(self) -> None:
        self._finish(reusable=self._raw.isclosed())  # a body left unread spoils the connection

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _finish(self, *, reusable: bool) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(reusable and not self._raw.will_close)


class Connections:
    """Keep-alive connections per host, for any number of threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: Timeout,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Response:
        """The answer; with `stream`, its body is left to read1() and close() (or `with`)."""
        key, target = _split(url, params)
        sent = dict(headers or {})
        if json is not None:
            data = json_module.dumps(json, allow_nan=False).encode()
            sent.setdefault("Content-Type", "application/json")
        connection = self._take(key, timeout[0])
        try:
            connection.sock.settimeout(timeout[1])
            connection.request(method, target, body=data, headers=sent)
            raw = connection.getresponse()
        except _CAUGHT as exc:
            connection.close()
            raise _failure(exc, reading_body=False) from exc
        encoding = (raw.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            connection.close()
            raise ContentDecodingError(f"the answer came in Content-Encoding {encoding!r:.40}, which was not asked for")
        response = Response(raw, lambda reusable: self._give_back(key, connection, reusable))
        if not stream:
            response.content  # noqa: B018 - read now, so the connection goes back at once
        return response

    def _take(self, key: _Key, connect_timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                connection = idle.pop()
                if _still_open(connection):
                    return connection
                connection.close()
        scheme, host, port = key
        fresh = (
            http.client.HTTPSConnection(host, port, timeout=connect_timeout, context=_tls_context())
            if scheme == "https"
            else http.client.HTTPConnection(host, port, timeout=connect_timeout)
        )
        try:
            fresh.connect()
        except _CAUGHT as exc:
            fresh.close()
            raise _failure(exc, reading_body=False, connecting=True) from exc
        return fresh

    def _give_back(self, key: _Key, connection: http.client.HTTPConnection, reusable: bool) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if reusable and len(idle) < MAX_IDLE_PER_HOST:
                idle.append(connection)
                return
        connection.close()


_tls_lock = threading.Lock()
_tls: list[ssl.SSLContext] = []


def _tls_context() -> ssl.SSLContext:
    """One default context per process: loading the CA store takes milliseconds."""
    with _tls_lock:
        if not _tls:
            _tls.append(ssl.create_default_context())
        return _tls[0]


def _split(url: str, params: Mapping[str, Any] | None) -> tuple[_Key, str]:
    """((scheme, host, port), path and query) of `url`, `params` appended to its query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl(str(exc)) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidUrl("not an http(s) URL with a host")
    query = "&".join(filter(None, [parts.query, urlencode(params, doseq=True) if params else ""]))
    target = (parts.path or "/") + (f"?{query}" if query else "")
    default_port = 443 if parts.scheme == "https" else 80
    return (parts.scheme, parts.hostname, port or default_port), target


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection has nothing to read; if it has, the server hung up."""
    if connection.sock is None:
        return False
    with selectors.DefaultSelector() as selector:
        selector.register(connection.sock, selectors.EVENT_READ)
        return not selector.select(timeout=0)


def _failure(exc: BaseException, *, reading_body: bool, connecting: bool = False) -> HttpFailure:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ssl.SSLError):  # before OSError: it is one
        return SSLError(detail)
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(detail) if connecting else ReadTimeout(detail)
    if reading_body:  # cut short: a length not reached, a chunk broken off
        return ChunkedEncodingError(detail)
    return ConnectionError(detail)
