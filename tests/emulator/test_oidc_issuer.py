"""LocalIssuer tokens verify with google-auth against the emulator's certs endpoint."""

from __future__ import annotations

import time

import pytest
import requests
from google.auth import exceptions as gauth_exc
from google.auth import jwt as gjwt

AUD = "https://vertex-cron-trigger-abc-uc.a.run.app"
SA = "vertex-cron-scheduler@demo-project.iam.gserviceaccount.com"


def certs(emulator):
    r = requests.get(emulator.url + "/oauth2/v1/certs")
    assert r.status_code == 200
    return r


def test_certs_document_google_v1_format(emulator, oidc_issuer):
    r = certs(emulator)
    assert r.headers["Cache-Control"].startswith("public, max-age=")
    doc = r.json()
    assert doc == oidc_issuer.certs_document()
    assert oidc_issuer.kid in doc and doc[oidc_issuer.kid].startswith("-----BEGIN CERTIFICATE-----")


def test_good_token_verifies(emulator, oidc_issuer):
    token = oidc_issuer.mint(audience=AUD, email=SA)
    claims = gjwt.decode(token, certs=certs(emulator).json(), audience=AUD)
    assert claims["email"] == SA and claims["email_verified"] is True
    assert claims["iss"] == "https://accounts.google.com"


def test_the_token_control_endpoint_mints_what_scheduler_would_send(emulator):
    r = requests.post(emulator.url + "/_emulator/token", json={"audience": AUD, "email": SA})
    assert r.status_code == 200
    claims = gjwt.decode(r.json()["token"], certs=certs(emulator).json(), audience=AUD)
    assert claims["email"] == SA
    bad = requests.post(emulator.url + "/_emulator/token", json={"audience": AUD})
    assert bad.status_code == 400 and "email" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lifetime_seconds": -120},
        {"issued_at": time.time() + 3600},
        {"algorithm": "none"},
        {"algorithm": "HS256"},
    ],
)
def test_forged_tokens_fail(emulator, oidc_issuer, kwargs):
    token = oidc_issuer.mint(audience=AUD, email=SA, **kwargs)
    with pytest.raises((ValueError, gauth_exc.GoogleAuthError)):
        gjwt.decode(token, certs=certs(emulator).json(), audience=AUD, clock_skew_in_seconds=0)


def test_wrong_key_and_wrong_audience_fail(emulator, oidc_issuer):
    doc = certs(emulator).json()
    forged = oidc_issuer.mint(audience=AUD, email=SA, signing_key=oidc_issuer.new_private_key())
    with pytest.raises((ValueError, gauth_exc.GoogleAuthError)):
        gjwt.decode(forged, certs=doc, audience=AUD)
    with pytest.raises((ValueError, gauth_exc.GoogleAuthError)):
        gjwt.decode(oidc_issuer.mint(audience="https://other", email=SA), certs=doc, audience=AUD)


def test_wrong_issuer_and_dropped_claims_are_visible(oidc_issuer):
    token = oidc_issuer.mint(
        audience=AUD, email=SA, issuer="https://evil.example", extra_claims={"email": None, "x": 1}
    )
    claims = gjwt.decode(token, certs=oidc_issuer.certs_document(), audience=AUD)
    assert claims["iss"] == "https://evil.example" and "email" not in claims and claims["x"] == 1


def test_no_issuer_means_404(emulator):
    emulator.oidc_issuer = None
    assert requests.get(emulator.url + "/oauth2/v1/certs").status_code == 404
