output "project" {
  description = "Project that runs the schedules."
  value       = var.project_id
}

output "region" {
  description = "Region of the function, the Scheduler jobs and the PipelineJobs."
  value       = var.region
}

output "bucket" {
  description = "Artifact bucket: specs under vertex-cron/specs/, runs under vertex-cron/pipeline-root/."
  value       = google_storage_bucket.artifacts.name
}

output "function_sa" {
  description = "Runtime identity of the trigger function (--function-sa)."
  value       = google_service_account.vertex_cron["function"].email
}

output "scheduler_sa" {
  description = "Identity in Cloud Scheduler's OIDC token (--scheduler-sa)."
  value       = google_service_account.vertex_cron["scheduler"].email
}

output "workload_sa" {
  description = "Identity of the pipeline runs (--workload-sa)."
  value       = google_service_account.vertex_cron["workload"].email
}

output "build_sa" {
  description = "Identity of the function's Cloud Build builds (--build-sa)."
  value       = google_service_account.vertex_cron["build"].email
}

# `terraform output -raw vertex_cron_toml > vertex-cron.toml`
output "vertex_cron_toml" {
  description = "vertex-cron.toml for this project: the deployer's settings from the values above."
  value       = <<-EOT
    # Written by `terraform output -raw vertex_cron_toml` from vertex-cron's infra/.
    project      = "${var.project_id}"
    region       = "${var.region}"
    bucket       = "${google_storage_bucket.artifacts.name}"
    workload_sa  = "${google_service_account.vertex_cron["workload"].email}"
    function_sa  = "${google_service_account.vertex_cron["function"].email}"
    scheduler_sa = "${google_service_account.vertex_cron["scheduler"].email}"
    build_sa     = "${google_service_account.vertex_cron["build"].email}"
  EOT
}
