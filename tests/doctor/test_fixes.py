"""Every ✗ doctor prints is followed by its fix: each way a check can fail, walked.

Against a fake of doctor's reads (answered from the same provisioned-project state as the
emulator tests), so every failure of every read is cheap to make. A guard at the end reads
doctor.py itself: each place that builds a ✗ must have been reached by some scenario here,
so a new ✗ path without a scenario (and so without a checked fix) fails this file.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from doctor_project import DEPLOYER, PROJECT, REGION, SA, member
from vertex_cron import desired, doctor
from vertex_cron.config import DeployerSettings
from vertex_cron.errors import DeployError, NotFound, PermissionDenied, Unavailable
from vertex_cron.models import JOB_DESCRIPTION, Binding, ObservedFunction, ObservedJob
from vertex_cron.permissions import GRANTS, REQUIRED_APIS, SCHEDULER_AGENT_ROLE
from vertex_cron.seam import DoctorCloud
from vertex_cron_local.provision import InfraState, infra_state

BUCKET = "demo-project-vertex-cron"
SETTINGS = DeployerSettings(
    project=PROJECT,
    region=REGION,
    bucket=BUCKET,
    function_sa=SA["function"],
    scheduler_sa=SA["scheduler"],
    workload_sa=SA["workload"],
    build_sa=SA["build"],
)
SERVICE = f"projects/{PROJECT}/locations/{REGION}/services/vertex-cron-trigger"
_BUCKET_RESOURCE = f"projects/_/buckets/{BUCKET}"
DEFAULT_ROOT = desired.default_pipeline_root(SETTINGS.deployment(), "nightly")


def scheduled(**roots: Any) -> dict[str, ObservedJob]:
    """Managed Scheduler jobs, schedule -> the pipeline_root in its body."""
    return {
        desired.job_name(PROJECT, REGION, name): ObservedJob(
            desired.job_name(PROJECT, REGION, name),
            {"description": JOB_DESCRIPTION, "http_target.body": {"pipeline_root": root}},
        )
        for name, root in roots.items()
    }


def provisioned(**kwargs: Any) -> InfraState:
    return infra_state(
        project=PROJECT, region=REGION, bucket=BUCKET, service_accounts=SA, deployer_member=DEPLOYER, **kwargs
    )


def deployed_function(settings: DeployerSettings = SETTINGS, **fields: Any) -> ObservedFunction:
    return ObservedFunction(
        name=desired.function_name(PROJECT, REGION, settings.function_name),
        fields={
            "service_config.service_account_email": settings.function_sa,
            "service_config.environment_variables": desired.function_environment(settings.deployment()),
            **fields,
        },
        uri="https://vertex-cron-trigger.example",
        service=SERVICE,
    )


@dataclass
class FakeCloud:
    """The reads doctor makes through the seam (seam.DoctorCloud), answered from `state`;
    `fail[method] = error` makes that read raise."""

    state: InfraState
    function: ObservedFunction | None = None
    invokers: frozenset[str] = frozenset({f"serviceAccount:{SA['scheduler']}"})
    invoker_check_off: bool = False
    jobs: Mapping[str, ObservedJob] = field(default_factory=lambda: scheduled(nightly=DEFAULT_ROOT))
    refused_buckets: frozenset[str] | set[str] = frozenset()  # whose IAM policy the caller may not read
    fail: Mapping[str, DeployError] = field(default_factory=dict)

    def _answer(self, method: str, value: Any) -> Any:
        if method in self.fail:
            raise self.fail[method]
        return value

    def _sa(self, email: str) -> str:
        if email not in self.state.service_accounts:
            raise NotFound(f"service account {email}: not found")
        return f"projects/{PROJECT}/serviceAccounts/{email}"

    def _held(self, resource: str, wanted: Iterable[str]) -> frozenset[str]:
        return self.state.caller_permissions.get(resource, frozenset()) & frozenset(wanted)

    def _bindings(self, resource: str) -> list[Binding]:
        if resource not in self.state.policies and resource.startswith("projects/_/buckets/"):
            raise NotFound(f"read the IAM policy of gs://{resource.rsplit('/', 1)[-1]}: not found")
        return [
            Binding(
                b["role"],
                frozenset(b["members"]),
                (b.get("condition") or {}).get("title"),
                (b.get("condition") or {}).get("expression"),
            )
            for b in self.state.policies.get(resource, ())
        ]

    def enabled_services(self) -> frozenset[str]:
        return self._answer("enabled_services", self.state.apis)

    def service_account_exists(self, email: str) -> bool:
        return self._answer("service_account_exists", email in self.state.service_accounts)

    def role_permissions(self, role: str) -> frozenset[str]:
        return self._answer("role_permissions", self.state.roles.get(role, frozenset()))

    def caller_project_permissions(self, wanted: Iterable[str]) -> frozenset[str]:
        return self._answer("caller_project_permissions", self._held(f"projects/{PROJECT}", wanted))

    def caller_bucket_permissions(self, bucket: str, wanted: Iterable[str]) -> frozenset[str]:
        return self._answer("caller_bucket_permissions", self._held(f"projects/_/buckets/{bucket}", wanted))

    def caller_service_account_permissions(self, email: str, wanted: Iterable[str]) -> frozenset[str]:
        self._answer("caller_service_account_permissions", None)
        return self._held(self._sa(email), wanted)

    def project_bindings(self) -> list[Binding]:
        return self._answer("project_bindings", self._bindings(f"projects/{PROJECT}"))

    def bucket_bindings(self, bucket: str) -> list[Binding]:
        if bucket in self.refused_buckets:
            raise PermissionDenied(f"read the IAM policy of gs://{bucket}: permission denied")
        return self._answer("bucket_bindings", self._bindings(f"projects/_/buckets/{bucket}"))

    def service_account_bindings(self, email: str) -> list[Binding]:
        self._answer("service_account_bindings", None)
        return self._bindings(self._sa(email))

    def get_function(self, name: str) -> ObservedFunction | None:
        return self._answer("get_function", self.function)

    def invoker_members(self, service: str) -> frozenset[str]:
        return self._answer("invoker_members", self.invokers)

    def invoker_iam_disabled(self, service: str) -> bool:
        return self._answer("invoker_iam_disabled", self.invoker_check_off)

    def list_jobs(self) -> Mapping[str, ObservedJob]:
        return self._answer("list_jobs", self.jobs)


READS = [name for name, value in vars(FakeCloud).items() if not name.startswith("_") and callable(value)]


def test_the_fake_answers_every_read_of_doctors_seam():
    assert isinstance(FakeCloud(provisioned()), DoctorCloud)


def without(
    state: InfraState, resource: str, *, roles: Iterable[str] = (), permissions: Iterable[str] = ()
) -> InfraState:
    """`state` with `roles` unbound on `resource`, and the caller holding less there."""
    policies = {
        **state.policies,
        resource: tuple(b for b in state.policies.get(resource, ()) if b["role"] not in roles),
    }
    caller = {
        **state.caller_permissions,
        resource: state.caller_permissions.get(resource, frozenset()) - set(permissions),
    }
    return replace(state, policies=policies, caller_permissions=caller)


def with_binding(state: InfraState, resource: str, binding: dict[str, Any]) -> InfraState:
    return replace(state, policies={**state.policies, resource: (*state.policies.get(resource, ()), binding)})


# name -> (cloud, settings): a project broken in one way
SCENARIOS: dict[str, Callable[[], tuple[FakeCloud, DeployerSettings]]] = {
    "a disabled API": lambda: (
        FakeCloud(replace(provisioned(), apis=provisioned().apis - {REQUIRED_APIS[0][0]})),
        SETTINGS,
    ),
    "a missing service account": lambda: (
        FakeCloud(replace(provisioned(), service_accounts=provisioned().service_accounts - {SA["scheduler"]})),
        SETTINGS,
    ),
    "a default service account": lambda: (
        FakeCloud(provisioned()),
        replace(SETTINGS, workload_sa="123456789012-compute@developer.gserviceaccount.com"),
    ),
    "a malformed service account": lambda: (
        FakeCloud(provisioned()),
        replace(SETTINGS, function_sa="function@nowhere"),
    ),
    "no build service account": lambda: (FakeCloud(provisioned()), replace(SETTINGS, build_sa=None)),
    "a missing bucket": lambda: (
        FakeCloud(provisioned(), fail={"caller_bucket_permissions": NotFound("gs://b: not found")}),
        SETTINGS,
    ),
    "the caller lacks a bucket permission": lambda: (
        FakeCloud(without(provisioned(), _BUCKET_RESOURCE, permissions={"storage.buckets.getIamPolicy"})),
        SETTINGS,
    ),
    "the caller lacks a project permission": lambda: (
        FakeCloud(without(provisioned(), f"projects/{PROJECT}", permissions={"cloudscheduler.jobs.create"})),
        SETTINGS,
    ),
    "a basic role": lambda: (
        FakeCloud(
            with_binding(provisioned(), f"projects/{PROJECT}", {"role": "roles/owner", "members": [member("workload")]})
        ),
        SETTINGS,
    ),
    "no Scheduler service agent": lambda: (
        FakeCloud(without(provisioned(), f"projects/{PROJECT}", roles={SCHEDULER_AGENT_ROLE})),
        SETTINGS,
    ),
    "the function runs as another SA": lambda: (
        FakeCloud(
            provisioned(),
            function=deployed_function(
                **{"service_config.service_account_email": f"other@{PROJECT}.iam.gserviceaccount.com"}
            ),
        ),
        SETTINGS,
    ),
    "the function's environment differs": lambda: (
        FakeCloud(provisioned(), function=deployed_function(replace(SETTINGS, bucket="another-bucket"))),
        SETTINGS,
    ),
    "a public function": lambda: (
        FakeCloud(provisioned(), function=deployed_function(), invokers=frozenset({"allUsers", member("scheduler")})),
        SETTINGS,
    ),
    "the scheduler SA may not invoke": lambda: (
        FakeCloud(provisioned(), function=deployed_function(), invokers=frozenset()),
        SETTINGS,
    ),
    "the invoker IAM check is off": lambda: (
        FakeCloud(provisioned(), function=deployed_function(), invoker_check_off=True),
        SETTINGS,
    ),
    "a pipeline root outside the workload SA's grants": lambda: (
        FakeCloud(provisioned(), jobs=scheduled(nightly=f"gs://{BUCKET}/elsewhere")),
        SETTINGS,
    ),
    "a pipeline root in a bucket that does not exist": lambda: (
        FakeCloud(provisioned(), jobs=scheduled(nightly="gs://no-such-bucket/root")),
        SETTINGS,
    ),
    "a pipeline root in a bucket whose policy the caller may not read": lambda: (
        FakeCloud(provisioned(), jobs=scheduled(nightly="gs://other-bucket/root"), refused_buckets={"other-bucket"}),
        SETTINGS,
    ),
    "a job without a pipeline root": lambda: (
        FakeCloud(
            provisioned(),
            jobs={desired.job_name(PROJECT, REGION, "x"): ObservedJob("x", {"description": JOB_DESCRIPTION})},
        ),
        SETTINGS,
    ),
    **{
        f"no grant {g.identity} on {g.scope.value}": (
            lambda g=g: (FakeCloud(provisioned(grants=[other for other in GRANTS if other != g])), SETTINGS)
        )
        for g in GRANTS
    },
}

# kind -> what gcp.py raises for it
ERRORS: dict[str, Callable[[], DeployError]] = {
    "refused": lambda: PermissionDenied("the read: permission denied"),
    "unauthenticated": lambda: PermissionDenied("the read: authentication failed"),
    "transient": lambda: Unavailable("the read: Google Cloud is unavailable; re-running is safe"),
    "not found": lambda: NotFound("the read: not found"),
    "invalid": lambda: DeployError("the read: Invalid resource name"),
}
for _read in READS:
    for _kind, _error in ERRORS.items():
        SCENARIOS[f"{_read} {_kind}"] = lambda r=_read, e=_error: (
            FakeCloud(provisioned(), function=deployed_function(), fail={r: e()}),
            SETTINGS,
        )


@dataclass(frozen=True)
class Walked:
    reports: dict[str, doctor.Report]
    fail_lines: frozenset[int]  # lines of doctor.py on the stack whenever a ✗ Item was made


@pytest.fixture(scope="module")
def walked() -> Walked:
    """Every scenario run once, noting where in doctor.py each ✗ was made."""
    lines: set[int] = set()

    class RecordingItem(doctor.Item):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            frame = sys._getframe(1) if self.status is doctor.Status.FAIL else None
            while frame is not None:
                if frame.f_code.co_filename == doctor.__file__:
                    lines.add(frame.f_lineno)
                frame = frame.f_back

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(doctor, "Item", RecordingItem)
        reports = {name: run_doctor(*scenario()) for name, scenario in SCENARIOS.items()}
    return Walked(reports, frozenset(lines))


def run_doctor(cloud: FakeCloud, settings: DeployerSettings) -> doctor.Report:
    return doctor.run(settings, cloud)  # type: ignore[arg-type]


def test_the_provisioned_project_passes():
    report = run_doctor(FakeCloud(provisioned(), function=deployed_function()), SETTINGS)
    assert not report.failed, report.text()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_failure_prints_its_fix(walked, scenario):
    report = walked.reports[scenario]

    lines = report.text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  ✗ "):
            assert lines[i + 1].startswith("      fix: "), f"no fix under {line!r}\n{report.text()}"
    assert all(item.fix for item in report.failed)


@pytest.mark.parametrize(
    "error, fix",
    [
        (
            "refused",
            [
                "gcloud storage buckets add-iam-policy-binding gs://demo-project-vertex-cron --member=DEPLOYER "
                "--role=projects/demo-project/roles/vertexCron_bucket_iam_reader",
                "terraform: google_storage_bucket_iam_member.deployer_bucket_iam (infra/iam.tf)",
            ],
        ),
        ("unauthenticated", ["gcloud auth application-default login"]),
        ("transient", ["re-run `vertex-cron doctor`: the failure was transient (doctor only reads)"]),
    ],
)
def test_a_failed_read_names_the_grant_that_allows_it(error, fix):
    report = run_doctor(FakeCloud(provisioned(), fail={"bucket_bindings": ERRORS[error]()}), SETTINGS)

    failed = {(item.section, item.check): list(item.fix) for item in report.failed}
    # the function and workload SAs have bucket grants; scheduler and build have none there;
    # the schedule's pipeline root is in that bucket
    assert failed == {
        **{
            (f"{identity} SA grants (read from IAM policies)", "IAM policies readable"): fix
            for identity in ("function", "workload")
        },
        ("Pipeline roots (where each schedule's runs write, as the workload SA)", f"nightly: {DEFAULT_ROOT}"): fix,
    }


def test_a_default_sa_is_accepted_when_allowed_as_deploy_accepts_it():
    default = "123456789012-compute@developer.gserviceaccount.com"
    state = replace(provisioned(), service_accounts=provisioned().service_accounts | {default})
    report = run_doctor(FakeCloud(state), replace(SETTINGS, workload_sa=default, allow_default_service_account=True))

    assert f"  ✓ workload SA {default} exists" in report.text().splitlines()
    assert not [i for i in report.failed if i.section == "Service accounts"]


def test_every_place_doctor_makes_a_failure_is_walked(walked):
    tree = ast.parse(Path(doctor.__file__).read_text())
    sites = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (
                isinstance(node.func, ast.Name)
                and node.func.id == "Item"
                and any(isinstance(n, ast.Attribute) and n.attr == "FAIL" for n in ast.walk(node))
            )
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "_call_failed")
        )
    ]
    assert sites
    unwalked = [
        node.lineno for node in sites if not any(node.lineno <= line <= node.end_lineno for line in walked.fail_lines)
    ]
    assert not unwalked, f"doctor.py makes a ✗ at line(s) {unwalked} that no scenario here reaches"


def test_a_root_granted_only_under_a_condition_doctor_cannot_read_is_a_note_not_a_pass():
    pipeline_root_grant = next(g for g in GRANTS if g.identity == "workload" and g.role == "pipeline_root_user")
    state = with_binding(
        provisioned(grants=[g for g in GRANTS if g != pipeline_root_grant]),
        _BUCKET_RESOURCE,
        {
            "role": f"projects/{PROJECT}/roles/vertexCron_pipeline_root_user",
            "members": [member("workload")],
            "condition": {"title": "not-json", "expression": '!resource.name.endsWith(".json")'},
        },
    )
    report = run_doctor(FakeCloud(state), SETTINGS)

    (item,) = [i for i in report.items if i.check == f"nightly: {DEFAULT_ROOT}"]
    assert (item.status, item.detail) == (doctor.Status.NOTE, "depends on conditions doctor cannot read: not-json")
