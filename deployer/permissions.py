"""The one list of IAM permissions each vertex-cron identity needs, and where.

Plain data, no imports beyond the standard library: `vertex-cron doctor` tests these with
testIamPermissions, and tests/infra checks that infra/*.tf grants exactly these.

Identities (keys of `REQUIRED`):
- ``deployer``  whoever runs `vertex-cron deploy` (a user, group or CI service account)
- ``function``  the runtime service account of the `vertex-cron-trigger` function
- ``scheduler`` the service account whose OIDC token Cloud Scheduler sends
- ``workload``  the service account PipelineJobs run as
- ``build``     the service account Cloud Build uses to build the function

Each permission is granted on one `Scope`: the project, the artifact bucket itself or an
object prefix of it (granted with an IAM condition), Cloud Functions' own source bucket and
image repository, the Artifact Registry KFP repositories pipelines are published to, or a
single service account (actAs is never granted project-wide).
`GRANTS` says which custom role (roles.tf) carries them there and which Terraform resource
(iam.tf) binds it: doctor names that resource as the fix, tests/infra checks it exists.
`REQUIRED_APIS` lists every API vertex-cron (deployer, function, doctor) calls.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Object prefixes in the artifact bucket. The deployer writes specs under SPEC_PREFIX;
# pipeline runs keep their artifacts under PIPELINE_ROOT_PREFIX; the catch-up sweep keeps
# its watermark (vertex_cron_trigger.watermark) under SWEEP_PREFIX.
SPEC_PREFIX = "vertex-cron/specs/"
PIPELINE_ROOT_PREFIX = "vertex-cron/pipeline-root/"
SWEEP_PREFIX = "vertex-cron/sweep/"


class Scope(enum.Enum):
    """Where a permission is granted (and where doctor must test it)."""

    PROJECT = "project"
    BUCKET = "bucket"  # the artifact bucket itself (its metadata, its IAM policy), no object condition
    SPEC_PREFIX = "spec-prefix"  # artifact bucket objects under SPEC_PREFIX
    PIPELINE_ROOT = "pipeline-root"  # artifact bucket objects under PIPELINE_ROOT_PREFIX
    SWEEP_PREFIX = "sweep-prefix"  # artifact bucket objects under SWEEP_PREFIX
    FUNCTION_SOURCES = "function-sources"  # bucket gcf-v2-sources-PROJECT_NUMBER-REGION
    BUILD_REPOSITORY = "build-repository"  # Artifact Registry repository gcf-artifacts
    # Each Artifact Registry KFP repository schedules' specs are published to (infra's
    # pipeline_repositories); only schedules deployed from such a URI need it.
    PIPELINE_REPOSITORY = "pipeline-repository"
    FUNCTION_SA = "function-sa"
    SCHEDULER_SA = "scheduler-sa"
    WORKLOAD_SA = "workload-sa"
    BUILD_SA = "build-sa"


# The object prefix of each prefix scope (granted with an IAM condition on it).
OBJECT_PREFIXES: dict[Scope, str] = {
    Scope.SPEC_PREFIX: SPEC_PREFIX,
    Scope.PIPELINE_ROOT: PIPELINE_ROOT_PREFIX,
    Scope.SWEEP_PREFIX: SWEEP_PREFIX,
}


@dataclass(frozen=True)
class Permission:
    name: str
    scope: Scope
    reason: str


def _on(scope: Scope, *pairs: tuple[str, str]) -> tuple[Permission, ...]:
    return tuple(Permission(name, scope, reason) for name, reason in pairs)


_ACT_AS = "iam.serviceAccounts.actAs"

DEPLOYER: tuple[Permission, ...] = (
    *_on(
        Scope.PROJECT,
        ("cloudfunctions.functions.get", "inspect the deployed function and its source hash"),
        ("cloudfunctions.functions.create", "deploy the trigger function the first time"),
        ("cloudfunctions.functions.update", "redeploy it when the function source changes"),
        ("cloudfunctions.functions.delete", "`vertex-cron delete`: remove the function with the last schedule"),
        ("cloudfunctions.functions.sourceCodeSet", "generateUploadUrl for the source zip"),
        ("cloudfunctions.operations.get", "wait for create/update/delete operations"),
        ("run.services.get", "check that the function's Cloud Run service checks invoker IAM"),
        ("run.services.getIamPolicy", "read who may invoke the function's Cloud Run service"),
        ("run.services.setIamPolicy", "grant run.invoker on that service to the scheduler SA"),
        ("cloudscheduler.jobs.get", "inspect a schedule (`describe`, planning)"),
        ("cloudscheduler.jobs.fullView", "read a job's HTTP body and OIDC target to plan updates"),
        ("cloudscheduler.jobs.list", "`vertex-cron list` and `apply --prune`"),
        ("cloudscheduler.jobs.create", "create a schedule's job"),
        ("cloudscheduler.jobs.update", "update a schedule's job"),
        ("cloudscheduler.jobs.delete", "`vertex-cron delete` and `apply --prune`"),
        ("cloudscheduler.jobs.pause", "`vertex-cron pause`: stop firing"),
        ("cloudscheduler.jobs.enable", "`vertex-cron resume`: fire again"),
        ("cloudscheduler.jobs.run", "`vertex-cron run`: fire a job now"),
        ("aiplatform.pipelineJobs.list", "`vertex-cron history`: recent runs"),
        ("aiplatform.pipelineJobs.get", "`vertex-cron history`: one run's state"),
        ("serviceusage.services.list", "`doctor`: which required APIs are enabled"),
        ("serviceusage.services.use", "call APIs with user credentials that name a quota project"),
        ("resourcemanager.projects.getIamPolicy", "`doctor`: read the identities' project grants"),
        ("iam.roles.get", "`doctor`: expand the granted custom roles to their permissions"),
        ("iam.serviceAccounts.get", "`doctor`: check that each configured identity exists"),
        ("iam.serviceAccounts.getIamPolicy", "`doctor`: read who may act as each identity"),
    ),
    *_on(Scope.BUCKET, ("storage.buckets.getIamPolicy", "`doctor`: read the identities' bucket grants")),
    *_on(
        Scope.SPEC_PREFIX,
        ("storage.objects.get", "see whether a content-addressed spec is already uploaded; read who holds the lease"),
        ("storage.objects.create", "upload a spec; take and renew the lease (one run at a time)"),
        ("storage.objects.list", "`delete --purge`: find spec objects no schedule references"),
        ("storage.objects.delete", "`delete --purge`: remove those spec objects; release the lease"),
    ),
    *_on(
        Scope.PIPELINE_REPOSITORY,
        ("artifactregistry.repositories.get", "check that a published spec's repository is a KFP one"),
        ("artifactregistry.tags.get", "resolve a tag to the version deploy pins the schedule to"),
        ("artifactregistry.repositories.downloadArtifacts", "download that version, to check and upload it"),
    ),
    *_on(Scope.FUNCTION_SA, (_ACT_AS, "deploy the function to run as the function SA")),
    *_on(
        Scope.SCHEDULER_SA,
        (_ACT_AS, "create jobs whose OIDC token is the scheduler SA's"),
        ("iam.serviceAccounts.getOpenIdToken", "`vertex-cron backfill`: deliver past firings as the scheduler SA"),
    ),
    *_on(Scope.BUILD_SA, (_ACT_AS, "build the function as the build SA (--build-sa)")),
)

FUNCTION: tuple[Permission, ...] = (
    *_on(
        Scope.PROJECT,
        ("aiplatform.pipelineJobs.create", "create the scheduled PipelineJob"),
        ("aiplatform.pipelineJobs.get", "report the existing run on a duplicate delivery"),
        ("aiplatform.pipelineJobs.list", "find runs of a schedule (concurrency limit)"),
        ("aiplatform.metadataStores.get", "Vertex checks it when a PipelineJob is created"),
        # Read-only, the two of roles/cloudscheduler.viewer (the smallest predefined role with
        # jobs.list) the catch-up sweep uses: which schedules call the function, their bodies.
        ("cloudscheduler.jobs.list", "the catch-up sweep reads the region's schedules"),
        ("cloudscheduler.jobs.fullView", "the catch-up sweep reads each schedule job's body and retry config"),
    ),
    *_on(Scope.SPEC_PREFIX, ("storage.objects.get", "load the compiled pipeline spec")),
    # Cloud Storage's objects.insert reference: overwriting an object also needs
    # storage.objects.delete.
    *_on(
        Scope.SWEEP_PREFIX,
        ("storage.objects.get", "the catch-up sweep reads how far its reports went (its watermark)"),
        ("storage.objects.create", "the sweep writes its watermark"),
        ("storage.objects.delete", "the sweep overwrites its watermark"),
    ),
    *_on(Scope.WORKLOAD_SA, (_ACT_AS, "create PipelineJobs that run as the workload SA")),
)

# Cloud Scheduler mints the OIDC token through its own service agent (which holds
# roles/cloudscheduler.serviceAgent by default); the scheduler SA itself calls nothing.
# Its only grant, run.invoker on the function's service, is made by the deployer.
SCHEDULER: tuple[Permission, ...] = ()

# Google grants Scheduler's service agent this role on the project when the API is enabled
# (projects that enabled it before 2019-03-19 lack it); without it no OIDC token is minted
# and every firing fails. Not Terraform's: doctor checks it is there.
SCHEDULER_AGENT_ROLE = "roles/cloudscheduler.serviceAgent"
SCHEDULER_AGENT_DOMAIN = "gcp-sa-cloudscheduler.iam.gserviceaccount.com"


def scheduler_agent(project_number: str) -> str:
    """The email of Cloud Scheduler's service agent in the project with that number."""
    return f"service-{project_number}@{SCHEDULER_AGENT_DOMAIN}"


