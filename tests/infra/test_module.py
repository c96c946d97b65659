"""APIs, outputs and the generated vertex-cron.toml; checkov skips carry reasons."""

from __future__ import annotations

import re
import tomllib

from vertex_cron.models import MANAGED_BY, MANAGED_BY_LABEL
from vertex_cron.permissions import REQUIRED_APIS

CONFIG_KEYS = {"project", "region", "bucket", "workload_sa", "function_sa", "scheduler_sa", "build_sa"}
# The google provider's resources that take `labels`, and those that do not (IAM members,
# service accounts, custom roles, enabled APIs): a new kind of resource must join one.
LABELED = {"google_storage_bucket", "google_artifact_registry_repository"}
UNLABELED = {
    "google_project_service",
    "google_service_account",
    "google_project_iam_custom_role",
    "google_project_iam_member",
    "google_storage_bucket_iam_member",
    "google_service_account_iam_member",
    "google_artifact_registry_repository_iam_member",
    "google_logging_metric",
    "google_monitoring_alert_policy",  # takes `user_labels` instead (test_alerts checks them)
}


def test_infra_enables_exactly_the_apis_doctor_checks_and_never_disables_them(module):
    service = module.resources("google_project_service")["required"]
    assert service["for_each"] == "${local.required_apis}"
    enabled = set(re.findall(r'"([a-z]+\.googleapis\.com)"', module.named("locals")["required_apis"]))
    assert enabled == {api for api, _ in REQUIRED_APIS}
    assert service["disable_on_destroy"] is False


def test_outputs_name_every_config_value(module):
    assert CONFIG_KEYS | {"vertex_cron_toml"} <= set(module.named("output"))


def test_vertex_cron_toml_output_is_toml_with_each_output_value(module):
    outputs = module.named("output")
    heredoc = outputs["vertex_cron_toml"]["value"]
    body = heredoc.removeprefix("<<-EOT\n").removesuffix("EOT").rstrip()
    # Terraform fills ${...} in; stand each one in by its own text (escaped) to parse it.
    config = tomllib.loads(re.sub(r'\$\{((?:[^}"]|"\w+")*)\}', lambda m: m.group(1).replace('"', "'"), body))
    assert set(config) == CONFIG_KEYS
    for key in CONFIG_KEYS:
        assert "${" + config[key].replace("'", '"') + "}" == outputs[key]["value"], key


def test_every_checkov_skip_says_why(module):
    skips = [
        line.strip()
        for path in module.directory.glob("*.tf")
        for line in path.read_text().splitlines()
        if "checkov:skip" in line
    ]
    assert skips
    for skip in skips:
        assert re.fullmatch(r"#checkov:skip=CKV2?_GCP_\d+:\S.{20,}", skip), skip


def test_every_resource_that_takes_labels_is_labeled_managed_by_vertex_cron(module):
    kinds = {kind for entry in module.blocks["resource"] for kind in entry}
    assert kinds <= LABELED | UNLABELED, f"classify {sorted(kinds - LABELED - UNLABELED)} in LABELED or UNLABELED"
    assert module.named("locals")["labels"] == {MANAGED_BY_LABEL: MANAGED_BY}
    for kind in LABELED:
        resources = module.resources(kind)
        assert resources, kind
        for name, body in resources.items():
            assert body.get("labels") == "${local.labels}", f"{kind}.{name}"
