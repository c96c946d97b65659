"""The demo project doctor's tests set up: names, and the members infra/ would bind."""

from __future__ import annotations

from vertex_cron.permissions import Scope

PROJECT = "demo-project"
REGION = "europe-west1"
DEPLOYER = "user:dev@example.com"
SA = {identity: f"vertex-cron-{identity}@{PROJECT}.iam.gserviceaccount.com"
      for identity in ("function", "scheduler", "workload", "build")}
SA_SCOPES = {Scope.FUNCTION_SA: "function", Scope.SCHEDULER_SA: "scheduler",
             Scope.WORKLOAD_SA: "workload", Scope.BUILD_SA: "build"}
ON_PROJECT = {Scope.PROJECT, Scope.FUNCTION_SOURCES}
ON_BUCKET = {Scope.BUCKET, Scope.SPEC_PREFIX, Scope.PIPELINE_ROOT}
CONDITIONAL = {Scope.SPEC_PREFIX, Scope.PIPELINE_ROOT, Scope.FUNCTION_SOURCES}


def member(identity: str) -> str:
    return DEPLOYER if identity == "deployer" else f"serviceAccount:{SA[identity]}"


def sa_resource(email: str) -> str:
    return f"projects/{PROJECT}/serviceAccounts/{email}"
