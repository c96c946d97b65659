"""Which credentials the deployer acts with: Application Default Credentials, optionally
impersonating a service account; nothing is written to disk, nothing is fetched up front."""

from __future__ import annotations

import json

import pytest
from google.auth import impersonated_credentials
from vertex_cron.errors import SettingsError
from vertex_cron.gcp import GoogleCloud

TARGET = "vertex-cron-deployer@demo-project.iam.gserviceaccount.com"


@pytest.fixture
def user_adc(tmp_path, monkeypatch):
    """What `gcloud auth application-default login` leaves (a made-up refresh token)."""
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {"type": "authorized_user", "client_id": "id", "client_secret": "secret", "refresh_token": "made-up"}
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    for name in ("VERTEX_CRON_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_impersonation_acts_as_the_target_on_top_of_the_user_credentials(user_adc, make_settings):
    credentials = GoogleCloud(make_settings(impersonate_service_account=TARGET))._credentials

    assert isinstance(credentials, impersonated_credentials.Credentials)
    assert credentials.service_account_email == TARGET
    assert not credentials.valid, "no token is fetched before the first call"


def test_without_impersonation_the_application_default_credentials_are_used(user_adc, make_settings):
    credentials = GoogleCloud(make_settings())._credentials

    assert not isinstance(credentials, impersonated_credentials.Credentials)
    assert credentials.refresh_token == "made-up"


def test_no_credentials_at_all_is_a_clear_error(tmp_path, monkeypatch, make_settings):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    monkeypatch.delenv("VERTEX_CRON_EMULATOR_HOST", raising=False)

    with pytest.raises(SettingsError, match="no Google Cloud credentials found") as refused:
        GoogleCloud(make_settings())._credentials
    assert "gcloud auth application-default login" in refused.value.details
