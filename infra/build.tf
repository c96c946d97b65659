# The image repository Cloud Functions (2nd gen) pushes function images to by default.
# Declaring it here lets the build SA be granted on this one repository instead of the
# project, and gives old images a cleanup policy. If a function was deployed in this
# region before, import it first:
#   terraform import google_artifact_registry_repository.function_images \
#     projects/PROJECT/locations/REGION/repositories/gcf-artifacts
resource "google_artifact_registry_repository" "function_images" {
  #checkov:skip=CKV_GCP_84:The images hold only vertex-cron's public function code; a customer-managed key adds a KMS dependency for no secrecy gained.
  project       = var.project_id
  location      = var.region
  repository_id = "gcf-artifacts"
  format        = "DOCKER"
  description   = "Cloud Functions images (vertex-cron-trigger)."
  labels        = local.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.required]
}

locals {
  # Cloud Functions' own bucket for uploaded sources; it exists after the first deploy.
  function_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
}
