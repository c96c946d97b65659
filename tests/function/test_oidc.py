"""Token checks with a key generated here; the certs fetcher is a counting function."""

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from vertex_cron_trigger.errors import ConfigError, Forbidden, Unauthenticated, UpstreamUnavailable
from vertex_cron_trigger.oidc import (
    FAILURE_SECONDS,
    CertCache,
    TokenPolicy,
    bearer_token,
    signing_keys,
    verify_id_token,
)

AUDIENCE = "https://trigger.example.run.app"
INVOKER = "scheduler@p.iam.gserviceaccount.com"
URL = "https://www.googleapis.com/oauth2/v3/certs"
POLICY = TokenPolicy(audiences=[AUDIENCE], allowed_emails={INVOKER}, accept_stripped_signature=False)


def _key_and_cert():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem_key, cert.public_bytes(serialization.Encoding.PEM).decode()


PRIVATE_KEY, CERT = _key_and_cert()
OTHER_KEY, _ = _key_and_cert()


def claims(**overrides):
    now = int(time.time())
    return {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": INVOKER,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
        "sub": "1",
        **overrides,
    }


def mint(private_key=PRIVATE_KEY, kid="k1", **overrides):
    return jwt.encode(crypt.RSASigner.from_string(private_key, kid), claims(**overrides)).decode()


class Fetcher:
    def __init__(self, max_age=3600.0):
        self.calls, self.max_age = 0, max_age

    def __call__(self):
        self.calls += 1
        return {"k1": CERT}, self.max_age


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def verify(token, policy=POLICY, fetcher=None):
    return verify_id_token(token, certs=CertCache(fetcher or Fetcher()), policy=policy)


def test_a_good_token_yields_the_caller():
    assert verify(mint()) == INVOKER


def test_audience_ignores_scheme_and_trailing_slash():
    assert verify(mint(aud="http://trigger.example.run.app/")) == INVOKER


def test_certs_are_fetched_once_while_fresh_and_again_after_max_age():
    clock = [0.0]
    fetcher = Fetcher(max_age=100)
    cache = CertCache(fetcher, clock=lambda: clock[0])
    for _ in range(5):
        verify_id_token(mint(), certs=cache, policy=POLICY)
    assert fetcher.calls == 1
    clock[0] = 101.0
    verify_id_token(mint(), certs=cache, policy=POLICY)
    assert fetcher.calls == 2


def test_unknown_kid_refetches_at_most_once_per_interval():
    clock = [1000.0]
    fetcher = Fetcher()
    cache = CertCache(fetcher, clock=lambda: clock[0])
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            verify_id_token(mint(kid="rotated"), certs=cache, policy=POLICY)
    assert fetcher.calls == 1


def test_a_fetch_under_way_stalls_no_request_whose_key_is_cached():
    """One token with an unknown kid starts a (slow) fetch; a token whose key is cached is
    verified meanwhile, and a second unknown kid waits for that fetch instead of starting one."""
    release, fetching = threading.Event(), threading.Event()
    clock = [0.0]
    fetcher = Fetcher()
    cache = CertCache(fetcher, clock=lambda: clock[0])
    verify_id_token(mint(), certs=cache, policy=POLICY)  # keys cached, fresh for an hour
    clock[0] = 100.0  # past the unknown-kid rate limit

    def slow():
        fetching.set()
        release.wait(timeout=60)
        return {"k1": CERT}, 3600.0

    cache._fetch = slow  # the next fetch blocks until released
    outcomes: list[str] = []

    def unknown_kid():
        with pytest.raises(Unauthenticated):
            verify_id_token(mint(kid="rotated"), certs=cache, policy=POLICY)
        outcomes.append("unknown kid refused after the fetch")

    first = threading.Thread(target=unknown_kid)
    first.start()
    fetching.wait(timeout=60)
    second = threading.Thread(target=unknown_kid)
    second.start()
    assert verify_id_token(mint(), certs=cache, policy=POLICY) == INVOKER
    outcomes.append("cached key verified")
    release.set()
    first.join(timeout=60)
    second.join(timeout=60)

    assert outcomes[0] == "cached key verified" and len(outcomes) == 3
    assert fetcher.calls == 1  # the blocked fetch was the only other one