# What a pipeline run's own identity needs, whatever its steps do. Google's "Configure a
# service account with granular permissions" (Vertex AI Pipelines, configure-project) names
# the minimum: aiplatform.metadataStores.get, storage.buckets.get, storage.objects.create and
# storage.objects.get, plus aiplatform.metadataStores.create for the first run in a project
# (docs/fidelity.md, "Identities and IAM"). The rest is what KFP container steps do in the
# pipeline root. Steps that call other Google APIs (google-cloud-pipeline-components starting
# Vertex jobs, BigQuery, ...) need more: infra's workload_extra_roles.
WORKLOAD: tuple[Permission, ...] = (
    *_on(
        Scope.PROJECT,
        ("aiplatform.metadataStores.get", "every run records its lineage in the project's ML Metadata store"),
        ("aiplatform.metadataStores.create", "the first run in a project creates that store"),
        ("logging.logEntries.create", "pipeline steps write their logs"),
    ),
    *_on(Scope.BUCKET, ("storage.buckets.get", "the run checks the pipeline root's bucket before writing")),
    *_on(
        Scope.PIPELINE_ROOT,
        ("storage.objects.get", "read the run's own and earlier steps' artifacts"),
        ("storage.objects.create", "write the run's output artifacts"),
        ("storage.objects.list", "steps list artifact directories"),
        ("storage.objects.delete", "steps overwrite outputs when retried"),
    ),
    # Runs of a published spec carry its templateUri. Google's pipeline-template guide
    # (cloud.google.com/vertex-ai/docs/pipelines/create-pipeline-template) grants the SA
    # pipeline runs are associated with roles/artifactregistry.reader "to create pipeline
    # runs from templates"; these are the reads of that role a template involves.
    *_on(
        Scope.PIPELINE_REPOSITORY,
        ("artifactregistry.repositories.get", "Vertex AI reads the run's template repository"),
        ("artifactregistry.tags.get", "Vertex AI resolves a template reference"),
        ("artifactregistry.repositories.downloadArtifacts", "Vertex AI reads the run's template version"),
    ),
)

