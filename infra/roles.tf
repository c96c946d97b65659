# Custom roles hold exactly the permissions listed, per identity and scope, in
# deployer/permissions.py (tests/infra checks the two agree). Predefined roles would
# grant far more: roles/cloudfunctions.developer alone can make any function public.
locals {
  custom_roles = {
    deployer = {
      title = "vertex-cron deployer"
      permissions = [
        "cloudfunctions.functions.get",
        "cloudfunctions.functions.create",
        "cloudfunctions.functions.update",
        "cloudfunctions.functions.delete",
        "cloudfunctions.functions.sourceCodeSet",
        "cloudfunctions.operations.get",
        "run.services.get",
        "run.services.getIamPolicy",
        "run.services.setIamPolicy",
        "cloudscheduler.jobs.get",
        "cloudscheduler.jobs.fullView",
        "cloudscheduler.jobs.list",
        "cloudscheduler.jobs.create",
        "cloudscheduler.jobs.update",
        "cloudscheduler.jobs.delete",
        "cloudscheduler.jobs.pause",
        "cloudscheduler.jobs.enable",
        "cloudscheduler.jobs.run",
        "aiplatform.pipelineJobs.list",
        "aiplatform.pipelineJobs.get",
        "serviceusage.services.list",
        "serviceusage.services.use",
        "resourcemanager.projects.getIamPolicy",
        "iam.roles.get",
        "iam.serviceAccounts.get",
        "iam.serviceAccounts.getIamPolicy",
      ]
    }
    trigger = {
      title = "vertex-cron trigger function"
      permissions = [
        "aiplatform.pipelineJobs.create",
        "aiplatform.pipelineJobs.get",
        "aiplatform.pipelineJobs.list",
        "aiplatform.metadataStores.get",
        # The catch-up sweep's read-only view of the schedules (of roles/cloudscheduler.viewer).
        "cloudscheduler.jobs.list",
        "cloudscheduler.jobs.fullView",
      ]
    }
    spec_writer = {
      title = "vertex-cron spec writer"
      # list+delete: `vertex-cron delete --purge` removes specs no schedule references.
      permissions = [
        "storage.objects.get",
        "storage.objects.create",
        "storage.objects.list",
        "storage.objects.delete",
      ]
    }
    bucket_iam_reader = {
      title       = "vertex-cron bucket IAM reader"
      permissions = ["storage.buckets.getIamPolicy"]
    }
    object_reader = {
      title       = "vertex-cron object reader"
      permissions = ["storage.objects.get"]
    }
    # Get, write and overwrite (which needs delete) single objects; no listing.
    object_writer = {
      title = "vertex-cron object writer"
      permissions = [
        "storage.objects.get",
        "storage.objects.create",
        "storage.objects.delete",
      ]
    }
    pipeline_root_user = {
      title = "vertex-cron pipeline root user"
      permissions = [
        "storage.objects.get",
        "storage.objects.list",
        "storage.objects.create",
        "storage.objects.delete",
      ]
    }
    # A pipeline run's own needs (Vertex AI Pipelines' documented minimum, see
    # permissions.py): its ML Metadata store, created by the first run, and its steps' logs.
    pipeline_runner = {
      title = "vertex-cron pipeline runner"
      permissions = [
        "aiplatform.metadataStores.get",
        "aiplatform.metadataStores.create",
        "logging.logEntries.create",
      ]
    }
    bucket_reader = {
      title       = "vertex-cron bucket metadata reader"
      permissions = ["storage.buckets.get"]
    }
    log_writer = {
      title       = "vertex-cron log writer"
      permissions = ["logging.logEntries.create"]
    }
    image_pusher = {
      title = "vertex-cron function image pusher"
      permissions = [
        "artifactregistry.repositories.uploadArtifacts",
        "artifactregistry.repositories.downloadArtifacts",
        "artifactregistry.repositories.deleteArtifacts",
      ]
    }
    template_reader = {
      title = "vertex-cron pipeline template reader"
      permissions = [
        "artifactregistry.repositories.get",
        "artifactregistry.tags.get",
        "artifactregistry.repositories.downloadArtifacts",
      ]
    }
    act_as = {
      title       = "vertex-cron act as one service account"
      permissions = ["iam.serviceAccounts.actAs"]
    }
    # On the scheduler SA only: jobs call as it, and `vertex-cron backfill` delivers past
    # firings as it, with an ID token minted through IAM Credentials.
    scheduler_caller = {
      title = "vertex-cron call as the scheduler service account"
      permissions = [
        "iam.serviceAccounts.actAs",
        "iam.serviceAccounts.getOpenIdToken",
      ]
    }
  }
}

resource "google_project_iam_custom_role" "vertex_cron" {
  for_each    = local.custom_roles
  project     = var.project_id
  role_id     = "vertexCron_${each.key}"
  title       = each.value.title
  description = "Managed by vertex-cron's infra/ (Terraform)."
  permissions = each.value.permissions

  depends_on = [google_project_service.required]
}
