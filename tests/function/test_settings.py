"""Settings for code outside the function (the Luigi task): the emulator variables are read
as the function reads them, and nothing of the function's entry-point guards is opened up."""

from __future__ import annotations

import pytest

from vertex_cron_trigger.errors import Forbidden
from vertex_cron_trigger.settings import Settings
from vertex_cron_trigger.spec_uri import parse_spec_uri


def submitter(**env: str) -> Settings:
    return Settings.for_submitter(env, project="p", region="us-central1", workload_sa="w@p.iam.gserviceaccount.com")


def test_a_submitter_reads_the_emulator_variables_like_the_function():
    settings = submitter(VERTEX_CRON_EMULATOR_HOST="http://127.0.0.1:8123/", STORAGE_EMULATOR_HOST="127.0.0.1:9023")

    assert (settings.parent, settings.workload_sa) == ("projects/p/locations/us-central1", "w@p.iam.gserviceaccount.com")
    assert (settings.vertex_emulator, settings.storage_emulator) == ("http://127.0.0.1:8123", "http://127.0.0.1:9023")
    assert (submitter().vertex_emulator, submitter().storage_emulator) == (None, None)


def test_a_submitter_s_settings_confine_specs_to_no_bucket_at_all():
    with pytest.raises(Forbidden):
        parse_spec_uri("gs://any-bucket/spec.yaml", allowed_bucket=submitter().spec_bucket)
