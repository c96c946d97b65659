"""Verification of the OIDC ID token Cloud Scheduler attaches to each request.

google.oauth2.id_token.verify_token re-downloads the certs on every call and never checks
`iss`, so this module keeps the certs for as long as their HTTP caching headers allow and
checks every claim itself. google.auth.jwt.decode does the RS256 signature maths.

Anything an attacker controls is checked for shape before it is used: the token's length,
its header and payload as strict JSON objects (no NaN/Infinity, no nesting deep enough to
exhaust the parser), and the type of every claim read. A malformed token is a 401, never
a 500.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from . import strict_json
from .errors import ConfigError, Forbidden, TriggerError, Unauthenticated

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_SECONDS = 60
# Google ID tokens are about 1 KiB; anything much longer is not one, and is refused unread.
MAX_TOKEN_CHARS = 8 * 1024
# Cloud Run checks the signature itself, then forwards the token with this as its signature.
STRIPPED_SIGNATURE = "SIGNATURE_REMOVED_BY_GOOGLE"
# An unknown `kid` may mean the keys rotated; re-fetching is rate-limited so a stream of
# forged tokens cannot turn into a stream of certs downloads.
_MIN_REFETCH_SECONDS = 30.0
# A failed fetch is remembered this long: while the certs URL is down, the requests that need
# it get the same 503 at once instead of each waiting on (and adding to) another fetch.
FAILURE_SECONDS = 5.0

CertsFetcher = Callable[[], "tuple[Mapping[str, str], float]"]  # (kid -> PEM, max-age seconds)


class CertCache:
    """The signing keys, fetched on first use and again only when their max-age ran out (or,
    rate-limited, for an unknown `kid`). One fetch at a time, made outside the lock: requests
    whose key is cached never wait for it; those that need the fetch wait for that one."""

    def __init__(self, fetch: CertsFetcher, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._certs: Mapping[str, str] = {}
        self._fetched_at = float("-inf")
        self._expires_at = float("-inf")
        self._failure: tuple[TriggerError, float] | None = None  # (what the last fetch raised, until when)
        self._fetching: threading.Event | None = None  # set when the fetch under way ends

    def certs(self, *, kid: str | None = None) -> Mapping[str, str]:
        while True:
            with self._lock:
                now = self._clock()
                stale = now >= self._expires_at
                rotated = kid is not None and kid not in self._certs and now - self._fetched_at >= _MIN_REFETCH_SECONDS
                if not (stale or rotated):
                    return self._certs
                if self._failure is not None and now < self._failure[1]:
                    error = self._failure[0]
                    raise type(error)(error.message, field=error.field)
                under_way = self._fetching
                if under_way is None:
                    self._fetching = done = threading.Event()
                    break
            under_way.wait()  # then look again: the fetch either cached keys or a failure
        try:
            return self._refresh()
        finally:
            with self._lock:
                self._fetching = None
            done.set()

    def _refresh(self) -> Mapping[str, str]:
        try:
            certs, max_age = self._fetch()
        except TriggerError as exc:
            with self._lock:
                self._failure = (exc, self._clock() + FAILURE_SECONDS)
            raise
        with self._lock:
            now = self._clock()
            self._certs, self._fetched_at, self._expires_at, self._failure = certs, now, now + max_age, None
            return certs


def signing_keys(document: Mapping[str, Any], *, url: str) -> dict[str, str]:
    """kid -> PEM (certificate or public key) from either document Google publishes: the v1
    map {kid: PEM x509 certificate} (oauth2/v1/certs) or the v3 JWK Set {"keys": [{kid, kty,
    n, e, ...}]} (oauth2/v3/certs, the `jwks_uri` of Google's OpenID discovery document).
    Anything else is a ConfigError naming VERTEX_CRON_OIDC_CERTS_URL: retrying cannot help."""
    keys = document.get("keys")
    # Keys of another type or use (an EC key, an encryption key) verify no RS256 token: skipped.
    listed = keys if isinstance(keys, list) else []
    signing = [
        key for key in listed if isinstance(key, dict) and key.get("kty") == "RSA" and key.get("use", "sig") == "sig"
    ]
    if signing:
        return dict(_jwk_pem(key, url) for key in signing)
    if document and all(isinstance(pem, str) and _PEM_MARKER in pem for pem in document.values()):
        return dict(document)
    raise ConfigError(
        f"VERTEX_CRON_OIDC_CERTS_URL {url!r:.200} serves neither Google's v1 certs ({{kid: PEM certificate}}, "
        'https://www.googleapis.com/oauth2/v1/certs) nor a JWK Set ({"keys": [...]}, '
        "https://www.googleapis.com/oauth2/v3/certs)"
    )


_PEM_MARKER = "-----BEGIN "


def _jwk_pem(key: Mapping[str, Any], url: str) -> tuple[str, str]:
    """(kid, PEM public key) of one RSA signing key of a JWK Set (RFC 7517/7518: `n` and `e`
    as base64url big-endian integers)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def integer(name: str) -> int:
        text = key.get(name)
        if not isinstance(text, str) or not text:
            raise ValueError(name)
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    try:
        if not isinstance(key.get("kid"), str):
            raise ValueError("kid")
        public = rsa.RSAPublicNumbers(e=integer("e"), n=integer("n")).public_key()
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError(
            f"VERTEX_CRON_OIDC_CERTS_URL {url!r:.200} serves a JWK Set with an RSA key that has no valid kid, n and e"
        ) from exc
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key["kid"], pem.decode("ascii")


class TokenPolicy:
    __slots__ = ("audiences", "allowed_emails", "accept_stripped_signature")

    def __init__(
        self, *, audiences: Collection[str], allowed_emails: Collection[str], accept_stripped_signature: bool
    ) -> None:
        self.audiences = audiences  # compared without scheme and trailing slash
        self.allowed_emails = allowed_emails  # lower-case
        self.accept_stripped_signature = accept_stripped_signature  # only on Cloud Run (K_SERVICE set)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing 'Authorization: Bearer <OIDC ID token>' header")
    return token.strip()


def verify_id_token(token: str, *, certs: CertCache, policy: TokenPolicy, now: float | None = None) -> str:
    """The verified caller's email. 401 for a bad token, 403 for a good one of another identity."""
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated(f"the bearer token is {len(token)} characters; an ID token is at most {MAX_TOKEN_CHARS}")
    segments = token.split(".")
    if len(segments) != 3:
        raise Unauthenticated("the bearer token is not a JWT")
    header = _segment_json(segments[0], "header")
    if header.get("alg") != "RS256":
        raise Unauthenticated(f"token algorithm must be RS256, got {header.get('alg')!r:.40}")
    if not isinstance(header.get("kid"), (str, type(None))):
        raise Unauthenticated("token header kid must be a string")
    # Shape first (every claim read below has its JSON type checked), then the signature,
    # then the claims' values: a forged token of an allowed email is still a 401.
    claims = _claims(_segment_json(segments[1], "payload"))
    if segments[2] == STRIPPED_SIGNATURE:
        if not policy.accept_stripped_signature:
            raise Unauthenticated("token signature was removed, which only Cloud Run may do (K_SERVICE unset)")
    else:
        _verify_signature(token, certs.certs(kid=header.get("kid")))
    return _check_claims(claims, policy, time.time() if now is None else now)


def _verify_signature(token: str, certs: Mapping[str, str]) -> None:
    from google.auth import exceptions, jwt

    try:
        jwt.decode(token, certs=certs, verify=True, clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
    except (exceptions.GoogleAuthError, ValueError, TypeError, RecursionError) as exc:
        raise Unauthenticated(f"token rejected: {str(exc)[:200]}") from exc


class _Claims:
    __slots__ = ("iss", "aud", "exp", "iat", "email", "email_verified")

    def __init__(self, *, iss: str, aud: str, exp: float, iat: float, email: str, email_verified: bool) -> None:
        self.iss, self.aud, self.exp, self.iat = iss, aud, exp, iat
        self.email, self.email_verified = email, email_verified


def _claims(payload: Mapping[str, Any]) -> _Claims:
    """The claims this module reads, each of the JSON type Google issues, else a 401.

    `aud` is one string (Google ID tokens carry exactly one audience). `email_verified` is
    JSON `true`; the string "true" is accepted too, since some Google token paths emit it.
    """

    def text(name: str) -> str:
        value = payload.get(name)
        if not isinstance(value, str):
            raise Unauthenticated(f"token claim {name} must be a string, got {_json_type(value)}")
        return value

    def seconds(name: str) -> float:
        value = payload.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Unauthenticated(f"token claim {name} must be a number of seconds, got {_json_type(value)}")
        return value

    verified = payload.get("email_verified")
    return _Claims(
        iss=text("iss"),
        aud=text("aud"),
        exp=seconds("exp"),
        iat=seconds("iat"),
        email=text("email"),
        email_verified=verified is True or verified == "true",
    )


def _check_claims(claims: _Claims, policy: TokenPolicy, now: float) -> str:
    if claims.iss not in GOOGLE_ISSUERS:
        raise Unauthenticated(f"token issuer {claims.iss!r:.100} is not Google")
    if now > claims.exp + CLOCK_SKEW_SECONDS:
        raise Unauthenticated("token has expired")
    if claims.iat > now + CLOCK_SKEW_SECONDS:
        raise Unauthenticated("token is issued in the future")
    accepted = {normalize_audience(a) for a in policy.audiences}
    if normalize_audience(claims.aud) not in accepted:
        raise Unauthenticated(f"token audience {claims.aud!r:.200} is not this function's URL")
    if not claims.email_verified:
        raise Unauthenticated("token email is not verified")
    if claims.email.lower() not in policy.allowed_emails:
        raise Forbidden(f"caller {claims.email!r:.200} is not an allowed invoker of this function")
    return claims.email


def normalize_audience(url: str) -> str:
    """Cloud Run terminates TLS, so the app sees http:// for an https:// call."""
    _, separator, rest = url.partition("://")
    return (rest if separator else url).rstrip("/").lower()


def _segment_json(segment: str, what: str) -> Mapping[str, Any]:
    try:
        decoded = strict_json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise Unauthenticated(f"token {what} is not base64url JSON") from exc
    except RecursionError as exc:
        raise Unauthenticated(f"token {what} is nested too deeply") from exc
    if not isinstance(decoded, dict):
        raise Unauthenticated(f"token {what} is not a JSON object")
    return decoded


def _json_type(value: Any) -> str:
    return "nothing" if value is None else strict_json.type_name(value)  # a claim left out
