"""The failure alerts: a log-based metric per outcome line the function writes for a run or
firing that went wrong, and an alert policy on each notifying the configured channels."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import log_filter
from vertex_cron.config import DEFAULT_FUNCTION_NAME
from vertex_cron_trigger import request_log, run_history, run_reports, sweep
from vertex_cron_trigger.body import TriggerBody
from vertex_cron_trigger.errors import UpstreamUnavailable

# What the alerts watch: the function's lines for a run or firing that went wrong
# (docs/function.md), and Cloud Scheduler's own failed attempts.
WATCHED = {"run_failed", "missed", "failed", "report_failed", "report_gap", "delivery_failed"}
REGION = "europe-west4"


def resolved_filter(module, name: str) -> str:
    """The watched signal's filter as Terraform renders it (join, locals, variable defaults)."""
    variables = {"function_name": DEFAULT_FUNCTION_NAME, "region": REGION}
    locals_ = module.named("locals")

    def render(text: str) -> str:
        joined = re.fullmatch(r'\$\{join\(" AND ", \[(.*)\]\)\}', text, re.S)
        if joined:
            text = " AND ".join(json.loads(f"[{joined[1]}]"))
        if "${local.function_logs}" in text:
            text = text.replace("${local.function_logs}", render(locals_["function_logs"]))
        return re.sub(r"\$\{var\.(\w+)\}", lambda m: variables[m[1]], text)

    return render(locals_["watched"][name]["filter"])


def test_there_is_a_metric_per_watched_signal(module):
    metric = module.resources("google_logging_metric")["outcome"]
    assert metric["for_each"] == "${local.watched}"
    assert set(module.named("locals")["watched"]) == WATCHED
    assert (metric["filter"], metric["description"]) == ("${each.value.filter}", "${each.value.description}")
    assert module.named("variable")["function_name"]["default"] == DEFAULT_FUNCTION_NAME
    [descriptor] = metric["metric_descriptor"]
    assert (descriptor["metric_kind"], descriptor["value_type"]) == ("DELTA", "INT64")
    assert metric["label_extractors"] == {"schedule": "${each.value.schedule}"}


def _function_entry(line: dict) -> dict:
    """A line the function wrote to stdout, as Cloud Logging stores it on Cloud Run."""
    return {
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": DEFAULT_FUNCTION_NAME}},
        "severity": line["severity"],
        "jsonPayload": line,
    }


def _lines(capsys) -> list[dict]:
    return [json.loads(text) for text in capsys.readouterr().out.splitlines()]


def test_the_functions_failure_lines_match_their_alerts_filter_and_no_other(module, capsys):
    run = {
        "name": "projects/p/locations/r/pipelineJobs/nightly-20240501-020000",
        "state": "PIPELINE_STATE_FAILED",
        "error": {"code": 9, "message": "OOM"},
    }
    run_reports.emit_run_failed(run, "nightly")
    body = TriggerBody(schedule="nightly", spec_uri="gs://bucket/spec.json", cron="0 2 * * *")
    run_reports.report_before(_UnreachableVertex(), body, datetime(2024, 5, 2, 2, tzinfo=UTC), run["name"], "p")
    since = datetime(2024, 5, 1, tzinfo=UTC)
    request_log.emit_fields(run_history.missed_line("nightly", since, "p", catch_up=False))
    request_log.emit_fields(sweep.report_gap_line((since, since + timedelta(hours=6))))
    request_log.emit(request_log.RequestLog("ERROR", "boom", "failed", 503, "nightly", None, None, 1.0))
    request_log.emit(request_log.RequestLog("INFO", "ok", "created", 200, "nightly", None, None, 1.0))
    entries = {line["outcome"]: _function_entry(line) for line in _lines(capsys)}
    assert set(entries) == {"run_failed", "missed", "report_failed", "report_gap", "failed", "created"}
    for signal in WATCHED:
        matched = {
            outcome for outcome, entry in entries.items() if log_filter.matches(resolved_filter(module, signal), entry)
        }
        assert matched == ({signal} & set(entries)), signal


class _UnreachableVertex:
    def newest_pipeline_jobs(self, *args, **kwargs):
        raise UpstreamUnavailable("listing the newest runs: HTTP 503")


def _scheduler_attempt(job_id: str, severity: str, status: str | None) -> dict:
    """An AttemptFinished entry in the shape published log filters and alerts read (docs/fidelity.md)."""
    payload = {
        "@type": "type.googleapis.com/google.cloud.scheduler.logging.AttemptFinished",
        "jobName": f"projects/p/locations/{REGION}/jobs/{job_id}",
        "targetType": "HTTP",
        "url": "https://vertex-cron-trigger-abc-ew.a.run.app/",
    }
    return {
        "resource": {
            "type": "cloud_scheduler_job",
            "labels": {"job_id": job_id, "location": REGION, "project_id": "p"},
        },
        "severity": severity,
        "jsonPayload": payload | ({"status": status} if status else {}),
        "httpRequest": {"status": 403 if status else 200},
    }


def test_a_failed_scheduler_attempt_of_a_vertex_cron_job_matches_the_delivery_alert(module):
    delivery = resolved_filter(module, "delivery_failed")
    assert log_filter.matches(delivery, _scheduler_attempt("vertex-cron-nightly", "ERROR", "PERMISSION_DENIED"))
    assert log_filter.matches(delivery, _scheduler_attempt("vertex-cron-catch-up", "ERROR", "UNAVAILABLE"))
    assert not log_filter.matches(delivery, _scheduler_attempt("vertex-cron-nightly", "INFO", None))
    assert not log_filter.matches(delivery, _scheduler_attempt("someone-elses-job", "ERROR", "INTERNAL"))
    for signal in WATCHED - {"delivery_failed"}:
        assert not log_filter.matches(
            resolved_filter(module, signal), _scheduler_attempt("vertex-cron-x", "ERROR", "X")
        )


def test_each_metric_has_an_alert_policy_that_notifies_the_channels_variable(module):
    policy = module.resources("google_monitoring_alert_policy")["outcome"]
    assert policy["for_each"] == "${local.watched}"
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
