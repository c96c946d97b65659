"""`vertex-cron doctor`: find at deploy time what would otherwise fail at 3 a.m.

A checklist of `Item`s, each ✓ (ok), ✗ (fail, with the exact fix: a gcloud command and/or
the infra/ Terraform resource) or – (note: true but not a failure, e.g. not evaluable).

What is checked, and how (only reads; permissions.py is the reference):
- APIs: Service Usage's enabled list against permissions.REQUIRED_APIS.
- Identities: each configured service account exists, and is not a Google default one
  (unless --allow-default-service-account, as for deploy); an unset build SA is a ✗ too,
  since Cloud Build would then run as the project's default one.
- Your permissions: testIamPermissions as the caller on the project, the bucket and each
  service account it must act as. The Artifact Registry repositories schedules' specs are
  published to are named only by the schedules (--spec URIs): a note with the grant, not a
  check (deploy reads them and fails on a 403 naming the URI). It cannot evaluate grants conditioned on an object
  prefix (the bucket is the resource tested), so those are reported as notes.
- The other identities: testIamPermissions only ever tests the caller, so their grants are
  read from the project, bucket and service-account IAM policies, each role expanded to its
  permissions (IAM roles.get), and compared per scope. A conditional binding counts, reported
  as "conditional (not evaluated)". Basic roles (owner/editor) are flagged as excess.
  Group membership is not expanded: only grants to the service account itself count.
  Cloud Scheduler's service agent must still hold its role, or no OIDC token is minted.
- Pipeline roots, per deployed schedule: the root's bucket exists and the workload SA may
  work there (bucket metadata, objects under the root), read from the bucket's and the
  project's IAM policies with their conditions evaluated for the whole root (conditions.py;
  a condition beyond what it reads is a note, never a ✓).
- The deployed function, when there is one: its runtime SA, its environment, and that its
  Cloud Run service checks invoker IAM at all and is invokable by the scheduler SA and by
  no public member.

Every ✗ carries its fix: a gcloud command and/or the infra/ resource, or for a read that
failed, the grant that allows it (or re-running, when the failure was transient).
"""

from __future__ import annotations

import difflib
import enum
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vertex_cron_trigger.spec_uri import gcs_directory_problem

from . import conditions
from . import desired as desired_state
from .config import DeployerSettings, Deployment
from .errors import DeployError, NotFound, PermissionDenied, Unavailable, ValidationError
from .gcp import GoogleCloud
from .models import INVOKER_ROLE, PUBLIC_MEMBERS, Binding
from .observe import managed_jobs
from .permissions import (
    OBJECT_PREFIXES,
    PIPELINE_ROOT_PREFIX,
    REQUIRED,
    REQUIRED_APIS,
    SCHEDULER_AGENT_DOMAIN,
    SCHEDULER_AGENT_ROLE,
    SPEC_PREFIX,
    Scope,
    grant,
    names,
    role_permissions,
    scheduler_agent,
)
from .seam import DoctorCloud
from .validation import check_service_account

# identity -> the settings field naming its service account
IDENTITY_SETTING = {
    "function": "function_sa",
    "scheduler": "scheduler_sa",
    "workload": "workload_sa",
    "build": "build_sa",
}
SA_SCOPE_IDENTITY = {
    Scope.FUNCTION_SA: "function",
    Scope.SCHEDULER_SA: "scheduler",
    Scope.WORKLOAD_SA: "workload",
    Scope.BUILD_SA: "build",
}
BASIC_ROLES = ("roles/owner", "roles/editor")
# Shown in fixes for the caller, whose own member name doctor cannot know.
DEPLOYER_MEMBER = "DEPLOYER"


class Status(str, enum.Enum):
    OK = "ok"
    FAIL = "fail"
    NOTE = "note"


MARKS = {Status.OK: "✓", Status.FAIL: "✗", Status.NOTE: "–"}


@dataclass(frozen=True)
class Item:
    section: str
    check: str
    status: Status
    detail: str = ""
    fix: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "check": self.check,
            "status": self.status.value,
            "detail": self.detail,
            "fix": list(self.fix),
        }


