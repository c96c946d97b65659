"""Forged and wrong ID tokens: refused (401, or 403 for a valid token of another identity)
before the body is read, with no PipelineJob and no call to Vertex AI."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from reliability_stack import INVOKER, body_for, fire, job_names, scheduler_headers

INTRUDER = "intruder@rel-project.iam.gserviceaccount.com"


def _segment(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _with_header(token: str, header) -> str:
    return ".".join([_segment(header), *token.split(".")[1:]])


def _raw_segment(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _with_raw_header(token: str, header_json: str) -> str:
    return ".".join([_raw_segment(header_json), *token.split(".")[1:]])


def _with_raw_payload(token: str, payload_json: str) -> str:
    header, _, signature = token.split(".")
    return ".".join([header, _raw_segment(payload_json), signature])


def _mint(issuer, url, **claims) -> str:
    """A token of the allowed invoker, signed with the right key, with `claims` replaced
    (a value of None drops the claim)."""
    return issuer.mint(audience=url, email=INVOKER, extra_claims=claims)


# Nested 3000 deep: json.loads raises RecursionError (not a ValueError) long before it finds
# anything else wrong. Left unclosed so the token stays under gunicorn's 8190-byte header limit.
DEEP = "[" * 3000


def _with_claims(token: str, **claims) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([header, _segment({**decoded, **claims}), signature])


# (id, token(issuer, url) or None for no Authorization header, status, words of the message)
FORGERIES = [
    ("no-token", lambda issuer, url: None, 401, "missing"),
    ("not-a-jwt", lambda issuer, url: "not-a-jwt", 401, "not a JWT"),
    (
        "wrong-audience",
        lambda issuer, url: issuer.mint(audience="https://elsewhere.run.app", email=INVOKER),
        401,
        "audience",
    ),
    (
        "wrong-issuer",
        lambda issuer, url: issuer.mint(audience=url, email=INVOKER, issuer="https://evil.example"),
        401,
        "issuer",
    ),
    (
        "expired",
        lambda issuer, url: issuer.mint(
            audience=url, email=INVOKER, issued_at=time.time() - 7200, lifetime_seconds=3600
        ),
        401,
        "expired",
    ),
    (
        "issued-in-the-future",
        lambda issuer, url: issuer.mint(audience=url, email=INVOKER, issued_at=time.time() + 3600),
        401,
        "Token used too early",
    ),
    (
        "wrong-key",
        lambda issuer, url: issuer.mint(audience=url, email=INVOKER, signing_key=issuer.new_private_key()),
        401,
        "signature",
    ),
    ("alg-none", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, algorithm="none"), 401, "RS256"),
    (
        "hs256-public-cert-as-secret",
        lambda issuer, url: issuer.mint(audience=url, email=INVOKER, algorithm="HS256"),
        401,
        "RS256",
    ),
    ("email-not-allowed", lambda issuer, url: issuer.mint(audience=url, email=INTRUDER), 403, "not an allowed invoker"),
    (
        "email-unverified",
        lambda issuer, url: issuer.mint(audience=url, email=INVOKER, email_verified=False),
        401,
        "not verified",
    ),
    (
        "email-swapped-in-payload",
        lambda issuer, url: _with_claims(issuer.mint(audience=url, email=INTRUDER), email=INVOKER),
        401,
        "signature",
    ),
    (
        "signature-stripped-off-cloud-run",
        lambda issuer, url: issuer.mint(audience=url, email=INVOKER).rsplit(".", 1)[0] + ".SIGNATURE_REMOVED_BY_GOOGLE",
        401,
        "only Cloud Run",
    ),
    (
        "unknown-kid",
        lambda issuer, url: issuer.mint(audience=url, email=INVOKER, kid="rotated-away"),
        401,
        "rotated-away",
    ),
    (
        "kid-not-a-string",
        lambda issuer, url: _with_header(issuer.mint(audience=url, email=INVOKER), {"alg": "RS256", "kid": ["a"]}),
        401,
        "kid must be a string",
    ),  # regression: was a 500
    ("lowercase-scheme-without-token", lambda issuer, url: "", 401, "missing"),
    # Claims of the wrong JSON type, in a correctly signed token (some were 500s): malformed
    # tokens (401), not identities to weigh (403).
    ("iss-a-list", lambda issuer, url: _mint(issuer, url, iss=["https://accounts.google.com"]), 401, "claim iss"),
    ("aud-a-number", lambda issuer, url: _mint(issuer, url, aud=12345), 401, "claim aud"),
    ("aud-a-list", lambda issuer, url: _mint(issuer, url, aud=[url]), 401, "claim aud"),  # Google sends one
    ("exp-a-string", lambda issuer, url: _mint(issuer, url, exp=str(int(time.time()) + 3600)), 401, "exp"),
    ("iat-missing", lambda issuer, url: _mint(issuer, url, iat=None), 401, "iat"),
    ("email-verified-missing", lambda issuer, url: _mint(issuer, url, email_verified=None), 401, "not verified"),
    (
        "email-verified-the-string-false",
        lambda issuer, url: _mint(issuer, url, email_verified="false"),
        401,
        "not verified",
    ),
    ("email-verified-a-number", lambda issuer, url: _mint(issuer, url, email_verified=1), 401, "not verified"),
    ("email-missing", lambda issuer, url: _mint(issuer, url, email=None), 401, "claim email"),
    ("email-a-list", lambda issuer, url: _mint(issuer, url, email=[INVOKER]), 401, "claim email"),
    (
        "email-unlisted-lookalike",
        lambda issuer, url: _mint(issuer, url, email=INVOKER + ".evil.example"),
        403,
        "not an allowed invoker",
    ),
    # Malformed shapes (regressions: 500s).
    (
        "header-nested-3000-deep",
        lambda issuer, url: _with_raw_header(
            issuer.mint(audience=url, email=INVOKER), '{"alg": "RS256", "kid": ' + DEEP
        ),
        401,
        "header",
    ),
    (
        "payload-nested-3000-deep",
        lambda issuer, url: _with_raw_payload(issuer.mint(audience=url, email=INVOKER), '{"iss": ' + DEEP),
        401,
        "token",
    ),
    (
        "header-not-an-object",
        lambda issuer, url: _with_header(issuer.mint(audience=url, email=INVOKER), ["RS256"]),
        401,
        "header",
    ),
]


@pytest.mark.parametrize(
    ("forge", "status", "words"), [case[1:] for case in FORGERIES], ids=[case[0] for case in FORGERIES]
)
def test_a_forged_token_is_refused_and_creates_nothing(guarded_stack, oidc_issuer, forge, status, words):
    stack = guarded_stack
    stack.emulator.clear_calls()
    jobs_before = job_names(stack.emulator)  # names: a job created earlier may change state meanwhile
    lines_before = len(stack.function.log_lines())
    token = forge(oidc_issuer, stack.function.url)
    headers = scheduler_headers(token=token)
    if token == "":
        headers["Authorization"] = "bearer "

    response = requests.post(stack.function.url, data=json.dumps(body_for(stack.spec_uri)), headers=headers, timeout=60)

    assert response.status_code == status, response.text
    assert response.json()["outcome"] == "rejected" and words in response.json()["message"], response.text
    assert "Traceback" not in response.text
    assert job_names(stack.emulator) == jobs_before and stack.emulator.mutating_calls() == 0
    [line] = stack.function.log_lines()[lines_before:]
    assert (line["severity"], line["outcome"], line["status"]) == ("ERROR", "rejected", status)


def test_the_allowed_invoker_gets_through(guarded_stack):
    """The control: the same stack accepts the one allowed identity's valid token."""
    stack = guarded_stack
    response = requests.post(
        stack.function.url,
        data=json.dumps(body_for(stack.spec_uri, schedule="control")),
        headers=scheduler_headers(token=stack.token()),
        timeout=60,
    )
    assert response.status_code == 200 and response.json()["outcome"] == "created"


