"""The artifact bucket: private, recoverable, and it never ages out a live spec."""

from __future__ import annotations


def bucket(module) -> dict:
    return module.resources("google_storage_bucket")["artifacts"]


def test_bucket_is_never_public(module):
    b = bucket(module)
    assert b["uniform_bucket_level_access"] is True
    assert b["public_access_prevention"] == "enforced"


def test_bucket_keeps_versions_and_expires_old_ones(module):
    b = bucket(module)
    assert b["versioning"][0]["enabled"] is True
    noncurrent = [r for r in b["lifecycle_rule"] if "days_since_noncurrent_time" in r["condition"][0]]
    assert [r["action"][0]["type"] for r in noncurrent] == ["Delete"]


def test_no_age_rule_can_delete_a_live_spec(module):
    # A Scheduler job may point at the same spec for years: only run artifacts age out.
    for rule in bucket(module)["lifecycle_rule"]:
        condition, action = rule["condition"][0], rule["action"][0]
        if action["type"] == "Delete" and "age" in condition:
            assert condition["matches_prefix"] == ["${local.pipeline_root_prefix}"]


def test_bucket_survives_terraform_destroy_with_objects_in_it(module):
    assert bucket(module)["force_destroy"] is False
