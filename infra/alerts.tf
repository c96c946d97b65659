# Being told when scheduled pipelines stop: log-based metrics on the trigger function's
# structured lines (docs/function.md, "Log line" and "The catch-up sweep") and an alert
# policy on each, notifying var.notification_channels.
#
# - run_failed: the sweep's line per run that ended FAILED or CANCELLED;
# - missed:     the sweep's line per fire time that ended with no run and will not be caught up;
# - failed:     the function's own `failed` outcome (a firing Scheduler will retry, or a sweep
#               that could not finish): a run may be late or lost while these go on.
#
# run_failed and missed exist only while the sweep's Scheduler job (vertex-cron-catch-up) does,
# i.e. while at least one schedule of the project+region is deployed with catch-up: without
# one, a failed run or a lost firing writes neither line and these policies stay silent.
# The function runs on Cloud Run (Cloud Functions gen2); it writes JSON lines to stdout, which
# Cloud Logging parses into jsonPayload with the line's severity.

locals {
  function_logs = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${var.function_name}\"",
    "severity>=ERROR",
  ])
  outcome_metrics = {
    run_failed = "A scheduled pipeline run ended FAILED or CANCELLED (one per run, written by the catch-up sweep)."
    missed     = "A schedule's fire time ended with no run and will not be caught up (written by the catch-up sweep)."
    failed     = "The trigger function answered `failed` (Scheduler retries; a run may be late or lost)."
  }
}

# Log-based metrics need the Logging API, alert policies the Monitoring API. vertex-cron itself
# calls neither (so they are not permissions.REQUIRED_APIS): only these resources need them.
resource "google_project_service" "alerting" {
  for_each = toset(["logging.googleapis.com", "monitoring.googleapis.com"])
  project  = var.project_id
  service  = each.value

  disable_on_destroy = false
}

resource "google_logging_metric" "outcome" {
  for_each    = local.outcome_metrics
  project     = var.project_id
  name        = "vertex-cron/${replace(each.key, "_", "-")}"
  description = each.value
  filter      = "${local.function_logs} AND jsonPayload.outcome=\"${each.key}\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "schedule"
      value_type  = "STRING"
      description = "The schedule the line is about (empty for a sweep that failed as a whole)."
    }
  }

  label_extractors = {
    schedule = "EXTRACT(jsonPayload.schedule)"
  }

  depends_on = [google_project_service.alerting]
}

resource "google_monitoring_alert_policy" "outcome" {
  for_each     = local.outcome_metrics
  project      = var.project_id
  display_name = "vertex-cron: ${replace(each.key, "_", " ")}"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "vertex-cron ${each.key} lines"

    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.outcome[each.key].name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "600s" # the sweep's period: one evaluation per sweep
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.schedule"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "${each.value} Find the lines in Cloud Logging with `${local.function_logs} AND jsonPayload.outcome=\"${each.key}\"`; `vertex-cron status` shows each schedule's recent firings. See docs/failures.md."
  }

  alert_strategy {
    auto_close = "86400s"
  }

  notification_channels = var.notification_channels
  user_labels           = local.labels
}
