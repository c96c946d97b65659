"""Forged and wrong ID tokens: refused (401, or 403 for a valid token of another identity)
before the body is read, with no PipelineJob and no call to Vertex AI."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from reliability_stack import INVOKER, body_for, scheduler_headers

INTRUDER = "intruder@rel-project.iam.gserviceaccount.com"


def _segment(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _with_header(token: str, header) -> str:
    return ".".join([_segment(header), *token.split(".")[1:]])


def _with_claims(token: str, **claims) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([header, _segment({**decoded, **claims}), signature])


# (id, token(issuer, url) or None for no Authorization header, status, words of the message)
FORGERIES = [
    ("no-token", lambda issuer, url: None, 401, "missing"),
    ("not-a-jwt", lambda issuer, url: "not-a-jwt", 401, "not a JWT"),
    ("wrong-audience", lambda issuer, url: issuer.mint(audience="https://elsewhere.run.app", email=INVOKER), 401,
     "audience"),
    ("wrong-issuer", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, issuer="https://evil.example"), 401,
     "issuer"),
    ("expired", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, issued_at=time.time() - 7200,
                                                lifetime_seconds=3600), 401, "expired"),
    ("issued-in-the-future", lambda issuer, url: issuer.mint(audience=url, email=INVOKER,
                                                             issued_at=time.time() + 3600), 401, "Token used too early"),
    ("wrong-key", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, signing_key=issuer.new_private_key()),
     401, "signature"),
    ("alg-none", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, algorithm="none"), 401, "RS256"),
    ("hs256-public-cert-as-secret", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, algorithm="HS256"),
     401, "RS256"),
    ("email-not-allowed", lambda issuer, url: issuer.mint(audience=url, email=INTRUDER), 403,
     "not an allowed invoker"),
    ("email-unverified", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, email_verified=False), 401,
     "not verified"),
    ("email-swapped-in-payload", lambda issuer, url: _with_claims(issuer.mint(audience=url, email=INTRUDER),
                                                                  email=INVOKER), 401, "signature"),
    ("signature-stripped-off-cloud-run", lambda issuer, url: issuer.mint(audience=url, email=INVOKER).rsplit(".", 1)[0]
     + ".SIGNATURE_REMOVED_BY_GOOGLE", 401, "only Cloud Run"),
    ("unknown-kid", lambda issuer, url: issuer.mint(audience=url, email=INVOKER, kid="rotated-away"), 401,
     "rotated-away"),
    ("kid-not-a-string", lambda issuer, url: _with_header(issuer.mint(audience=url, email=INVOKER),
                                                          {"alg": "RS256", "kid": ["a"]}), 401,
     "kid must be a string"),  # regression: was a 500
    ("lowercase-scheme-without-token", lambda issuer, url: "", 401, "missing"),
]


@pytest.mark.parametrize(("forge", "status", "words"), [case[1:] for case in FORGERIES],
                         ids=[case[0] for case in FORGERIES])
def test_a_forged_token_is_refused_and_creates_nothing(guarded_stack, oidc_issuer, forge, status, words):
    stack = guarded_stack
    stack.emulator.clear_calls()
    token = forge(oidc_issuer, stack.function.url)
    headers = scheduler_headers(token=token)
    if token == "":
        headers["Authorization"] = "bearer "

    response = requests.post(stack.function.url, data=json.dumps(body_for(stack.spec_uri)), headers=headers, timeout=60)

    assert response.status_code == status, response.text
    assert response.json()["outcome"] == "rejected" and words in response.json()["message"], response.text
    assert stack.emulator.pipeline_jobs() == [] and stack.emulator.mutating_calls() == 0
    assert stack.function.log_lines()[-1]["severity"] == "ERROR"


def test_the_allowed_invoker_gets_through(guarded_stack):
    """The control: the same stack accepts the one allowed identity's valid token."""
    stack = guarded_stack
    response = requests.post(stack.function.url, data=json.dumps(body_for(stack.spec_uri, schedule="control")),
                             headers=scheduler_headers(token=stack.token()), timeout=60)
    assert response.status_code == 200 and response.json()["outcome"] == "created"
