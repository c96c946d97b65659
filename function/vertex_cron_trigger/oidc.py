"""Verification of the OIDC ID token Cloud Scheduler attaches to each request.

google.oauth2.id_token.verify_token re-downloads the certs on every call and never checks
`iss`, so this module keeps the certs for as long as their HTTP caching headers allow and
checks every claim itself. google.auth.jwt.decode does the RS256 signature maths.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Forbidden, Unauthenticated

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_SECONDS = 60
# Cloud Run checks the signature itself, then forwards the token with this as its signature.
STRIPPED_SIGNATURE = "SIGNATURE_REMOVED_BY_GOOGLE"
# An unknown `kid` may mean the keys rotated; re-fetching is rate-limited so a stream of
# forged tokens cannot turn into a stream of certs downloads.
_MIN_REFETCH_SECONDS = 30.0

CertsFetcher = Callable[[], "tuple[Mapping[str, str], float]"]  # (kid -> PEM, max-age seconds)


class CertCache:
    """The signing certs, fetched on first use and again only when their max-age ran out."""

    def __init__(self, fetch: CertsFetcher, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._certs: Mapping[str, str] = {}
        self._fetched_at = float("-inf")
        self._expires_at = float("-inf")

    def certs(self, *, kid: str | None = None) -> Mapping[str, str]:
        with self._lock:
            now = self._clock()
            stale = now >= self._expires_at
            rotated = kid is not None and kid not in self._certs and now - self._fetched_at >= _MIN_REFETCH_SECONDS
            if stale or rotated:
                certs, max_age = self._fetch()
                self._certs, self._fetched_at, self._expires_at = certs, now, now + max_age
            return self._certs


@dataclass(frozen=True)
class TokenPolicy:
    audiences: Collection[str]  # compared without scheme and trailing slash
    allowed_emails: Collection[str]  # lower-case
    accept_stripped_signature: bool  # only on Cloud Run (K_SERVICE set)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing 'Authorization: Bearer <OIDC ID token>' header")
    return token.strip()


def verify_id_token(token: str, *, certs: CertCache, policy: TokenPolicy, now: float | None = None) -> str:
    """The verified caller's email. 401 for a bad token, 403 for a good one of another identity."""
    segments = token.split(".")
    if len(segments) != 3:
        raise Unauthenticated("the bearer token is not a JWT")
    header = _segment_json(segments[0], "header")
    if header.get("alg") != "RS256":
        raise Unauthenticated(f"token algorithm must be RS256, got {header.get('alg')!r:.40}")
    if not isinstance(header.get("kid"), (str, type(None))):
        raise Unauthenticated("token header kid must be a string")
    if segments[2] == STRIPPED_SIGNATURE:
        if not policy.accept_stripped_signature:
            raise Unauthenticated("token signature was removed, which only Cloud Run may do (K_SERVICE unset)")
        claims = _segment_json(segments[1], "payload")
    else:
        claims = _verify_signature(token, certs.certs(kid=header.get("kid")))
    return _check_claims(claims, policy, time.time() if now is None else now)


def _verify_signature(token: str, certs: Mapping[str, str]) -> Mapping[str, Any]:
    from google.auth import exceptions, jwt

    try:
        return jwt.decode(token, certs=certs, verify=True, clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
    except (exceptions.GoogleAuthError, ValueError) as exc:
        raise Unauthenticated(f"token rejected: {exc}") from exc


def _check_claims(claims: Mapping[str, Any], policy: TokenPolicy, now: float) -> str:
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise Unauthenticated(f"token issuer {claims.get('iss')!r} is not Google")
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, (int, float)) or not isinstance(issued, (int, float)):
        raise Unauthenticated("token lacks numeric exp and iat claims")
    if now > expires + CLOCK_SKEW_SECONDS:
        raise Unauthenticated("token has expired")
    if issued > now + CLOCK_SKEW_SECONDS:
        raise Unauthenticated("token is issued in the future")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences or []
    accepted = {normalize_audience(a) for a in policy.audiences}
    if not any(isinstance(a, str) and normalize_audience(a) in accepted for a in audiences):
        raise Unauthenticated(f"token audience {claims.get('aud')!r} is not this function's URL")
    if claims.get("email_verified") is not True:
        raise Unauthenticated("token email is not verified")
    email = claims.get("email")
    if not isinstance(email, str) or email.lower() not in policy.allowed_emails:
        raise Forbidden(f"caller {email!r} is not an allowed invoker of this function")
    return email


def normalize_audience(url: str) -> str:
    """Cloud Run terminates TLS, so the app sees http:// for an https:// call."""
    _, separator, rest = url.partition("://")
    return (rest if separator else url).rstrip("/").lower()


def _segment_json(segment: str, what: str) -> Mapping[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise Unauthenticated(f"token {what} is not base64url JSON") from exc
    if not isinstance(decoded, dict):
        raise Unauthenticated(f"token {what} is not a JSON object")
    return decoded
