"""OAuth access tokens for the calls to Google: application default credentials, found
the way google.auth.default() finds them, without `requests`.

google-auth's Compute Engine credentials import `requests` (compute_engine/_metadata.py,
for mTLS to the metadata server) and google.auth.default() reaches them through
google.auth.transport.requests; google.auth.credentials alone imports asyncio. On Cloud Run
the identity is the metadata server's, so the first firing pays for none of that:
- GOOGLE_APPLICATION_CREDENTIALS set, or gcloud's application-default file present (a
  laptop, the Luigi task): google.auth.default(), its credentials refreshed over
  transport.py through GoogleAuthRequest (a google.auth.transport.Request);
- otherwise the metadata server (Cloud Run, GCE): one GET of the default service account's
  token, with the `Metadata-Flavor: Google` header google-auth sends, at GCE_METADATA_HOST
  (else GCE_METADATA_ROOT, else metadata.google.internal), as google-auth reads them
  (google/auth/compute_engine/_metadata.py). google.auth.default() would first ping the
  server and read the project id: the token alone is what the calls need.
Either way a token is reused until it is within google-auth's refresh threshold of expiry.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from . import strict_json
from .errors import ConfigError, UpstreamUnavailable
from .transport import Connections, HttpFailure, InvalidUrl

DEFAULT_METADATA_HOST = "metadata.google.internal"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105 - a path, not a secret
METADATA_TIMEOUT = (3.0, 10.0)  # (connect, read): a local server on Cloud Run
# google.auth.credentials' REFRESH_THRESHOLD (3 min 45 s): a token this close to expiry is
# refreshed first, so it cannot expire on the way to Google.
REFRESH_THRESHOLD_SECONDS = 225.0
GOOGLE_AUTH_TIMEOUT = 120.0  # google.auth.transport.requests' default, for refreshes that name none
_REFRESH_FAILED = "could not refresh the application default credentials"


class AccessTokens(Protocol):
    def authorization(self) -> str:
        """The Authorization header's value, refreshed first when close to expiry."""
        ...

    def invalidate(self) -> None:
        """Forget the token (Google answered 401): the next call fetches a new one."""
        ...


def application_default(connections: Connections, scopes: Sequence[str]) -> AccessTokens:
    """The tokens of whatever google.auth.default() would find (see the module docstring)."""
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or _gcloud_credentials_exist():
        return GoogleAuthTokens(connections, scopes)
    return MetadataServerTokens(connections, scopes, host=metadata_host(os.environ))


def metadata_host(env: Mapping[str, str]) -> str:
    """host[:port] of the metadata server, read as google-auth reads it."""
    return env.get("GCE_METADATA_HOST") or env.get("GCE_METADATA_ROOT") or DEFAULT_METADATA_HOST


class MetadataServerTokens:
    """The default service account's tokens from the metadata server; one fetch at a time."""

    def __init__(
        self, connections: Connections, scopes: Sequence[str], *, host: str, clock: Any = time.monotonic
    ) -> None:
        self._connections = connections
        self._url = f"http://{host}{TOKEN_PATH}"
        self._scopes = ",".join(scopes)
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._refresh_at = float("-inf")

    def authorization(self) -> str:
        with self._lock:
            if self._clock() >= self._refresh_at:
                self._fetch()
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        with self._lock:
            self._refresh_at = float("-inf")

    def _fetch(self) -> None:
        where = f"the metadata server at {self._url}"
        try:
            response = self._connections.request(
                "GET",
                self._url,
                params={"scopes": self._scopes},
                headers={"Metadata-Flavor": "Google"},
                timeout=METADATA_TIMEOUT,
            )
        except InvalidUrl as exc:
            raise ConfigError(f"GCE_METADATA_HOST gives an unusable URL {self._url!r:.200}") from exc
        except HttpFailure as exc:
            raise UpstreamUnavailable(
                f"{_REFRESH_FAILED}: {where} did not answer ({type(exc).__name__}); outside Google Cloud, set "
                "GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`"
            ) from exc
        if response.status_code != 200:
            raise UpstreamUnavailable(f"{_REFRESH_FAILED}: {where} answered HTTP {response.status_code}")
        try:
            body = strict_json.loads(response.content)
            token, expires_in = body["access_token"], body["expires_in"]
        except (ValueError, KeyError, TypeError, RecursionError, HttpFailure) as exc:
            raise UpstreamUnavailable(f"{_REFRESH_FAILED}: {where} answered without a token") from exc
        if not isinstance(token, str) or isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
            raise UpstreamUnavailable(f"{_REFRESH_FAILED}: {where} answered without a token")
        self._token = token
        self._refresh_at = self._clock() + expires_in - REFRESH_THRESHOLD_SECONDS


class GoogleAuthTokens:
    """google.auth.default()'s credentials (a key file, gcloud's user credentials, workload
    identity federation), refreshed by google-auth over GoogleAuthRequest."""

    def __init__(self, connections: Connections, scopes: Sequence[str]) -> None:
        import google.auth
        from google.auth import exceptions

        self._request = google_auth_request(connections)
        try:
            self._credentials, _ = google.auth.default(scopes=list(scopes), request=self._request)
        except exceptions.DefaultCredentialsError as exc:
            raise ConfigError(f"no application default credentials: {exc}") from exc

    def authorization(self) -> str:
        from google.auth import exceptions

        headers: dict[str, str] = {}
        try:
            self._credentials.before_request(self._request, "POST", "", headers)
        except (exceptions.RefreshError, exceptions.TransportError) as exc:
            raise UpstreamUnavailable(f"{_REFRESH_FAILED}: {exc}") from exc
        return headers["authorization"]

    def invalidate(self) -> None:
        self._credentials.token = None  # not valid: before_request refreshes it


def google_auth_request(connections: Connections) -> Any:
    """A google.auth.transport.Request over `connections`, for google-auth's token refreshes."""
    from google.auth import exceptions, transport

    class _Response(transport.Response):
        def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
            self._status, self._headers, self._data = status, headers, data

        @property
        def status(self) -> int:
            return self._status

        @property
        def headers(self) -> Mapping[str, str]:
            return self._headers

        @property
        def data(self) -> bytes:
            return self._data

    class GoogleAuthRequest(transport.Request):
        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: bytes | None = None,
            headers: Mapping[str, str] | None = None,
            timeout: float | None = None,
            **kwargs: Any,
        ) -> transport.Response:
            seconds = timeout or GOOGLE_AUTH_TIMEOUT
            try:
                response = connections.request(method, url, data=body, headers=headers, timeout=(seconds, seconds))
                return _Response(response.status_code, dict(response.headers), response.content)
            except (HttpFailure, InvalidUrl) as exc:
                raise exceptions.TransportError(f"{method} {url.split('?')[0]} failed ({type(exc).__name__})") from exc

    return GoogleAuthRequest()


def _gcloud_credentials_exist() -> bool:
    """Whether gcloud's application-default file exists where google-auth looks for it
    (google/auth/_cloud_sdk.py: CLOUDSDK_CONFIG, else ~/.config/gcloud, on Windows
    %APPDATA%\\gcloud). Read here, not through google.auth, which the metadata path never loads."""
    config = os.environ.get("CLOUDSDK_CONFIG")
    if config is None:
        if os.name == "nt":
            config = os.path.join(os.environ.get("APPDATA") or os.environ.get("SYSTEMDRIVE", "C:") + "\\", "gcloud")
        else:
            config = os.path.join(os.path.expanduser("~"), ".config", "gcloud")
    return os.path.isfile(os.path.join(config, "application_default_credentials.json"))
