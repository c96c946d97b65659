"""IAM v1 (service accounts, roles) and the IAM policy model shared with Resource Manager.

Like the real API (iam.googleapis.com/v1):
- `GET  /v1/projects/P/serviceAccounts/EMAIL` (P may be `-`): the account, or 404.
- `POST /v1/projects/P/serviceAccounts/EMAIL:getIamPolicy` (`options.requestedPolicyVersion`
  in the query, empty body) and `:testIamPermissions` (TestIamPermissionsRequest body).
- `GET  /v1/roles/ROLE` and `GET /v1/projects/P/roles/ROLE`: a role with `includedPermissions`.
- `POST /v1/projects/-/serviceAccounts/EMAIL:generateIdToken` (IAM Credentials, same path on
  iamcredentials.googleapis.com): an ID token of EMAIL from the emulator's local issuer.

State tests set up directly (no HTTP): `add_service_account(project, email)`,
`put_role(name, permissions)`, `set_policy(resource, bindings)` (also for projects), and
`caller_permissions[resource] = {...}`: what the anonymous caller holds on a resource
("projects/P", "projects/P/serviceAccounts/EMAIL"). testIamPermissions answers from that
knob only, never from policies: the caller's own identity is not a member the emulator knows.

Predefined roles are a small built-in catalogue: the basic roles (owner and editor hold
every permission vertex-cron lists; editor cannot set IAM), `roles/viewer`,
`roles/run.invoker` and `roles/iam.serviceAccountUser`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .common import ApiError, canonical, deep, invalid, not_found, parse_body, project_number, short_hash

if TYPE_CHECKING:
    from .server import Request

_SA = r"projects/(?P<project>[^/:]+)/serviceAccounts/(?P<email>[^/:]+)"
_MAX_TESTED_PERMISSIONS = 100  # the real APIs refuse larger testIamPermissions requests
_GENERATE_ID_TOKEN_FIELDS = frozenset({"audience", "delegates", "includeEmail", "organizationNumberIncluded"})
_PERMISSION_RE = re.compile(r"^[a-z][a-zA-Z0-9]*\.[a-zA-Z0-9]+\.[a-zA-Z0-9]+$")


def _builtin_roles() -> dict[str, list[str]]:
    from vertex_cron.permissions import REQUIRED

    everything = sorted({p.name for permissions in REQUIRED.values() for p in permissions})
    return {
        "roles/owner": everything,
        "roles/editor": [p for p in everything if not p.endswith(".setIamPolicy")],
        "roles/viewer": [p for p in everything if p.endswith((".get", ".list"))],
        "roles/run.invoker": ["run.routes.invoke"],
        "roles/iam.serviceAccountUser": ["iam.serviceAccounts.actAs", "iam.serviceAccounts.get"],
    }


class IamMixin:
    """Service accounts, roles, and IAM policies of projects and service accounts."""

    _state: dict[str, Any]
    _lock: Any
    caller_permissions: dict[str, set[str]]
    oidc_issuer: Any

    def _touch(self) -> None:
        raise NotImplementedError

    def _iam_routes(self) -> list[tuple[str, str, Any, set[str], str | None]]:
        return [
            ("GET", rf"/v1/{_SA}", self._sa_get, set(), None),
            ("POST", rf"/v1/{_SA}:getIamPolicy", self._sa_get_iam_policy, {"options"}, "GetIamPolicyRequest"),
            (
                "POST",
                rf"/v1/{_SA}:testIamPermissions",
                self._sa_test_iam_permissions,
                set(),
                "TestIamPermissionsRequest",
            ),
            ("POST", rf"/v1/{_SA}:generateIdToken", self._sa_generate_id_token, set(), None),
            ("GET", r"/v1/(?P<name>roles/[^/:]+)", self._role_get, {"view"}, None),
            ("GET", r"/v1/(?P<name>projects/[^/:]+/roles/[^/:]+)", self._role_get, {"view"}, None),
        ]

    # -- set-up (tests) ------------------------------------------------------------------

    def add_service_account(self, project: str, email: str) -> None:
        account_id = email.split("@", 1)[0]
        number = project_number(project)
        with self._lock:
            self._state["serviceAccounts"][email] = {
                "name": f"projects/{project}/serviceAccounts/{email}",
                "projectId": project,
                "uniqueId": str(int(number) * 1000 + len(self._state["serviceAccounts"])),
                "email": email,
                "displayName": account_id,
                "etag": short_hash(email),
                "oauth2ClientId": short_hash(email, "client"),
            }
            self._touch()

    def put_role(self, name: str, permissions: list[str] | set[str] | frozenset[str]) -> None:
        with self._lock:
            self._state["roles"][name] = sorted(permissions)
            self._touch()

    def set_policy(self, resource: str, bindings: list[dict[str, Any]]) -> None:
        """Replace `resource`'s policy (bindings as in the REST Policy, conditions allowed)."""
        policy = canonical({"version": 3, "bindings": bindings, "etag": "ACAB"}, "Policy")
        with self._lock:
            self._state["policies"][resource] = policy
            self._touch()

    # -- shared with Resource Manager ----------------------------------------------------

    def _policy_of(self, resource: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """The stored policy; conditional bindings need requestedPolicyVersion 3, as in IAM."""
        version = int((query.get("options.requestedPolicyVersion") or ["0"])[0] or 0)
        with self._lock:
            policy = deep(self._state["policies"].get(resource, {"etag": "ACAB"}))
        if version < 3 and any("condition" in b for b in policy.get("bindings", [])):
            raise invalid(
                f"Request policy version {version} is not supported for policies with conditions; "
                "set options.requestedPolicyVersion to 3."
            )
        return policy

    def _caller_holds(self, resource: str, body: bytes) -> dict[str, Any]:
        request = parse_body(body, "TestIamPermissionsRequest")
        asked = request.get("permissions", [])
        if len(asked) > _MAX_TESTED_PERMISSIONS:
            raise invalid(f"At most {_MAX_TESTED_PERMISSIONS} permissions can be tested at once.")
        bad = next((p for p in asked if not _PERMISSION_RE.match(p)), None)
        if bad is not None:
            raise invalid(f"Permission {bad} is not valid.")
        held = self.caller_permissions.get(resource, set())
        granted = [p for p in asked if p in held]
        return {"permissions": granted} if granted else {}

    # -- handlers --------------------------------------------------------------------------

    def _account(self, project: str, email: str) -> dict[str, Any]:
        with self._lock:
            account = self._state["serviceAccounts"].get(email)
        if account is None or project not in ("-", account["projectId"]):
            raise not_found(f"Not found; Gaia id not found for email {email}")
        return account

    def _sa_get(self, req: Request, project: str, email: str) -> Any:
        return deep(self._account(project, email))

    def _sa_get_iam_policy(self, req: Request, project: str, email: str) -> Any:
        account = self._account(project, email)
        return self._policy_of(account["name"], req.query)

    def _sa_test_iam_permissions(self, req: Request, project: str, email: str) -> Any:
        account = self._account(project, email)
        return self._caller_holds(account["name"], req.body)

    def _sa_generate_id_token(self, req: Request, project: str, email: str) -> Any:
        """IAM Credentials' generateIdToken (iamcredentials.googleapis.com, same path): the
        name's project must be `-`; the body is a GenerateIdTokenRequest (iamcredentials v1
        Discovery document). The token is the local issuer's, so the function accepts it."""
        if project != "-":
            raise invalid("The project in the service account's name must be the wildcard '-'.")
        self._account(project, email)
        request = _json_object(req.body)
        unknown = sorted(set(request) - _GENERATE_ID_TOKEN_FIELDS)
        if unknown:
            raise invalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
        audience = request.get("audience")
        if not isinstance(audience, str) or not audience:
            raise invalid("Required field audience is missing.")
        if self.oidc_issuer is None:
            raise not_found("No OIDC issuer is configured on this emulator.")
        # Without includeEmail Google's token has no email claims; this one has an empty
        # email, which the function refuses the same way.
        included = request.get("includeEmail") is True
        return {"token": self.oidc_issuer.mint(audience=audience, email=email if included else "")}

    def _role_get(self, req: Request, name: str) -> Any:
        with self._lock:
            permissions = self._state["roles"].get(name)
        if permissions is None:
            permissions = _builtin_roles().get(name)
        if permissions is None:
            raise ApiError("NOT_FOUND", f"The role named {name} was not found.")
        return {
            "name": name,
            "title": name.rsplit("/", 1)[-1],
            "includedPermissions": list(permissions),
            "stage": "GA",
            "etag": short_hash(name, *permissions),
        }


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        raise invalid("Invalid JSON payload received.") from None
    if not isinstance(document, dict):
        raise invalid("Invalid JSON payload received. Expected a JSON object.")
    return document