# Mirrors roles/run.builder, each grant narrowed to the resource it is for.
BUILD: tuple[Permission, ...] = (
    *_on(Scope.PROJECT, ("logging.logEntries.create", "write build logs")),
    *_on(Scope.FUNCTION_SOURCES, ("storage.objects.get", "fetch the uploaded function source")),
    *_on(
        Scope.BUILD_REPOSITORY,
        ("artifactregistry.repositories.uploadArtifacts", "push the function image"),
        ("artifactregistry.repositories.downloadArtifacts", "pull cached layers"),
        ("artifactregistry.repositories.deleteArtifacts", "replace the image's tags"),
    ),
)

REQUIRED: dict[str, tuple[Permission, ...]] = {
    "deployer": DEPLOYER,
    "function": FUNCTION,
    "scheduler": SCHEDULER,
    "workload": WORKLOAD,
    "build": BUILD,
}


# (api, why): enabled once per project by infra/apis.tf; doctor checks each.
REQUIRED_APIS: tuple[tuple[str, str], ...] = (
    ("aiplatform.googleapis.com", "the function creates PipelineJobs; `history` lists them"),
    ("cloudfunctions.googleapis.com", "the deployer deploys the trigger function"),
    ("run.googleapis.com", "the function runs on Cloud Run; its invoker IAM lives there"),
    ("cloudbuild.googleapis.com", "Cloud Functions builds the function image"),
    ("artifactregistry.googleapis.com", "the function image is stored in gcf-artifacts"),
    ("cloudscheduler.googleapis.com", "the schedules are Cloud Scheduler jobs"),
    ("storage.googleapis.com", "specs and pipeline artifacts live in the bucket"),
    ("iam.googleapis.com", "service accounts, custom roles, actAs"),
    ("iamcredentials.googleapis.com", "`vertex-cron backfill` mints the scheduler SA's ID token"),
    ("cloudresourcemanager.googleapis.com", "project IAM (Terraform) and `doctor`'s permission tests"),
    ("serviceusage.googleapis.com", "`doctor` lists the enabled APIs"),
)