class FailingFetcher:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        raise UpstreamUnavailable("fetching OIDC certs: HTTP 503: down")


def test_while_the_certs_url_fails_forged_tokens_trigger_one_fetch_per_failure_window():
    clock = [0.0]
    fetcher = FailingFetcher()
    cache = CertCache(fetcher, clock=lambda: clock[0])
    for kid in ("a", "b", "c", "d"):
        with pytest.raises(UpstreamUnavailable, match="down"):  # a 503: Scheduler retries
            verify_id_token(mint(kid=kid), certs=cache, policy=POLICY)
    assert fetcher.calls == 1
    clock[0] = FAILURE_SECONDS
    cache._fetch = Fetcher()
    assert verify_id_token(mint(), certs=cache, policy=POLICY) == INVOKER  # recovered after the window


def _jwk(private_pem: str, kid: str) -> dict:
    numbers = serialization.load_pem_private_key(private_pem.encode(), None).public_key().public_numbers()

    def b64int(value: int) -> str:
        return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64int(numbers.n), "e": b64int(numbers.e)}


def test_both_google_certs_formats_verify_the_same_token():
    v1 = signing_keys({"k1": CERT}, url=URL)
    elliptic = {"kty": "EC", "use": "sig", "kid": "e1", "crv": "P-256", "x": "AA", "y": "AA"}
    v3 = signing_keys({"keys": [elliptic, _jwk(OTHER_KEY, "k0"), _jwk(PRIVATE_KEY, "k1")]}, url=URL)
    assert sorted(v3) == ["k0", "k1"]  # a key of another type is skipped, not fatal
    for keys in (v1, v3):
        cache = CertCache(lambda keys=keys: (keys, 3600.0))
        assert verify_id_token(mint(), certs=cache, policy=POLICY) == INVOKER
        with pytest.raises(Unauthenticated):  # the wrong key under the right kid
            verify_id_token(mint(private_key=OTHER_KEY), certs=cache, policy=POLICY)


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"keys": []},
        {"keys": [{"kty": "EC", "kid": "k", "x": "AA", "y": "AA"}]},
        {"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB"}]},
        {"keys": [{"kty": "RSA", "kid": "k", "n": "!!", "e": "AQAB"}]},
        {"keys": ["k"]},
        {"k1": "not a certificate"},
        {"k1": 1},
        {"issuer": "https://accounts.google.com", "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs"},
    ],
)
def test_a_certs_document_of_neither_format_is_a_config_error_naming_the_variable(document):
    with pytest.raises(ConfigError) as caught:
        signing_keys(document, url=URL)
    assert "VERTEX_CRON_OIDC_CERTS_URL" in caught.value.message and caught.value.status == 500


@pytest.mark.parametrize(
    "token",
    [
        mint(private_key=OTHER_KEY),  # forged: right kid, wrong key
        mint(iss="https://evil.example"),
        mint(aud="https://other.example"),
        mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        mint(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),
        mint(email_verified=False),
        "not-a-jwt",
    ],
)
def test_invalid_tokens_are_unauthenticated(token):
    with pytest.raises(Unauthenticated):
        verify(token)


def test_alg_none_and_hs256_are_refused_before_any_key_lookup():
    fetcher = Fetcher()
    for alg in ("none", "HS256"):
        token = f"{b64({'alg': alg, 'kid': 'k1'})}.{b64(claims())}.c2ln"
        with pytest.raises(Unauthenticated, match="RS256"):
            verify(token, fetcher=fetcher)
    assert fetcher.calls == 0


def test_another_identity_is_forbidden():
    with pytest.raises(Forbidden):
        verify(mint(email="intruder@p.iam.gserviceaccount.com"))


