# Every grant vertex-cron's identities get, per identity. Each binds one custom role
# from roles.tf on the narrowest resource that works: the project only where the API
# has nothing smaller, an object prefix (IAM condition) in buckets, a single repository,
# a single service account. The condition titles name the scope, as permissions.py does.

locals {
  artifact_objects = "projects/_/buckets/${google_storage_bucket.artifacts.name}/objects/"
}

# --- deployer ---------------------------------------------------------------------

resource "google_project_iam_member" "deployer" {
  project = var.project_id
  role    = google_project_iam_custom_role.vertex_cron["deployer"].id
  member  = var.deployer_member
}

# Objects under the spec prefix only; listing (for `delete --purge`) only of that prefix.
resource "google_storage_bucket_iam_member" "deployer_specs" {
  bucket = google_storage_bucket.artifacts.name
  role   = google_project_iam_custom_role.vertex_cron["spec_writer"].id
  member = var.deployer_member

  condition {
    title      = "spec-prefix"
    expression = "resource.name.startsWith(\"${local.artifact_objects}${local.spec_prefix}\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${local.spec_prefix}\")"
  }
}

# `vertex-cron doctor` reads the bucket's policy to check the other identities' grants.
resource "google_storage_bucket_iam_member" "deployer_bucket_iam" {
  bucket = google_storage_bucket.artifacts.name
  role   = google_project_iam_custom_role.vertex_cron["bucket_iam_reader"].id
  member = var.deployer_member
}

# actAs on exactly the identities the deployer hands to Cloud Functions and Scheduler.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each           = toset(["function", "build"])
  service_account_id = google_service_account.vertex_cron[each.key].name
  role               = google_project_iam_custom_role.vertex_cron["act_as"].id
  member             = var.deployer_member
}

# The scheduler SA: actAs for the jobs' OIDC token, and its ID token for `vertex-cron backfill`.
resource "google_service_account_iam_member" "deployer_calls_as_scheduler" {
  service_account_id = google_service_account.vertex_cron["scheduler"].name
  role               = google_project_iam_custom_role.vertex_cron["scheduler_caller"].id
  member             = var.deployer_member
}

# Read the published pipelines deploy resolves and pins, on each listed repository only.
resource "google_artifact_registry_repository_iam_member" "deployer_templates" {
  for_each   = toset(var.pipeline_repositories)
  project    = var.project_id
  location   = split("/", each.value)[0]
  repository = split("/", each.value)[1]
  role       = google_project_iam_custom_role.vertex_cron["template_reader"].id
  member     = var.deployer_member
}

# --- function ---------------------------------------------------------------------

resource "google_project_iam_member" "function" {
  project = var.project_id
  role    = google_project_iam_custom_role.vertex_cron["trigger"].id
  member  = google_service_account.vertex_cron["function"].member
}

resource "google_storage_bucket_iam_member" "function_specs" {
  bucket = google_storage_bucket.artifacts.name
  role   = google_project_iam_custom_role.vertex_cron["object_reader"].id
  member = google_service_account.vertex_cron["function"].member

  condition {
    title      = "spec-prefix"
    expression = "resource.name.startsWith(\"${local.artifact_objects}${local.spec_prefix}\")"
  }
}

# The catch-up sweep's watermark (one object per project+region): read and overwritten only
# under the sweep prefix; an overwrite needs storage.objects.delete too.
resource "google_storage_bucket_iam_member" "function_sweep" {
  bucket = google_storage_bucket.artifacts.name
  role   = google_project_iam_custom_role.vertex_cron["object_writer"].id
  member = google_service_account.vertex_cron["function"].member

  condition {
    title      = "sweep-prefix"
    expression = "resource.name.startsWith(\"${local.artifact_objects}${local.sweep_prefix}\")"
  }
}

# The function may start runs as the workload SA and as no other identity.
resource "google_service_account_iam_member" "function_acts_as_workload" {
  service_account_id = google_service_account.vertex_cron["workload"].name
  role               = google_project_iam_custom_role.vertex_cron["act_as"].id
  member             = google_service_account.vertex_cron["function"].member
}

# --- scheduler --------------------------------------------------------------------
# Nothing here. The deployer grants it roles/run.invoker on the function's Cloud Run
# service, the one resource it may call, when it deploys the function.

# --- workload ---------------------------------------------------------------------

# What the run itself needs, as Google documents it for a pipeline's own service account:
# the project's ML Metadata store (created by the first run) and logs.
resource "google_project_iam_member" "workload_runs" {
  project = var.project_id
  role    = google_project_iam_custom_role.vertex_cron["pipeline_runner"].id
  member  = google_service_account.vertex_cron["workload"].member
}

# Was the log writer grant alone; the same binding's place, so no apply gap.
moved {
  from = google_project_iam_member.workload_logs
  to   = google_project_iam_member.workload_runs
}

# storage.buckets.get on the bucket itself: a run reads the pipeline root's bucket before
# writing, and a request on the bucket has no object name for the prefix condition below.
resource "google_storage_bucket_iam_member" "workload_bucket" {
  bucket = google_storage_bucket.artifacts.name
  role   = google_project_iam_custom_role.vertex_cron["bucket_reader"].id
  member = google_service_account.vertex_cron["workload"].member
}

resource "google_storage_bucket_iam_member" "workload_pipeline_root" {
  bucket = google_storage_bucket.artifacts.name
  role   = google_project_iam_custom_role.vertex_cron["pipeline_root_user"].id
  member = google_service_account.vertex_cron["workload"].member

  # Object permissions are checked against the object's name, objects.list against the
  # prefix the caller lists: both stay inside the pipeline root.
  condition {
    title      = "pipeline-root"
    expression = "resource.name.startsWith(\"${local.artifact_objects}${local.pipeline_root_prefix}\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${local.pipeline_root_prefix}\")"
  }
}

# Runs of a published pipeline carry its templateUri, read by Vertex AI as the runs' SA.
resource "google_artifact_registry_repository_iam_member" "workload_templates" {
  for_each   = toset(var.pipeline_repositories)
  project    = var.project_id
  location   = split("/", each.value)[0]
  repository = split("/", each.value)[1]
  role       = google_project_iam_custom_role.vertex_cron["template_reader"].id
  member     = google_service_account.vertex_cron["workload"].member
}

resource "google_project_iam_member" "workload_extra" {
  for_each = toset(var.workload_extra_roles)
  project  = var.project_id
  role     = each.value
  member   = google_service_account.vertex_cron["workload"].member
}

# --- build ------------------------------------------------------------------------

resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = google_project_iam_custom_role.vertex_cron["log_writer"].id
  member  = google_service_account.vertex_cron["build"].member
}

# Granted on the project with a condition because Cloud Functions creates this bucket
# on the first deploy, after this module has run.
resource "google_project_iam_member" "build_function_sources" {
  project = var.project_id
  role    = google_project_iam_custom_role.vertex_cron["object_reader"].id
  member  = google_service_account.vertex_cron["build"].member

  condition {
    title      = "function-sources"
    expression = "resource.name.startsWith(\"projects/_/buckets/${local.function_sources_bucket}/objects/\")"
  }
}

resource "google_artifact_registry_repository_iam_member" "build_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.function_images.location
  repository = google_artifact_registry_repository.function_images.name
  role       = google_project_iam_custom_role.vertex_cron["image_pusher"].id
  member     = google_service_account.vertex_cron["build"].member
}
