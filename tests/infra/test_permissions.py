"""vertex_cron.permissions is data doctor and infra rely on: well-formed and cheap."""

from __future__ import annotations

import re
import subprocess
import sys

from vertex_cron.permissions import REQUIRED, Scope

_SA_SCOPES = {Scope.FUNCTION_SA, Scope.SCHEDULER_SA, Scope.WORKLOAD_SA, Scope.BUILD_SA}


def test_every_permission_is_a_permission_name_with_a_reason():
    for identity, permissions in REQUIRED.items():
        for p in permissions:
            assert re.fullmatch(r"[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+", p.name), (identity, p)
            assert len(p.reason) > 10, (identity, p)


def test_no_permission_is_listed_twice_on_the_same_scope():
    for identity, permissions in REQUIRED.items():
        keys = [(p.name, p.scope) for p in permissions]
        assert len(keys) == len(set(keys)), identity


def test_service_accounts_are_only_ever_acted_as_one_by_one():
    """actAs (and minting an account's ID token) only ever on one account, never project-wide."""
    per_account = {"iam.serviceAccounts.actAs", "iam.serviceAccounts.getOpenIdToken"}
    for permissions in REQUIRED.values():
        for p in permissions:
            assert (p.scope in _SA_SCOPES) == (p.name in per_account), p


def test_importing_it_loads_nothing_outside_the_standard_library():
    code = (
        "import sys; before = set(sys.modules); import vertex_cron.permissions; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert loaded - sys.stdlib_module_names == {"vertex_cron"}
