locals {
  bucket_name = coalesce(var.bucket_name, "${var.project_id}-vertex-cron")

  # Object prefixes; the same strings as vertex_cron.permissions.SPEC_PREFIX,
  # PIPELINE_ROOT_PREFIX and SWEEP_PREFIX. IAM conditions confine each identity to one of them.
  spec_prefix          = "vertex-cron/specs/"
  pipeline_root_prefix = "vertex-cron/pipeline-root/"
  sweep_prefix         = "vertex-cron/sweep/"
}

# Specs (written by the deployer, read by the function) and pipeline run artifacts.
resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Legacy usage logs need a second bucket that would fail the same check; reads and writes are audited with Cloud Audit Logs (enable Data Access logs for storage.googleapis.com, see README).
  name                        = local.bucket_name
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  # A spec is content-addressed and never overwritten; versioning keeps an accidental
  # delete or overwrite recoverable while Scheduler jobs still point at the object.
  versioning {
    enabled = true
  }

  # Old versions go after a while. Live specs are never aged out: a schedule may point
  # at the same spec for years.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
    }
    action {
      type = "Delete"
    }
  }

  # Pipeline run artifacts are working data: they age out (and then, as noncurrent
  # versions, go by the rule above).
  lifecycle_rule {
    condition {
      age            = var.pipeline_root_retention_days
      matches_prefix = [local.pipeline_root_prefix]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.required]
}
