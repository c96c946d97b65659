"""A local OIDC issuer that plays accounts.google.com for ID tokens.

The RSA key lives only in memory (never written to disk). `certs_document()` is Google's
v1 certs format ({kid: PEM x509 certificate}, what https://www.googleapis.com/oauth2/v1/certs
serves) and `jwks()` its v3 format, a JWK Set (what https://www.googleapis.com/oauth2/v3/certs,
the `jwks_uri` of Google's OpenID discovery document, serves); the control-plane emulator
serves them at /oauth2/v1/certs and /oauth2/v3/certs when its `oidc_issuer` is set. `mint()` makes the ID tokens Cloud Scheduler would send, and is flexible enough to
forge bad ones for tests:

    issuer.mint(audience=url, email=sa)                               # a good token
    issuer.mint(audience=url, email=sa, lifetime_seconds=-60)         # expired
    issuer.mint(audience=url, email=sa, issued_at=time.time() + 3600) # iat in the future
    issuer.mint(audience=url, email=sa, issuer="https://evil")        # wrong iss
    issuer.mint(audience=url, email=sa, signing_key=other.private_key)# wrong key, same kid
    issuer.mint(audience=url, email=sa, algorithm="none")             # unsigned
    issuer.mint(audience=url, email=sa, algorithm="HS256")            # HMAC keyed with the
                                                                      # public cert PEM
    issuer.mint(..., extra_claims={"email": None})                    # None drops a claim
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

GOOGLE_ISSUER = "https://accounts.google.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _new_key_and_cert(common_name: str) -> tuple[Any, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=14))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


class LocalIssuer:
    """In-memory RSA key + self-signed certificate; mints Google-style ID tokens."""

    def __init__(self, *, common_name: str = "vertex-cron-local-issuer") -> None:
        self.private_key, self.certificate_pem = _new_key_and_cert(common_name)  # an RSAPrivateKey, PEM bytes
        self.kid = hashlib.sha1(self.certificate_pem, usedforsecurity=False).hexdigest()  # a key id, as Google's are

    # -- keys ----------------------------------------------------------------------------

    def certs_document(self) -> dict[str, str]:
        """Google's v1 format: {kid: PEM certificate}."""
        return {self.kid: self.certificate_pem.decode("ascii")}

    def jwks(self) -> dict[str, Any]:
        """The same key as a JWK set (Google's v3 format)."""
        numbers = self.private_key.public_key().public_numbers()
        key = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }
        return {"keys": [key]}

    # -- tokens --------------------------------------------------------------------------

    def mint(
        self,
        *,
        audience: str,
        email: str,
        email_verified: bool = True,
        issuer: str = GOOGLE_ISSUER,
        lifetime_seconds: int = 3600,
        issued_at: float | None = None,
        algorithm: str = "RS256",
        signing_key: Any = None,
        extra_claims: dict[str, Any] | None = None,
        kid: str | None = None,
    ) -> str:
        """A compact JWS ID token.

        algorithm: "RS256" (signed with `signing_key` or this issuer's key), "none"
        (empty signature), or "HS256" (HMAC with `signing_key` bytes, by default this
        issuer's public certificate PEM — the classic algorithm-confusion forgery).
        `kid` defaults to this issuer's kid even when another key signs.
        """
        header: dict[str, Any] = {"alg": algorithm, "typ": "JWT"}
        if algorithm != "none":
            header["kid"] = kid if kid is not None else self.kid
        elif kid is not None:
            header["kid"] = kid
        iat = int(time.time() if issued_at is None else issued_at)
        subject = str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16))
        payload: dict[str, Any] = {
            "aud": audience,
            "azp": subject,
            "email": email,
            "email_verified": email_verified,
            "exp": iat + int(lifetime_seconds),
            "iat": iat,
            "iss": issuer,
            "sub": subject,
        }
        for key, value in (extra_claims or {}).items():
            if value is None:
                payload.pop(key, None)
            else:
                payload[key] = value
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(payload, separators=(",", ":")).encode())
        ).encode("ascii")
        if algorithm == "none":
            signature = b""
        elif algorithm == "RS256":
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            key = signing_key if signing_key is not None else self.private_key
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == "HS256":
            secret = signing_key if signing_key is not None else self.certificate_pem
            if isinstance(secret, str):
                secret = secret.encode()
            signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
        else:
            raise ValueError(f"unsupported algorithm {algorithm!r} (RS256, HS256 or none)")
        return signing_input.decode("ascii") + "." + _b64url(signature)

    @staticmethod
    def new_private_key() -> Any:
        """A fresh RSA key, e.g. to forge a token signed by the wrong key."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
