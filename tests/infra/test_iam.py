"""The grants in infra/ are exactly what vertex_cron.permissions says each identity needs."""

from __future__ import annotations

import pytest
from vertex_cron.permissions import (
    GRANTS,
    PIPELINE_ROOT_PREFIX,
    REQUIRED,
    SPEC_PREFIX,
    SWEEP_PREFIX,
    Scope,
    names,
    role_permissions,
)
from vertex_cron_trigger import watermark

_ACT_AS = "iam.serviceAccounts.actAs"
# Permissions that let a holder act as, or mint credentials for, a service account.
_IMPERSONATION = {
    _ACT_AS,
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
}
_SA_SCOPES = {Scope.FUNCTION_SA, Scope.SCHEDULER_SA, Scope.WORKLOAD_SA, Scope.BUILD_SA}


def granted(module, identity: str) -> dict[Scope, frozenset[str]]:
    roles = module.custom_roles()
    by_scope: dict[Scope, frozenset[str]] = {}
    for grant in module.grants():
        if grant.identity == identity and grant.role in roles:
            by_scope[grant.scope] = by_scope.get(grant.scope, frozenset()) | roles[grant.role]
    return by_scope


@pytest.mark.parametrize("identity", sorted(REQUIRED))
def test_identity_gets_exactly_the_permissions_the_code_lists(module, identity):
    required = {p.scope: names(identity, p.scope) for p in REQUIRED[identity]}
    assert granted(module, identity) == required


def test_only_known_identities_are_granted_anything(module):
    assert {grant.identity for grant in module.grants()} <= set(REQUIRED)


def test_every_custom_role_is_used(module):
    used = {grant.role for grant in module.grants()}
    assert set(module.custom_roles()) <= used


def test_no_predefined_role_is_granted_except_the_validated_workload_extras(module):
    roles = module.custom_roles()
    others = [g for g in module.grants() if g.role not in roles]
    assert [(g.address, g.identity, g.role) for g in others] == [
        ("google_project_iam_member.workload_extra", "workload", "${each.value}")
    ]
    assert module.resources("google_project_iam_member")["workload_extra"]["for_each"] == (
        "${toset(var.workload_extra_roles)}"
    )


def test_workload_extra_roles_refuse_basic_roles_and_impersonation(module):
    (validation,) = module.named("variable")["workload_extra_roles"]["validation"]
    for role in (
        "roles/owner",
        "roles/editor",
        "roles/viewer",
        "roles/iam.serviceAccountUser",
        "roles/iam.serviceAccountTokenCreator",
    ):
        assert f'"{role}"' in validation["condition"]


def test_no_identity_can_impersonate_project_wide(module):
    roles = module.custom_roles()
    for grant in module.grants():
        if grant.scope not in _SA_SCOPES and grant.role in roles:
            assert not roles[grant.role] & _IMPERSONATION, grant.address


def test_function_acts_as_the_workload_sa_only(module):
    roles = module.custom_roles()
    scopes = {g.scope for g in module.grants() if g.identity == "function" and _ACT_AS in roles.get(g.role, ())}
    assert scopes == {Scope.WORKLOAD_SA}


def test_deployer_acts_as_only_the_identities_it_deploys_with(module):
    roles = module.custom_roles()
    scopes = {g.scope for g in module.grants() if g.identity == "deployer" and _ACT_AS in roles.get(g.role, ())}
    assert scopes == {Scope.FUNCTION_SA, Scope.SCHEDULER_SA, Scope.BUILD_SA}


def test_scheduler_sa_is_granted_nothing_by_terraform(module):
    assert not [g.address for g in module.grants() if g.identity == "scheduler"]


def test_doctor_names_each_terraform_grant_by_its_address_and_role(module):
    # `doctor` prints these addresses as fixes: each must be the resource that makes that grant.
    infra = {(g.address, g.identity, g.scope, g.role) for g in module.grants() if g.role in module.custom_roles()}
    assert infra == {(g.terraform, g.identity, g.scope, g.role) for g in GRANTS}


def test_each_custom_role_holds_what_its_grants_are_for(module):
    for key, permissions in module.custom_roles().items():
        assert permissions == role_permissions(key), key


def test_unconditioned_bucket_grants_read_only_the_bucket_itself(module):
    # No object permission without a prefix condition: the deployer reads the bucket's
    # policy (doctor), the workload SA its metadata (a run checks its root's bucket).
    roles = module.custom_roles()
    for grant in module.grants():
        if grant.scope is Scope.BUCKET:
            assert grant.condition is None
            assert roles[grant.role] <= {"storage.buckets.getIamPolicy", "storage.buckets.get"}, grant.address


def test_bucket_grants_are_confined_to_their_prefix(module):
    prefixes = {
        Scope.SPEC_PREFIX: "${local.spec_prefix}",
        Scope.PIPELINE_ROOT: "${local.pipeline_root_prefix}",
        Scope.SWEEP_PREFIX: "${local.sweep_prefix}",
    }
    for grant in module.grants():
        if grant.address.startswith("google_storage_bucket_iam_member.") and grant.scope is not Scope.BUCKET:
            assert grant.scope in prefixes, grant.address
            expected = f'resource.name.startsWith("${{local.artifact_objects}}{prefixes[grant.scope]}")'
            assert grant.condition.startswith(expected), grant.address


@pytest.mark.parametrize(
    "scope, prefix", [(Scope.PIPELINE_ROOT, "pipeline_root_prefix"), (Scope.SPEC_PREFIX, "spec_prefix")]
)
def test_listing_is_confined_to_the_prefix(module, scope, prefix):
    for grant in module.grants():
        if grant.scope is scope and "storage.objects.list" in module.custom_roles()[grant.role]:
            assert (
                f'api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("${{local.{prefix}}}")'
            ) in grant.condition, grant.address


def test_purge_can_list_and_delete_specs_and_nothing_else():
    assert {"storage.objects.list", "storage.objects.delete"} <= names("deployer", Scope.SPEC_PREFIX)
    assert not names("deployer", Scope.PIPELINE_ROOT)


def test_terraform_prefixes_are_the_ones_the_code_uses(module):
    local = module.named("locals")
    assert local["spec_prefix"] == SPEC_PREFIX
    assert local["pipeline_root_prefix"] == PIPELINE_ROOT_PREFIX
    assert local["sweep_prefix"] == SWEEP_PREFIX == watermark.SWEEP_PREFIX
    assert local["artifact_objects"] == "projects/_/buckets/${google_storage_bucket.artifacts.name}/objects/"


def test_build_reads_only_cloud_functions_source_bucket(module):
    (grant,) = [g for g in module.grants() if g.scope is Scope.FUNCTION_SOURCES]
    assert grant.condition == (
        'resource.name.startsWith("projects/_/buckets/${local.function_sources_bucket}/objects/")'
    )
    assert module.named("locals")["function_sources_bucket"] == (
        "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
    )


def test_the_function_writes_only_its_sweep_watermark():
    writes = {"storage.objects.create", "storage.objects.delete"}
    assert [s for s in Scope if names("function", s) & writes] == [Scope.SWEEP_PREFIX]
    # Get, write and overwrite one object it knows by name: never a listing of the prefix.
    assert names("function", Scope.SWEEP_PREFIX) == {"storage.objects.get", *writes}