def test_stripped_signature_only_on_cloud_run_and_still_claim_checked():
    header, payload, _ = mint().split(".")
    stripped = f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE"
    with pytest.raises(Unauthenticated, match="K_SERVICE"):
        verify(stripped)
    on_run = TokenPolicy(audiences=[AUDIENCE], allowed_emails={INVOKER}, accept_stripped_signature=True)
    assert verify(stripped, policy=on_run) == INVOKER
    header, payload, _ = mint(aud="https://other.example").split(".")
    with pytest.raises(Unauthenticated):
        verify(f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE", policy=on_run)


@pytest.mark.parametrize("value", [None, "", "Basic abc", "Bearer "])
def test_missing_bearer_is_unauthenticated(value):
    with pytest.raises(Unauthenticated):
        bearer_token(value)


def _unsigned(header: dict | str, payload: dict | str, signature: str = "c2ln") -> str:
    def encode(part: dict | str) -> str:
        text = part if isinstance(part, str) else json.dumps(part)
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    return f"{encode(header)}.{encode(payload)}.{signature}"


DEEP = "[" * 3000 + "]" * 3000
HEADER = {"alg": "RS256", "kid": "k1", "typ": "JWT"}


@pytest.mark.parametrize(
    "token",
    [
        _unsigned('{"alg": "RS256", "x": ' + "[" * 1200 + "]" * 1200 + "}", claims()),  # RecursionError in json
        _unsigned(HEADER, '{"iss": ' + "[" * 1200 + "]" * 1200 + "}"),
        _unsigned('{"alg": "RS256", "n": NaN}', claims()),
        _unsigned(HEADER, json.dumps(claims()).replace('"exp": ', '"exp": Infinity, "x": ')),
        _unsigned(HEADER, "[1, 2]"),
        "a" * 9000,
        "é.é.é",
    ],
    ids=["deep-header", "deep-payload", "nan-header", "infinite-exp", "payload-array", "over-8kib", "non-ascii"],
)
def test_malformed_tokens_are_401_never_500(token):
    with pytest.raises(Unauthenticated):
        verify(token)


def test_a_3000_deep_header_is_refused_by_length_or_depth_never_a_crash():
    with pytest.raises(Unauthenticated):
        verify(_unsigned('{"alg": "RS256", "x": ' + DEEP + "}", claims()))


def test_the_token_length_is_capped_before_anything_is_decoded():
    fetcher = Fetcher()
    padded = mint(pad="x" * 9000)
    with pytest.raises(Unauthenticated, match="at most 8192"):
        verify(padded, fetcher=fetcher)
    assert fetcher.calls == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": ["https://accounts.google.com"]},
        {"iss": None},
        {"aud": 5},
        {"aud": [AUDIENCE]},
        {"aud": {AUDIENCE: 1}},
        {"exp": str(int(time.time()) + 3600)},
        {"iat": str(int(time.time()))},
        {"exp": True},
        {"email": ["scheduler@p.iam.gserviceaccount.com"]},
        {"email": 5},
        {"email_verified": "True"},
        {"email_verified": "yes"},
        {"email_verified": 1},
        {"email_verified": None},
    ],
    # Without the value: a time in it would differ between xdist workers' collections.
    ids=lambda overrides: "-".join(
        f"{k}={type(v).__name__}" + (f":{v!r:.12}" if k not in ("exp", "iat") else "") for k, v in overrides.items()
    ),
)
def test_claims_of_the_wrong_type_are_401_signed_or_stripped(overrides):
    with pytest.raises(Unauthenticated):
        verify(mint(**overrides))
    header, payload, _ = mint(**overrides).split(".")
    on_run = TokenPolicy(audiences=[AUDIENCE], allowed_emails={INVOKER}, accept_stripped_signature=True)
    with pytest.raises(Unauthenticated):
        verify(f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE", policy=on_run)


def test_email_verified_is_json_true_or_the_exact_string_true():
    assert verify(mint(email_verified=True)) == INVOKER
    assert verify(mint(email_verified="true")) == INVOKER


def test_a_forged_token_of_an_allowed_email_with_bad_claim_types_is_still_401():
    with pytest.raises(Unauthenticated):
        verify(mint(private_key=OTHER_KEY, exp="tomorrow"))
