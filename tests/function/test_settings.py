"""Settings for code outside the function (the Luigi task): the emulator variables are read
as the function reads them, and nothing of the function's entry-point guards is opened up."""

from __future__ import annotations

import pytest
from vertex_cron_trigger.errors import ConfigError, Forbidden
from vertex_cron_trigger.settings import Settings
from vertex_cron_trigger.spec_uri import parse_spec_uri


def submitter(**env: str) -> Settings:
    return Settings.for_submitter(env, project="p", region="us-central1", workload_sa="w@p.iam.gserviceaccount.com")


def test_a_submitter_reads_the_emulator_variables_like_the_function():
    settings = submitter(VERTEX_CRON_EMULATOR_HOST="http://127.0.0.1:8123/", STORAGE_EMULATOR_HOST="127.0.0.1:9023")

    assert (settings.parent, settings.workload_sa) == (
        "projects/p/locations/us-central1",
        "w@p.iam.gserviceaccount.com",
    )
    assert (settings.vertex_emulator, settings.storage_emulator) == ("http://127.0.0.1:8123", "http://127.0.0.1:9023")
    assert (submitter().vertex_emulator, submitter().storage_emulator) == (None, None)


def test_a_submitter_s_settings_confine_specs_to_no_bucket_at_all():
    with pytest.raises(Forbidden):
        parse_spec_uri("gs://any-bucket/spec.yaml", allowed_bucket=submitter().spec_bucket)


REQUIRED_ENV = {
    "VERTEX_CRON_PROJECT": "p",
    "VERTEX_CRON_REGION": "us-central1",
    "VERTEX_CRON_WORKLOAD_SA": "w@p.iam.gserviceaccount.com",
    "VERTEX_CRON_SPEC_BUCKET": "specs",
}


def from_env(**env: str) -> Settings:
    return Settings.from_env({**REQUIRED_ENV, **env})


def test_allowed_invokers_unset_or_empty_means_no_token_check_and_emails_are_lower_cased():
    assert from_env().allowed_invokers == frozenset()
    assert from_env(VERTEX_CRON_ALLOWED_INVOKERS="").allowed_invokers == frozenset()
    assert from_env(VERTEX_CRON_ALLOWED_INVOKERS=" A@p.iam.gserviceaccount.com ,b@example.com,").allowed_invokers == {
        "a@p.iam.gserviceaccount.com",
        "b@example.com",
    }


@pytest.mark.parametrize(
    "value",
    [
        " , ",
        ",",
        " ",
        ",,,",
        "\t,\n",
        "scheduler",
        "a@b",
        "@p.iam.gserviceaccount.com",
        "a b@p.example.com",
        "ok@p.example.com, not-an-email",
        "a@@p.example.com",
        "serviceAccount:a@p.example.com",
    ],
)
def test_allowed_invokers_that_name_no_valid_email_are_a_configuration_error(value):
    with pytest.raises(ConfigError) as caught:
        from_env(VERTEX_CRON_ALLOWED_INVOKERS=value)
    assert "VERTEX_CRON_ALLOWED_INVOKERS" in caught.value.message and caught.value.status == 500


def test_audience_of_only_separators_is_an_error_and_empty_means_the_request_url():
    assert from_env(VERTEX_CRON_AUDIENCE="").audiences == ()
    assert from_env(VERTEX_CRON_AUDIENCE="https://a.example, https://b.example").audiences == (
        "https://a.example",
        "https://b.example",
    )
    with pytest.raises(ConfigError, match="VERTEX_CRON_AUDIENCE"):
        from_env(VERTEX_CRON_AUDIENCE=" , ")


@pytest.mark.parametrize(
    "value", ["certs.example.com/oauth2/v1/certs", "ftp://x/certs", "https:// x/certs", "https://"]
)
def test_certs_url_must_be_http_or_https(value):
    with pytest.raises(ConfigError, match="VERTEX_CRON_OIDC_CERTS_URL"):
        from_env(VERTEX_CRON_OIDC_CERTS_URL=value)
    assert from_env(VERTEX_CRON_OIDC_CERTS_URL=" ").certs_url == "https://www.googleapis.com/oauth2/v1/certs"


def test_on_cloud_run_the_audience_is_never_taken_from_the_request():
    """The request URL comes from the Host header, which the caller writes."""
    guarded = {"K_SERVICE": "vertex-cron-trigger", "VERTEX_CRON_ALLOWED_INVOKERS": "s@p.iam.gserviceaccount.com"}
    with pytest.raises(ConfigError) as caught:
        from_env(**guarded)
    assert "VERTEX_CRON_AUDIENCE" in caught.value.message and caught.value.status == 500

    assert from_env(**guarded, VERTEX_CRON_AUDIENCE="https://f.run.app").audiences == ("https://f.run.app",)
    assert from_env(K_SERVICE="vertex-cron-trigger").audiences == ()  # no token check at all
    assert from_env(VERTEX_CRON_ALLOWED_INVOKERS="s@p.iam.gserviceaccount.com").audiences == ()  # local runs


def test_pipeline_roots_are_confined_to_the_spec_bucket_unless_the_deployer_names_more():
    assert from_env().pipeline_root_buckets == {"specs"}  # fail safe
    assert from_env(VERTEX_CRON_PIPELINE_ROOT_BUCKETS="specs, roots-eu,roots-us").pipeline_root_buckets == {
        "specs",
        "roots-eu",
        "roots-us",
    }


@pytest.mark.parametrize("value", [" , ", "gs://roots", "roots/path", "Roots", "ok-bucket,x"])
def test_pipeline_root_buckets_that_are_not_bucket_names_are_a_configuration_error(value):
    with pytest.raises(ConfigError) as caught:
        from_env(VERTEX_CRON_PIPELINE_ROOT_BUCKETS=value)
    assert "VERTEX_CRON_PIPELINE_ROOT_BUCKETS" in caught.value.message and caught.value.status == 500
