terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0, < 7.0"
    }
  }
}

locals {
  # On every resource that takes labels; the same label the deployer puts on the function
  # (vertex_cron.models.MANAGED_BY_LABEL = MANAGED_BY).
  labels = {
    managed-by = "vertex-cron"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

# The project number names Cloud Functions' own source bucket (build.tf).
data "google_project" "this" {
  project_id = var.project_id
}
