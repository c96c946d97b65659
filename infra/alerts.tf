# Being told when scheduled pipelines stop: a log-based metric per signal below and an alert
# policy on each, notifying var.notification_channels.
#
# The trigger function's structured lines (docs/function.md, "Log line" and "Failure reports"):
# - run_failed:    one line per run that ended FAILED or CANCELLED: written by the catch-up sweep
#                  for a schedule with catch-up, by the schedule's own next run for one without;
# - missed:        one line per fire time that ended with no run and will not be caught up:
#                  written by the sweep or by the schedule's next run, as run_failed;
# - failed:        the function's own `failed` outcome (a firing Scheduler will retry, or a sweep
#                  that could not finish or could not write its reports): a run may be late or
#                  lost while these go on;
# - report_failed: a next run's report that could not be made (its window is not reported);
# - report_gap:    a stretch older than a report looks back (the sweep's 24 h; a next run's day,
#                  or two fire times) that was never reported: failures in it get no lines.
# The function runs on Cloud Run (Cloud Functions gen2); it writes JSON lines to stdout, which
# Cloud Logging parses into jsonPayload with the line's severity.
#
# And Cloud Scheduler's own log of each attempt it makes:
# - delivery_failed: an attempt of a vertex-cron job (a schedule's or the sweep's) that failed,
#                    whatever refused it: the function, Cloud Run's IAM check before it, a function
#                    that is gone, a timeout. It needs neither catch-up nor the function: it is the
#                    signal a lost firing gives in a region where no schedule uses catch-up.
#                    Scheduler writes an ERROR entry (an AttemptFinished) on the job's
#                    cloud_scheduler_job resource; the filter needs only the resource and the
#                    severity, as Google's own alert on Scheduler jobs does, so an entry of
#                    another type errs towards an alert (docs/fidelity.md, "Alerting").

locals {
  function_logs = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${var.function_name}\"",
    "severity>=ERROR",
  ])
  watched = {
    run_failed = {
      description = "A scheduled pipeline run ended FAILED or CANCELLED (one line per run)."
      filter      = "${local.function_logs} AND jsonPayload.outcome=\"run_failed\""
      resource    = "cloud_run_revision"
      schedule    = "EXTRACT(jsonPayload.schedule)"
    }
    missed = {
      description = "A schedule's fire time ended with no run and will not be caught up (one line per fire time)."
      filter      = "${local.function_logs} AND jsonPayload.outcome=\"missed\""
      resource    = "cloud_run_revision"
      schedule    = "EXTRACT(jsonPayload.schedule)"
    }
    failed = {
      description = "The trigger function answered `failed` (Scheduler retries; a run may be late or lost)."
      filter      = "${local.function_logs} AND jsonPayload.outcome=\"failed\""
      resource    = "cloud_run_revision"
      schedule    = "EXTRACT(jsonPayload.schedule)"
    }
    report_failed = {
      description = "A schedule's failed runs could not be reported (listing them failed); check `vertex-cron status`."
      filter      = "${local.function_logs} AND jsonPayload.outcome=\"report_failed\""
      resource    = "cloud_run_revision"
      schedule    = "EXTRACT(jsonPayload.schedule)"
    }
    delivery_failed = {
      description = "Cloud Scheduler could not deliver an attempt of a vertex-cron job (it retries; a firing may be lost)."
      filter = join(" AND ", [
        "resource.type=\"cloud_scheduler_job\"",
        "resource.labels.location=\"${var.region}\"",
        "resource.labels.job_id=~\"^vertex-cron-\"",
        "severity>=ERROR",
      ])
      resource = "cloud_scheduler_job"
      schedule = "REGEXP_EXTRACT(resource.labels.job_id, \"^vertex-cron-(.+)$\")" # catch-up: the sweep's job
    }
    report_gap = {
      description = "A stretch of time was never reported before it left the lookback (the sweep's 24 h; a schedule's next run's day, or two fire times): runs that failed or firings lost then got no line of their own."
      filter      = "${local.function_logs} AND jsonPayload.outcome=\"report_gap\""
      resource    = "cloud_run_revision"
      schedule    = "EXTRACT(jsonPayload.schedule)"
    }
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
  for_each    = local.watched
  project     = var.project_id
  name        = "vertex-cron/${replace(each.key, "_", "-")}"
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "schedule"
      value_type  = "STRING"
      description = "The schedule the entry is about (catch-up for the sweep's job; empty for a sweep that failed as a whole)."
    }
  }

  label_extractors = {
    schedule = each.value.schedule
  }

  depends_on = [google_project_service.alerting]
}

resource "google_monitoring_alert_policy" "outcome" {
  for_each     = local.watched
  project      = var.project_id
  display_name = "vertex-cron: ${replace(each.key, "_", " ")}"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "vertex-cron ${each.key} entries"

    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.outcome[each.key].name}\" AND resource.type=\"${each.value.resource}\""
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
    content   = "${each.value.description} Find the entries in Cloud Logging with `${each.value.filter}`; `vertex-cron status` shows each schedule's recent firings. See docs/failures.md."
  }

  alert_strategy {
    auto_close = "86400s"
  }

  notification_channels = var.notification_channels
  user_labels           = local.labels
}