@dataclass(frozen=True)
class Report:
    items: tuple[Item, ...]

    @property
    def failed(self) -> list[Item]:
        return [item for item in self.items if item.status is Status.FAIL]

    def to_json(self) -> dict[str, Any]:
        return {"ok": not self.failed, "failed": len(self.failed), "checks": [i.to_json() for i in self.items]}

    def text(self) -> str:
        lines: list[str] = []
        section = None
        for item in self.items:
            if item.section != section:
                section = item.section
                lines.append(("\n" if lines else "") + section)
            lines.append(f"  {MARKS[item.status]} {item.check}" + (f": {item.detail}" if item.detail else ""))
            label = "fix" if item.status is Status.FAIL else "see"
            lines.extend(f"      {label}: {line}" for line in item.fix)
        lines.append(f"\n{len(self.items)} checks, {len(self.failed)} failed")
        if any(DEPLOYER_MEMBER in line for item in self.failed for line in item.fix):
            lines.append(
                f"{DEPLOYER_MEMBER} = you: user:EMAIL, group:EMAIL or serviceAccount:EMAIL (infra's deployer_member)"
            )
        return "\n".join(lines)


def run(settings: DeployerSettings, cloud: DoctorCloud | None = None) -> Report:
    return Report(tuple(_Doctor(settings.deployment(), cloud or GoogleCloud(settings)).items()))


