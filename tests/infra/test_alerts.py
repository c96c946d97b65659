"""The failure alerts: a log-based metric per outcome line the function writes for a run or
firing that went wrong, and an alert policy on each notifying the configured channels."""

from __future__ import annotations

import re

from vertex_cron.config import DEFAULT_FUNCTION_NAME

# The outcomes the function writes when a run or firing went wrong (docs/function.md).
WATCHED = {"run_failed", "missed", "failed"}


def test_there_is_a_metric_per_watched_outcome_on_the_function_s_error_lines(module):
    metric = module.resources("google_logging_metric")["outcome"]
    assert metric["for_each"] == "${local.outcome_metrics}"
    assert set(module.named("locals")["outcome_metrics"]) == WATCHED
    assert metric["filter"] == '${local.function_logs} AND jsonPayload.outcome="${each.key}"'
    logs = module.named("locals")["function_logs"]
    for clause in (
        'resource.type=\\"cloud_run_revision\\"',
        'service_name=\\"${var.function_name}\\"',
        "severity>=ERROR",
    ):
        assert clause in logs, clause
    assert module.named("variable")["function_name"]["default"] == DEFAULT_FUNCTION_NAME
    [descriptor] = metric["metric_descriptor"]
    assert (descriptor["metric_kind"], descriptor["value_type"]) == ("DELTA", "INT64")
    assert metric["label_extractors"] == {"schedule": "EXTRACT(jsonPayload.schedule)"}


def test_each_metric_has_an_alert_policy_that_notifies_the_channels_variable(module):
    policy = module.resources("google_monitoring_alert_policy")["outcome"]
    assert policy["for_each"] == "${local.outcome_metrics}"
    assert policy["notification_channels"] == "${var.notification_channels}"
    assert module.named("variable")["notification_channels"]["default"] == []
    [condition] = policy["conditions"]
    [threshold] = condition["condition_threshold"]
    assert re.search(
        r"logging\.googleapis\.com/user/\$\{google_logging_metric\.outcome\[each\.key\]\.name\}", threshold["filter"]
    )
    assert (threshold["comparison"], threshold["threshold_value"]) == ("COMPARISON_GT", 0)
    assert policy["user_labels"] == "${local.labels}"


def test_the_apis_the_alerts_need_are_enabled_and_never_disabled(module):
    service = module.resources("google_project_service")["alerting"]
    assert set(re.findall(r'"([a-z]+\.googleapis\.com)"', service["for_each"])) == {
        "logging.googleapis.com",
        "monitoring.googleapis.com",
    }
    assert service["disable_on_destroy"] is False
    assert module.resources("google_logging_metric")["outcome"]["depends_on"] == ["${google_project_service.alerting}"]
