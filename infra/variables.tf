variable "project_id" {
  description = "Project that runs the schedules (Scheduler jobs, the function, PipelineJobs)."
  type        = string
}

variable "region" {
  description = "Region of the function, the Scheduler jobs, the PipelineJobs and the bucket."
  type        = string
}

variable "deployer_member" {
  description = "Who runs `vertex-cron deploy`: user:EMAIL, group:EMAIL or serviceAccount:EMAIL."
  type        = string

  validation {
    condition     = can(regex("^(user|group|serviceAccount):[^@\\s]+@[^@\\s]+$", var.deployer_member))
    error_message = "deployer_member must look like user:EMAIL, group:EMAIL or serviceAccount:EMAIL."
  }
}

variable "bucket_name" {
  description = "Artifact bucket (specs and pipeline root). Default: PROJECT_ID-vertex-cron."
  type        = string
  default     = null
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted object version is kept before it is deleted."
  type        = number
  default     = 30
}

variable "pipeline_root_retention_days" {
  description = "Days pipeline run artifacts under the pipeline root are kept."
  type        = number
  default     = 90
}

variable "workload_extra_roles" {
  description = "Extra project roles for the workload SA, e.g. roles/aiplatform.user for pipelines that start Vertex jobs."
  type        = list(string)
  default     = []

  # Least privilege is the point of this module: refuse the roles that undo it.
  validation {
    condition = length(setintersection(var.workload_extra_roles, [
      "roles/owner", "roles/editor", "roles/viewer",
      "roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator",
    ])) == 0
    error_message = "workload_extra_roles must not contain basic roles or project-wide service-account impersonation."
  }
}

variable "pipeline_repositories" {
  description = "Artifact Registry KFP repositories in project_id that schedules' specs are published to, as LOCATION/REPOSITORY: the deployer and the workload SA may read these (and no other)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.pipeline_repositories : can(regex("^[a-z][a-z0-9-]*/[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", r))])
    error_message = "pipeline_repositories entries must look like LOCATION/REPOSITORY, e.g. europe-west1/pipelines."
  }
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (projects/PROJECT/notificationChannels/ID) the failure alerts notify; empty: the alerts open incidents in the console only."
  type        = list(string)
  default     = []
}

variable "function_name" {
  description = "Name of the trigger function (vertex-cron.toml's function_name, default vertex-cron-trigger): the alerts read its logs."
  type        = string
  default     = "vertex-cron-trigger"
}