@dataclass
class _Doctor:
    settings: Deployment
    cloud: DoctorCloud
    _roles: dict[str, frozenset[str]] = field(default_factory=dict)
    # A configured SA that does not exist -> the existing one it is a typo of: its grants are
    # not checked, since their fixes would grant to the typo (the setting is what to fix).
    _misspelt: dict[str, str] = field(default_factory=dict)

    def items(self) -> Iterator[Item]:
        yield from self._apis()
        yield from self._identities()
        yield from self._caller()
        policies = _Policies(self.cloud, self.settings.bucket)
        yield from self._grants(policies)
        yield from self._pipeline_roots(policies)
        yield from self._function()

    # -- sections ------------------------------------------------------------------------

    def _apis(self) -> Iterator[Item]:
        section, project = "APIs", self.settings.project
        try:
            enabled = self.cloud.enabled_services()
        except DeployError as exc:
            yield self._call_failed(section, "enabled APIs", exc, Scope.PROJECT)
            return
        for api, why in REQUIRED_APIS:
            if api in enabled:
                yield Item(section, f"{api} enabled", Status.OK)
            else:
                yield Item(
                    section,
                    f"{api} enabled",
                    Status.FAIL,
                    f"disabled; needed because {why}",
                    (
                        f"gcloud services enable {api} --project={project}",
                        "terraform: google_project_service.required (infra/apis.tf)",
                    ),
                )

    def _identities(self) -> Iterator[Item]:
        section = "Service accounts"
        allow_default = self.settings.allow_default_service_account
        for identity, email in self._configured():
            if email is None:  # only build_sa may be unset (run() requires the others)
                default = (
                    "not set: Cloud Build runs as the project's default build service account "
                    "(usually the Compute Engine default, with broad grants)"
                )
                if allow_default:
                    yield Item(
                        section,
                        f"{identity} SA",
                        Status.NOTE,
                        f"{default}; accepted by --allow-default-service-account",
                    )
                else:
                    yield Item(
                        section,
                        f"{identity} SA",
                        Status.FAIL,
                        f"{default}; --allow-default-service-account would accept that",
                        _use_infra_sa(identity),
                    )
                continue
            try:
                check_service_account(f"{identity} SA", email, allow_default=allow_default)
            except ValidationError as exc:
                yield Item(section, f"{identity} SA {email}", Status.FAIL, exc.reason, _use_infra_sa(identity))
                continue
            try:
                exists = self.cloud.service_account_exists(email)
            except DeployError as exc:
                yield self._call_failed(section, f"{identity} SA {email}", exc, Scope.PROJECT)
                continue
            if exists:
                yield Item(section, f"{identity} SA {email} exists", Status.OK)
                continue
            meant = self._existing_lookalike(email)
            if meant:
                self._misspelt[email] = meant
            yield Item(
                section,
                f"{identity} SA {email} exists",
                Status.FAIL,
                f"does not exist; did you mean {meant}?" if meant else "no such service account",
                (f"set {IDENTITY_SETTING[identity]} to {meant}",)
                if meant
                else (
                    f"gcloud iam service-accounts create {email.split('@')[0]} --project={self.settings.project}",
                    f'terraform: google_service_account.vertex_cron["{identity}"] (infra/service_accounts.tf)',
                ),
            )

    def _misspelt_note(self, section: str, email: str) -> Item:
        meant = self._misspelt[email]
        return Item(section, email, Status.NOTE, f"not checked: no such service account; did you mean {meant}?")

    def _existing_lookalike(self, email: str) -> str | None:
        """An existing account one typo away from `email`: infra's account names (and the other
        configured SAs) in the same domain, close in spelling. A misspelt setting must be fixed,
        not created; doctor checks candidates with the `get` it already uses, never lists."""
        account, _, domain = email.partition("@")
        configured = [getattr(self.settings, setting) or "" for setting in IDENTITY_SETTING.values()]
        known = {f"vertex-cron-{identity}" for identity in IDENTITY_SETTING}
        known |= {other.partition("@")[0] for other in configured if other.endswith(f"@{domain}")}
        for candidate in difflib.get_close_matches(account, sorted(known - {account}), n=3, cutoff=0.8):
            try:
                if self.cloud.service_account_exists(f"{candidate}@{domain}"):
                    return f"{candidate}@{domain}"
            except DeployError:  # cannot tell: fall back to "no such service account"
                return None
        return None

    def _caller(self) -> Iterator[Item]:
        section = "Your permissions (testIamPermissions, as the caller)"
        project, bucket = self.settings.project, self.settings.bucket
        yield from self._tested(
            section,
            f"on project {project}",
            Scope.PROJECT,
            lambda wanted: self.cloud.caller_project_permissions(wanted),
        )
        yield from self._bucket_tested(section, bucket)
        for scope, identity in SA_SCOPE_IDENTITY.items():
            email = getattr(self.settings, IDENTITY_SETTING[identity])
            if names("deployer", scope) and email:
                yield from self._tested(
                    section,
                    f"act as the {identity} SA",
                    scope,
                    functools.partial(self.cloud.caller_service_account_permissions, email),
                )

        yield _pipeline_repository_note(
            section, self._grant_fix("deployer", Scope.PIPELINE_REPOSITORY, DEPLOYER_MEMBER)
        )

    def _bucket_tested(self, section: str, bucket: str) -> Iterator[Item]:
        on_bucket, on_specs = names("deployer", Scope.BUCKET), names("deployer", Scope.SPEC_PREFIX)
        try:
            held = self.cloud.caller_bucket_permissions(bucket, on_bucket | on_specs)
        except NotFound:
            yield Item(
                section,
                f"gs://{bucket} exists",
                Status.FAIL,
                "no such bucket",
                ("terraform: google_storage_bucket.artifacts (infra/bucket.tf)",),
            )
            return
        except DeployError as exc:
            yield self._call_failed(section, f"on gs://{bucket}", exc, Scope.BUCKET)
            return
        missing = on_bucket - held
        yield Item(
            section,
            f"on gs://{bucket}",
            Status.FAIL if missing else Status.OK,
            f"missing {_sorted(missing)}" if missing else "",
            self._grant_fix("deployer", Scope.BUCKET, DEPLOYER_MEMBER) if missing else (),
        )
        unconfirmed = on_specs - held
        where = f"on gs://{bucket}/{SPEC_PREFIX}"
        if unconfirmed:
            yield Item(
                section,
                where,
                Status.NOTE,
                f"{_sorted(unconfirmed)} not confirmed: testIamPermissions cannot evaluate "
                "grants conditioned on an object prefix (infra grants them that way)",
                (f"terraform: {grant('deployer', Scope.SPEC_PREFIX).terraform} (infra/iam.tf)",),
            )
        else:
            yield Item(section, where, Status.OK)

    def _tested(
        self, section: str, check: str, scope: Scope, test: Callable[[frozenset[str]], frozenset[str]]
    ) -> Iterator[Item]:
        wanted = names("deployer", scope)
        try:
            missing = wanted - test(wanted)
        except DeployError as exc:
            if isinstance(exc, NotFound) and scope in SA_SCOPE_IDENTITY:  # its ✗ is under "Service accounts"
                yield Item(section, check, Status.NOTE, "not checked: that service account does not exist")
            else:
                yield self._call_failed(section, check, exc, scope)
            return
        if missing:
            yield Item(
                section,
                check,
                Status.FAIL,
                f"missing {_sorted(missing)}",
                self._grant_fix("deployer", scope, DEPLOYER_MEMBER),
            )
        else:
            yield Item(section, check, Status.OK)

    def _grants(self, policies: _Policies) -> Iterator[Item]:
        for identity, email in self._configured():
            if email is None:
                continue
            section, member = f"{identity} SA grants (read from IAM policies)", f"serviceAccount:{email}"
            if email in self._misspelt:
                yield self._misspelt_note(section, email)
                continue
            try:
                project_bindings = [b for b in policies.project() if member in b.members]
                for scope in dict.fromkeys(p.scope for p in REQUIRED[identity]):
                    yield self._scope_item(section, identity, scope, member, policies, project_bindings)
            except _Unreadable as exc:
                yield self._call_failed(section, "IAM policies readable", exc.error, exc.scope)
                continue
            excess = sorted({b.role for b in project_bindings if b.role in BASIC_ROLES})
            for role in excess:
                yield Item(
                    section,
                    f"no basic role on project {self.settings.project}",
                    Status.FAIL,
                    f"holds {role}: far more than vertex-cron needs",
                    (
                        f"gcloud projects remove-iam-policy-binding {self.settings.project} "
                        f"--member={member} --role={role}",
                    ),
                )
            if not excess:
                yield Item(section, "no basic role (owner/editor) on the project", Status.OK)
        yield from self._scheduler_agent(policies)

    def _scheduler_agent(self, policies: _Policies) -> Iterator[Item]:
        section, project = "Cloud Scheduler service agent", self.settings.project
        check = f"holds {SCHEDULER_AGENT_ROLE} (mints the scheduler SA's OIDC tokens)"
        try:
            bindings = policies.project()
        except _Unreadable as exc:
            yield self._call_failed(section, check, exc.error, exc.scope)
            return
        if any(
            b.role == SCHEDULER_AGENT_ROLE and any(m.endswith(f"@{SCHEDULER_AGENT_DOMAIN}") for m in b.members)
            for b in bindings
        ):
            yield Item(section, check, Status.OK)
            return
        number = f"$(gcloud projects describe {project} --format='value(projectNumber)')"
        yield Item(
            section,
            check,
            Status.FAIL,
            "no such binding: every firing would fail to get its token",
            (
                f"gcloud beta services identity create --service=cloudscheduler.googleapis.com --project={project}",
                f"gcloud projects add-iam-policy-binding {project} "
                f"--member=serviceAccount:{scheduler_agent(number)} --role={SCHEDULER_AGENT_ROLE}",
            ),
        )

    def _scope_item(
        self,
        section: str,
        identity: str,
        scope: Scope,
        member: str,
        policies: _Policies,
        project_bindings: list[Binding],
    ) -> Item:
        check = _describe(scope, self.settings)
        needed = names(identity, scope)
        if scope is Scope.BUILD_REPOSITORY:
            return Item(
                section,
                check,
                Status.NOTE,
                "not checked (the repository's IAM policy is not read)",
                (f"terraform: {grant(identity, scope).terraform} (infra/build.tf, infra/iam.tf)",),
            )
        if scope is Scope.PIPELINE_REPOSITORY:
            return _pipeline_repository_note(section, self._grant_fix(identity, scope, member))
        unconditional = [b for b in project_bindings if b.condition is None]
        if scope is Scope.PROJECT:
            bindings = unconditional
        elif scope is Scope.FUNCTION_SOURCES:
            bindings = project_bindings
        elif scope is Scope.BUCKET:
            bindings = unconditional + [b for b in policies.bucket() if member in b.members and not b.condition]
        elif scope in OBJECT_PREFIXES:
            prefix = OBJECT_PREFIXES[scope]
            bindings = unconditional + [
                b for b in policies.bucket() if member in b.members and self._may_hold(b, prefix)
            ]
        else:  # a service account scope
            target = getattr(self.settings, IDENTITY_SETTING[SA_SCOPE_IDENTITY[scope]])
            try:
                bindings = unconditional + [b for b in policies.service_account(target) if member in b.members]
            except _Unreadable as exc:
                if not isinstance(exc.error, NotFound):
                    raise
                return Item(section, check, Status.NOTE, "not checked: that service account does not exist")
        held = frozenset().union(*(self._role(b.role) for b in bindings if not b.condition))
        conditional = {b.condition: self._role(b.role) & needed for b in bindings if b.condition}
        missing = needed - held - frozenset().union(*conditional.values())
        if missing:
            return Item(
                section, check, Status.FAIL, f"missing {_sorted(missing)}", self._grant_fix(identity, scope, member)
            )
        used = sorted(title for title, perms in conditional.items() if perms - held)
        return Item(section, check, Status.OK, f"conditional (not evaluated): {', '.join(used)}" if used else "")

    def _may_hold(self, binding: Binding, prefix: str) -> bool:
        """False for a bucket binding whose condition confines it to objects elsewhere (the
        function's spec-prefix grant says nothing of the sweep prefix); True when it covers
        the prefix's objects, or doctor cannot read the condition (shown as not evaluated)."""
        if binding.expression is None:
            return True
        try:
            return conditions.holds(
                binding.expression, bucket=self.settings.bucket, prefix=prefix, kind=conditions.Request.OBJECT
            )
        except conditions.Unevaluable:
            return True

    def _pipeline_roots(self, policies: _Policies) -> Iterator[Item]:
        section = "Pipeline roots (where each schedule's runs write, as the workload SA)"
        if self.settings.workload_sa in self._misspelt:
            yield self._misspelt_note(section, self.settings.workload_sa)
            return
        try:
            jobs = managed_jobs(self.cloud)
        except DeployError as exc:
            yield self._call_failed(section, "deployed schedules readable", exc, Scope.PROJECT)
            return
        if not jobs:
            yield Item(section, "schedules", Status.NOTE, "none deployed yet: each deploy's root is checked here")
            return
        for name in sorted(jobs):
            schedule = desired_state.schedule_of(name)
            if schedule is None:
                continue  # the catch-up sweep's job: it runs no pipeline
            body = jobs[name].fields.get("http_target.body")
            root = body.get("pipeline_root") if isinstance(body, dict) else None
            if not isinstance(root, str) or gcs_directory_problem(root):
                yield Item(
                    section,
                    f"{schedule}: pipeline root",
                    Status.FAIL,
                    "its Scheduler job carries no gs:// pipeline_root vertex-cron wrote",
                    (f"vertex-cron deploy {schedule} ... (or `vertex-cron apply -f`) rewrites its job",),
                )
                continue
            yield self._pipeline_root(section, f"{schedule}: {root}", root, policies)

    def _pipeline_root(self, section: str, check: str, root: str, policies: _Policies) -> Item:
        bucket, _, path = root.removeprefix("gs://").partition("/")
        prefix = path.rstrip("/") + "/" if path.strip("/") else ""
        member = f"serviceAccount:{self.settings.workload_sa}"
        try:
            bindings = [b for b in policies.project() + policies.bucket(bucket) if member in b.members]
            permissions = {b: self._role(b.role) for b in bindings}
        except _Unreadable as exc:
            if isinstance(exc.error, NotFound) and exc.scope is Scope.BUCKET:
                return Item(
                    section,
                    check,
                    Status.FAIL,
                    f"no such bucket gs://{bucket}: every run would fail at its first step",
                    self._root_fixes(bucket, prefix, missing_bucket=True),
                )
            on_bucket = bucket if exc.scope is Scope.BUCKET else None
            return self._call_failed(section, check, exc.error, exc.scope, bucket=on_bucket)
        needed = names("workload", Scope.BUCKET) | names("workload", Scope.PIPELINE_ROOT)
        unevaluated: dict[str, set[str]] = {}
        granted: set[str] = set()
        for binding, held in permissions.items():
            for permission in needed & held:
                if binding.expression is None:
                    granted.add(permission)
                    continue
                try:
                    kind = conditions.request_kind(permission)
                    if conditions.holds(binding.expression, bucket=bucket, prefix=prefix, kind=kind):
                        granted.add(permission)
                except conditions.Unevaluable:
                    unevaluated.setdefault(permission, set()).add(binding.condition or binding.expression)
        missing = needed - granted - set(unevaluated)
        if missing:
            return Item(
                section,
                check,
                Status.FAIL,
                f"the workload SA lacks {_sorted(missing)} there: runs would fail to write",
                self._root_fixes(bucket, prefix, missing_bucket=False, missing=frozenset(missing)),
            )
        if set(unevaluated) - granted:
            titles = sorted({t for p, ts in unevaluated.items() if p not in granted for t in ts})
            return Item(section, check, Status.NOTE, f"depends on conditions doctor cannot read: {', '.join(titles)}")
        return Item(section, check, Status.OK)

    def _root_fixes(
        self, bucket: str, prefix: str, *, missing_bucket: bool, missing: frozenset[str] = frozenset()
    ) -> tuple[str, ...]:
        s = self.settings
        default = f"gs://{s.bucket}/{PIPELINE_ROOT_PREFIX}{s.project}/{s.region}/NAME"
        redeploy = f"or redeploy the schedule without --pipeline-root: its runs then write under {default}"
        if missing_bucket:
            return (
                f"gcloud storage buckets create gs://{bucket} --location={s.region} --project={s.project}",
                redeploy,
            )
        inside = bucket == s.bucket and prefix.startswith(PIPELINE_ROOT_PREFIX)
        fixes: list[str] = []
        member = f"serviceAccount:{s.workload_sa}"
        for scope in (Scope.BUCKET, Scope.PIPELINE_ROOT):
            if not missing & names("workload", scope):
                continue
            if inside:  # infra's own grant is what is missing
                fixes.extend(self._grant_fix("workload", scope, member))
                continue
            role = f"--member={member} --role=projects/{s.project}/roles/{grant('workload', scope).role_id}"
            command = f"gcloud storage buckets add-iam-policy-binding gs://{bucket} {role}"
            if scope is Scope.PIPELINE_ROOT:
                condition = _prefix_condition(bucket, prefix, listing=True)
                command += f" --condition='^;^title={scope.value};expression={condition}'"
            fixes.append(command)
        return tuple(fixes) if inside else (*fixes, redeploy)

    def _function(self) -> Iterator[Item]:
        section, settings = "Deployed function", self.settings
        name = desired_state.function_name(settings.project, settings.region, settings.function_name)
        try:
            function = self.cloud.get_function(name)
        except DeployError as exc:
            yield self._call_failed(section, settings.function_name, exc, Scope.PROJECT)
            return
        if function is None:
            yield Item(
                section,
                settings.function_name,
                Status.NOTE,
                "not deployed yet: the first `vertex-cron deploy` creates it",
            )
            return
        redeploy = ("vertex-cron deploy NAME ... (any schedule) converges the function on the settings",)
        runs_as = function.fields.get("service_config.service_account_email")
        yield Item(
            section,
            f"runs as the function SA {settings.function_sa}",
            Status.OK if runs_as == settings.function_sa else Status.FAIL,
            "" if runs_as == settings.function_sa else f"runs as {runs_as}",
            () if runs_as == settings.function_sa else redeploy,
        )
        wanted = desired_state.function_environment(settings)
        actual = function.fields.get("service_config.environment_variables") or {}
        differing = sorted(k for k, v in wanted.items() if not _environment_matches(k, v, actual.get(k)))
        yield Item(
            section,
            "environment matches the settings",
            Status.FAIL if differing else Status.OK,
            f"differs: {', '.join(differing)}" if differing else "",
            redeploy if differing else (),
        )
        yield from self._invokers(section, function.service)

    def _invokers(self, section: str, service: str | None) -> Iterator[Item]:
        settings = self.settings
        if not service:
            yield Item(section, "Cloud Run service", Status.NOTE, "not created yet (build still running?)")
            return
        short = service.rsplit("/", 1)[-1]
        run_flags = f"--region={settings.region} --project={settings.project}"
        check = "Cloud Run checks who invokes it (invoker IAM check on)"
        try:
            disabled = self.cloud.invoker_iam_disabled(service)
        except DeployError as exc:
            yield self._call_failed(section, check, exc, Scope.PROJECT)
        else:
            yield Item(
                section,
                check,
                Status.FAIL if disabled else Status.OK,
                "disabled: anyone can send a token and start runs as the workload SA" if disabled else "",
                (f"gcloud run services update {short} --invoker-iam-check {run_flags}",) if disabled else (),
            )
        try:
            members = self.cloud.invoker_members(service)
        except DeployError as exc:
            yield self._call_failed(section, "invoker policy readable", exc, Scope.PROJECT)
            return
        public = sorted(members & PUBLIC_MEMBERS)
        yield Item(
            section,
            "not public (no allUsers/allAuthenticatedUsers invoker)",
            Status.FAIL if public else Status.OK,
            f"{_sorted(public)} may invoke it" if public else "",
            tuple(
                f"gcloud run services remove-iam-policy-binding {short} {run_flags} --member={m} --role={INVOKER_ROLE}"
                for m in public
            ),
        )
        scheduler = f"serviceAccount:{settings.scheduler_sa}"
        yield Item(
            section,
            f"scheduler SA may invoke it ({INVOKER_ROLE})",
            Status.OK if scheduler in members else Status.FAIL,
            "" if scheduler in members else "Scheduler's calls would be refused (403)",
            ()
            if scheduler in members
            else (
                f"gcloud run services add-iam-policy-binding {short} {run_flags} "
                f"--member={scheduler} --role={INVOKER_ROLE}",
                "or re-run `vertex-cron deploy`, which grants it",
            ),
        )

    # -- helpers -----------------------------------------------------------------------------

    def _configured(self) -> Iterator[tuple[str, str | None]]:
        for identity, setting in IDENTITY_SETTING.items():
            yield identity, getattr(self.settings, setting)

    def _role(self, role: str) -> frozenset[str]:
        if role not in self._roles:
            try:
                self._roles[role] = self.cloud.role_permissions(role)
            except DeployError as exc:
                raise _Unreadable(exc, Scope.PROJECT) from exc
        return self._roles[role]

    def _call_failed(
        self, section: str, check: str, exc: DeployError, scope: Scope, *, bucket: str | None = None
    ) -> Item:
        """A read doctor needs failed. `scope` is where infra grants the deployer the
        permission for it: the fix when it was refused (on `bucket`, for another bucket
        than the artifact bucket)."""
        if isinstance(exc, Unavailable):
            fix: tuple[str, ...] = ("re-run `vertex-cron doctor`: the failure was transient (doctor only reads)",)
        elif isinstance(exc, PermissionDenied) and exc.reason.endswith("authentication failed"):
            fix = ("gcloud auth application-default login",)
        elif isinstance(exc, PermissionDenied):
            fix = self._grant_fix("deployer", scope, DEPLOYER_MEMBER, bucket=bucket)
        else:  # Google refused the request itself: a setting names something that is not there
            fix = (
                "check project, region and bucket in vertex-cron.toml (or their --flags / VERTEX_CRON_* "
                "variables) against `terraform output`, then re-run vertex-cron doctor",
            )
        return Item(section, check, Status.FAIL, f"could not check: {exc.reason}", fix)

    def _grant_fix(self, identity: str, scope: Scope, member: str, *, bucket: str | None = None) -> tuple[str, ...]:
        g = grant(identity, scope)
        s = self.settings
        role = f"--member={member} --role=projects/{s.project}/roles/{g.role_id}"
        if bucket not in (None, s.bucket):  # infra/ does not manage that bucket: gcloud only
            return (f"gcloud storage buckets add-iam-policy-binding gs://{bucket} {role}",)
        command = {
            Scope.PROJECT: f"gcloud projects add-iam-policy-binding {s.project} {role}",
            Scope.BUCKET: f"gcloud storage buckets add-iam-policy-binding gs://{s.bucket} {role}",
            Scope.BUILD_REPOSITORY: f"gcloud artifacts repositories add-iam-policy-binding gcf-artifacts "
            f"--location={s.region} --project={s.project} {role}",
            Scope.PIPELINE_REPOSITORY: "gcloud artifacts repositories add-iam-policy-binding REPOSITORY "
            f"--location=LOCATION --project={s.project} {role}",
        }.get(scope)
        if scope in OBJECT_PREFIXES:
            condition = _prefix_condition(
                s.bucket, OBJECT_PREFIXES[scope], listing="storage.objects.list" in role_permissions(g.role)
            )
            command = (
                f"gcloud storage buckets add-iam-policy-binding gs://{s.bucket} {role} "
                f"--condition='^;^title={scope.value};expression={condition}'"
            )
        elif scope in SA_SCOPE_IDENTITY:
            target = getattr(s, IDENTITY_SETTING[SA_SCOPE_IDENTITY[scope]])
            command = f"gcloud iam service-accounts add-iam-policy-binding {target} --project={s.project} {role}"
        terraform = f"terraform: {g.terraform} (infra/iam.tf)"
        return (command, terraform) if command else (terraform,)