@dataclass(frozen=True)
class Grant:
    """How infra/ grants `identity` its permissions on `scope`.

    ``role`` is the custom role's key in roles.tf (role id ``vertexCron_<role>``) and
    ``terraform`` the address of the iam.tf resource that binds it.
    """

    identity: str
    scope: Scope
    role: str
    terraform: str

    @property
    def role_id(self) -> str:
        return f"vertexCron_{self.role}"


GRANTS: tuple[Grant, ...] = (
    Grant("deployer", Scope.PROJECT, "deployer", "google_project_iam_member.deployer"),
    Grant("deployer", Scope.BUCKET, "bucket_iam_reader", "google_storage_bucket_iam_member.deployer_bucket_iam"),
    Grant("deployer", Scope.SPEC_PREFIX, "spec_writer", "google_storage_bucket_iam_member.deployer_specs"),
    Grant(
        "deployer",
        Scope.PIPELINE_REPOSITORY,
        "template_reader",
        "google_artifact_registry_repository_iam_member.deployer_templates",
    ),
    Grant("deployer", Scope.FUNCTION_SA, "act_as", 'google_service_account_iam_member.deployer_acts_as["function"]'),
    Grant(
        "deployer",
        Scope.SCHEDULER_SA,
        "scheduler_caller",
        "google_service_account_iam_member.deployer_calls_as_scheduler",
    ),
    Grant("deployer", Scope.BUILD_SA, "act_as", 'google_service_account_iam_member.deployer_acts_as["build"]'),
    Grant("function", Scope.PROJECT, "trigger", "google_project_iam_member.function"),
    Grant("function", Scope.SPEC_PREFIX, "object_reader", "google_storage_bucket_iam_member.function_specs"),
    Grant("function", Scope.SWEEP_PREFIX, "object_writer", "google_storage_bucket_iam_member.function_sweep"),
    Grant("function", Scope.WORKLOAD_SA, "act_as", "google_service_account_iam_member.function_acts_as_workload"),
    Grant("workload", Scope.PROJECT, "pipeline_runner", "google_project_iam_member.workload_runs"),
    Grant("workload", Scope.BUCKET, "bucket_reader", "google_storage_bucket_iam_member.workload_bucket"),
    Grant(
        "workload", Scope.PIPELINE_ROOT, "pipeline_root_user", "google_storage_bucket_iam_member.workload_pipeline_root"
    ),
    Grant(
        "workload",
        Scope.PIPELINE_REPOSITORY,
        "template_reader",
        "google_artifact_registry_repository_iam_member.workload_templates",
    ),
    Grant("build", Scope.PROJECT, "log_writer", "google_project_iam_member.build_logs"),
    Grant("build", Scope.FUNCTION_SOURCES, "object_reader", "google_project_iam_member.build_function_sources"),
    Grant(
        "build", Scope.BUILD_REPOSITORY, "image_pusher", "google_artifact_registry_repository_iam_member.build_images"
    ),
)


def grant(identity: str, scope: Scope) -> Grant:
    return next(g for g in GRANTS if g.identity == identity and g.scope is scope)


def role_permissions(role: str) -> frozenset[str]:
    """The permissions of custom role `role`: what each grant of it is for."""
    return frozenset().union(*(names(g.identity, g.scope) for g in GRANTS if g.role == role))


def names(identity: str, scope: Scope | None = None) -> frozenset[str]:
    """The permission names `identity` needs, on `scope` or anywhere."""
    return frozenset(p.name for p in REQUIRED[identity] if scope is None or p.scope is scope)