# -- tokens too big for a header ---------------------------------------------------------------

OVER_8_KIB = 8 * 1024 + 1


def _padded(issuer, audience: str, length: int) -> str:
    """A correctly signed token of the allowed invoker, padded by a claim to `length` characters."""
    token = issuer.mint(audience=audience, email=INVOKER)
    return issuer.mint(audience=audience, email=INVOKER, extra_claims={"pad": "x" * ((length - len(token)) * 3 // 4)})


def test_a_token_over_8_kib_is_a_401_before_any_parsing(in_process_function, oidc_issuer, emulator, spec_uri):
    """The function's own limit, as any WSGI server that lets such a header through would see
    it (the in-process app has no header limit). Even a valid signature does not get it in."""
    client = in_process_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER)
    token = _padded(oidc_issuer, "http://localhost/", OVER_8_KIB + 200)
    assert len(token) > OVER_8_KIB

    response = client.post("/", data=json.dumps(body_for(spec_uri)), headers=scheduler_headers(token=token))

    assert response.status_code == 401, response.get_json()
    assert response.get_json()["outcome"] == "rejected" and "at most 8192" in response.get_json()["message"]
    assert emulator.pipeline_jobs() == [] and emulator.mutating_calls() == 0


def test_under_gunicorn_a_header_over_8190_bytes_never_reaches_the_function(guarded_stack, oidc_issuer):
    """functions-framework serves with gunicorn (so does Cloud Functions): a header line over
    8190 bytes is its 431, before the function runs. No job, no call, no function log line."""
    stack = guarded_stack
    stack.emulator.clear_calls()
    jobs_before = job_names(stack.emulator)  # names: a job created earlier may change state meanwhile
    lines_before = len(stack.function.log_lines())
    token = _padded(oidc_issuer, stack.function.url, 20_000)

    response = requests.post(
        stack.function.url,
        data=json.dumps(body_for(stack.spec_uri, schedule="padded")),
        headers=scheduler_headers(token=token),
        timeout=60,
    )

    assert response.status_code == 431
    assert job_names(stack.emulator) == jobs_before and stack.emulator.calls == []
    assert stack.function.log_lines()[lines_before:] == []


# -- a misconfigured allowlist -------------------------------------------------------------------


@pytest.mark.parametrize("allowed", [" , ", ","], ids=["comma-and-spaces", "comma"])
def test_an_allowlist_of_only_separators_is_a_500_config_error_not_an_open_door(
    start_function, emulator, oidc_issuer, spec_uri, allowed
):
    """Set but naming no one: the function must not fall back to "no token check"."""
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=allowed)
    token = oidc_issuer.mint(audience=function.url, email=INVOKER)

    answers = [fire(function.url, body_for(spec_uri), token=token), fire(function.url, body_for(spec_uri))]

    for response in answers:
        assert response.status_code == 500, response.text
        assert response.json()["outcome"] == "failed", response.text
        assert "VERTEX_CRON_ALLOWED_INVOKERS" in response.json()["message"]
    assert emulator.pipeline_jobs() == [] and emulator.mutating_calls() == 0
    lines = function.log_lines()
    assert [(line["severity"], line["outcome"], line["status"]) for line in lines] == [("ERROR", "failed", 500)] * 2


# -- the audience on Cloud Run -------------------------------------------------------------------


def test_on_cloud_run_without_an_audience_the_host_header_is_not_trusted(
    start_function, emulator, oidc_issuer, spec_uri
):
    """K_SERVICE set, invokers set, VERTEX_CRON_AUDIENCE unset: a token minted for whatever
    Host the caller sends would pass a request-URL audience. A 500 naming the variable instead."""
    function = start_function(VERTEX_CRON_ALLOWED_INVOKERS=INVOKER, K_SERVICE="vertex-cron-trigger")
    token = oidc_issuer.mint(audience=function.url, email=INVOKER)

    response = fire(function.url, body_for(spec_uri), token=token)

    assert response.status_code == 500, response.text
    assert response.json()["outcome"] == "failed" and "VERTEX_CRON_AUDIENCE" in response.json()["message"]
    assert emulator.pipeline_jobs() == [] and emulator.mutating_calls() == 0


def test_on_cloud_run_the_configured_audience_is_the_only_one(start_function, emulator, oidc_issuer, spec_uri):
    audience = "https://vertex-cron-trigger-123456789.us-central1.run.app"
    function = start_function(
        VERTEX_CRON_ALLOWED_INVOKERS=INVOKER, K_SERVICE="vertex-cron-trigger", VERTEX_CRON_AUDIENCE=audience
    )

    for_the_host = fire(function.url, body_for(spec_uri), token=oidc_issuer.mint(audience=function.url, email=INVOKER))
    for_the_function = fire(function.url, body_for(spec_uri), token=oidc_issuer.mint(audience=audience, email=INVOKER))

    assert for_the_host.status_code == 401 and "audience" in for_the_host.json()["message"], for_the_host.text
    assert for_the_function.status_code == 200 and for_the_function.json()["outcome"] == "created"
    assert len(emulator.pipeline_jobs()) == 1


# -- both of Google's certs formats ----------------------------------------------------------------


@pytest.mark.parametrize("certs_path", ["/oauth2/v1/certs", "/oauth2/v3/certs"], ids=["v1-pem", "v3-jwks"])
def test_tokens_are_verified_against_either_google_certs_format(
    start_function, emulator, oidc_issuer, spec_uri, certs_path
):
    """v1 is {kid: PEM certificate}; v3 is the JWK Set Google's OpenID discovery names as jwks_uri."""
    function = start_function(
        VERTEX_CRON_ALLOWED_INVOKERS=INVOKER, VERTEX_CRON_OIDC_CERTS_URL=emulator.url + certs_path
    )
    forged = oidc_issuer.mint(audience=function.url, email=INVOKER, signing_key=oidc_issuer.new_private_key())

    refused = fire(function.url, body_for(spec_uri), token=forged)
    accepted = fire(function.url, body_for(spec_uri), token=oidc_issuer.mint(audience=function.url, email=INVOKER))

    assert refused.status_code == 401 and refused.json()["outcome"] == "rejected", refused.text
    assert (accepted.status_code, accepted.json()["outcome"]) == (200, "created"), accepted.text
    assert len(emulator.pipeline_jobs()) == 1


def test_a_certs_url_serving_neither_format_is_a_config_error_naming_it(
    start_function, emulator, oidc_issuer, spec_uri
):
    """A JSON object of another kind (here the emulator's health answer) is no outage: no retry can help."""
    function = start_function(
        VERTEX_CRON_ALLOWED_INVOKERS=INVOKER, VERTEX_CRON_OIDC_CERTS_URL=emulator.url + "/_emulator/health"
    )

    response = fire(function.url, body_for(spec_uri), token=oidc_issuer.mint(audience=function.url, email=INVOKER))

    assert response.status_code == 500 and "VERTEX_CRON_OIDC_CERTS_URL" in response.json()["message"], response.text
    assert emulator.pipeline_jobs() == [] and emulator.mutating_calls() == 0