class _Unreadable(Exception):
    """Reading an IAM policy or role failed; `scope` is where infra grants the deployer
    reading it."""

    def __init__(self, error: DeployError, scope: Scope) -> None:
        super().__init__(error.reason)
        self.error, self.scope = error, scope


class _Policies:
    """Each IAM policy read once; a failed read raises _Unreadable, again without a call."""

    def __init__(self, cloud: DoctorCloud, bucket: str) -> None:
        self._cloud, self._bucket = cloud, bucket
        self._read: dict[str, list[Binding] | _Unreadable] = {}

    def _once(self, key: str, read: Callable[[], list[Binding]], scope: Scope = Scope.PROJECT) -> list[Binding]:
        if key not in self._read:
            try:
                self._read[key] = read()
            except DeployError as exc:
                self._read[key] = _Unreadable(exc, scope)
        result = self._read[key]
        if isinstance(result, _Unreadable):
            raise result
        return result

    def project(self) -> list[Binding]:
        return self._once("project", self._cloud.project_bindings)

    def bucket(self, name: str | None = None) -> list[Binding]:
        """The bindings of bucket `name`, the artifact bucket by default."""
        bucket = name or self._bucket
        return self._once(f"gs://{bucket}", lambda: self._cloud.bucket_bindings(bucket), Scope.BUCKET)

    def service_account(self, email: str) -> list[Binding]:
        return self._once(email, lambda: self._cloud.service_account_bindings(email))


