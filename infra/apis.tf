locals {
  # Every API vertex-cron calls, plus the two Terraform and `vertex-cron doctor` need:
  # cloudresourcemanager (project IAM policy, custom roles, testIamPermissions) and
  # serviceusage (listing enabled APIs). iamcredentials: `vertex-cron backfill` mints the
  # scheduler SA's ID token there (Cloud Scheduler mints its own tokens internally).
  required_apis = toset([
    "aiplatform.googleapis.com",
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "storage.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
  ])
}

resource "google_project_service" "required" {
  for_each = local.required_apis
  project  = var.project_id
  service  = each.value

  # Other workloads in the project may use these APIs too: never switch them off.
  disable_on_destroy = false
}
