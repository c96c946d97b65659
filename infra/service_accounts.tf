# One identity per job, so each can be granted (and revoked) on its own.
locals {
  service_accounts = {
    function  = "Runs the vertex-cron-trigger function: creates PipelineJobs."
    scheduler = "Identity in Cloud Scheduler's OIDC token; may only invoke the trigger."
    workload  = "Identity of the pipeline runs (the PipelineJobs' steps)."
    build     = "Builds the trigger function's image (Cloud Build), instead of the compute default SA."
  }
}

resource "google_service_account" "vertex_cron" {
  for_each     = local.service_accounts
  project      = var.project_id
  account_id   = "vertex-cron-${each.key}"
  display_name = "vertex-cron ${each.key}"
  description  = each.value

  depends_on = [google_project_service.required]
}