def _prefix_condition(bucket: str, prefix: str, *, listing: bool) -> str:
    """The CEL condition infra/iam.tf puts on a prefix grant."""
    objects = f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")'
    if not listing:
        return objects
    return f'{objects} || api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("{prefix}")'


def _describe(scope: Scope, settings: Deployment) -> str:
    if scope in OBJECT_PREFIXES:
        return f"on gs://{settings.bucket}/{OBJECT_PREFIXES[scope]}"
    if scope in SA_SCOPE_IDENTITY:
        return f"act as the {SA_SCOPE_IDENTITY[scope]} SA"
    return {
        Scope.PROJECT: f"on project {settings.project}",
        Scope.BUCKET: f"on gs://{settings.bucket}",
        Scope.FUNCTION_SOURCES: "on Cloud Functions' source bucket (conditional project grant)",
        Scope.BUILD_REPOSITORY: "on the gcf-artifacts repository",
        Scope.PIPELINE_REPOSITORY: "on the Artifact Registry repositories specs are published to",
    }[scope]


def _pipeline_repository_note(section: str, fix: tuple[str, ...]) -> Item:
    """Which repositories the schedules read is named only by their --spec URIs; deploy reads
    them with the deployer's credentials and stops at a 403 naming the URI."""
    return Item(
        section,
        "on the Artifact Registry repositories specs are published to",
        Status.NOTE,
        "not checked: the schedules' --spec URIs name them; needed only for specs published there",
        fix,
    )


def _use_infra_sa(identity: str) -> tuple[str, ...]:
    return (
        f"set {IDENTITY_SETTING[identity]} to vertex-cron's own (`terraform output -raw {identity}_sa`)",
        f'terraform: google_service_account.vertex_cron["{identity}"] (infra/service_accounts.tf)',
    )


def _sorted(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _environment_matches(key: str, wanted: str | None, actual: str | None) -> bool:
    if key == "VERTEX_CRON_ALLOWED_INVOKERS":
        # Deploy allows every scheduler SA its jobs still use (planner.with_invokers), so
        # while an SA rotation rolls out the list holds more than the configured one.
        return wanted in (actual or "").split(",")
    return actual == wanted
