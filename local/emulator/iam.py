"""IAM v1 (service accounts, roles) and the IAM policy model shared with Resource Manager.

Like the real API (iam.googleapis.com/v1):
- `GET  /v1/projects/P/serviceAccounts/EMAIL` (P may be `-`): the account, or 404.
- `POST /v1/projects/P/serviceAccounts/EMAIL:getIamPolicy` (`options.requestedPolicyVersion`
  in the query, empty body) and `:testIamPermissions` (TestIamPermissionsRequest body).
- `GET  /v1/roles/ROLE` and `GET /v1/projects/P/roles/ROLE`: a role with `includedPermissions`.
- `POST /v1/projects/-/serviceAccounts/EMAIL:generateIdToken` (IAM Credentials, same path on
  iamcredentials.googleapis.com): an ID token of EMAIL from the emulator's local issuer.
- `GET  /oauth2/v1/certs` (PEM certificates) and `/oauth2/v3/certs` (a JWK Set): that
  issuer's keys, as Google publishes the keys of its ID tokens.

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
from typing import Any

from .common import ApiError, canonical, deep, invalid, not_found, parse_body, project_number, short_hash
from .routing import Request, Response, Route, json_response
from .store import Store

CERTS_PATH = "/oauth2/v1/certs"  # Google's v1 format: {kid: PEM certificate}
JWKS_PATH = "/oauth2/v3/certs"  # the same keys as a JWK Set (Google's v3 format, its jwks_uri)
_CERTS_MAX_AGE_SECONDS = 300  # how long a client may cache the keys (the answer's Cache-Control max-age)
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


class Iam:
    """IAM v1 service accounts and roles, IAM Credentials' generateIdToken, and the project
    and service-account IAM policies Resource Manager shares, over the emulator's store.

    `token_issuer` (a vertex_cron_local.token_issuer.LocalIssuer, default None) signs the ID
    tokens generateIdToken answers; its keys are what Google's OAuth2 certs endpoints serve.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.token_issuer: Any = None
        self.caller_permissions: dict[str, set[str]] = {}  # testIamPermissions answers, by resource
        self._accounts = store.collection("serviceAccounts")
        self._roles = store.collection("roles")
        self._policies = store.collection("policies")  # shared with functions.py's Run and Functions IAM

    def routes(self) -> list[Route]:
        return [
            Route("GET", rf"/v1/{_SA}", self._sa_get),
            Route("POST", rf"/v1/{_SA}:getIamPolicy", self._sa_get_iam_policy, ("options",), "GetIamPolicyRequest"),
            Route(
                "POST", rf"/v1/{_SA}:testIamPermissions", self._sa_test_iam_permissions, (), "TestIamPermissionsRequest"
            ),
            Route("POST", rf"/v1/{_SA}:generateIdToken", self._sa_generate_id_token),
            Route("GET", r"/v1/(?P<name>roles/[^/:]+)", self._role_get, ("view",)),
            Route("GET", r"/v1/(?P<name>projects/[^/:]+/roles/[^/:]+)", self._role_get, ("view",)),
            # Google's OAuth2 signing keys: not a Discovery-described API method.
            Route("GET", re.escape(CERTS_PATH), self._certs, described=False),
            Route("GET", re.escape(JWKS_PATH), self._certs, described=False),
        ]

    # -- set-up (tests) ------------------------------------------------------------------

    def add_service_account(self, project: str, email: str) -> None:
        account_id = email.split("@", 1)[0]
        number = project_number(project)
        with self.store.lock:
            self._accounts[email] = {
                "name": f"projects/{project}/serviceAccounts/{email}",
                "projectId": project,
                "uniqueId": str(int(number) * 1000 + len(self._accounts)),
                "email": email,
                "displayName": account_id,
                "etag": short_hash(email),
                "oauth2ClientId": short_hash(email, "client"),
            }
            self.store.touch()

    def put_role(self, name: str, permissions: list[str] | set[str] | frozenset[str]) -> None:
        with self.store.lock:
            self._roles[name] = sorted(permissions)
            self.store.touch()

    def set_policy(self, resource: str, bindings: list[dict[str, Any]]) -> None:
        """Replace `resource`'s policy (bindings as in the REST Policy, conditions allowed)."""
        policy = canonical({"version": 3, "bindings": bindings, "etag": "ACAB"}, "Policy")
        with self.store.lock:
            self._policies[resource] = policy
            self.store.touch()

    # -- shared with Resource Manager ----------------------------------------------------

    def policy_of(self, resource: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """The stored policy; conditional bindings need requestedPolicyVersion 3, as in IAM."""
        version = int((query.get("options.requestedPolicyVersion") or ["0"])[0] or 0)
        with self.store.lock:
            policy = deep(self._policies.get(resource, {"etag": "ACAB"}))
        if version < 3 and any("condition" in b for b in policy.get("bindings", [])):
            raise invalid(
                f"Request policy version {version} is not supported for policies with conditions; "
                "set options.requestedPolicyVersion to 3."
            )
        return policy

    def caller_holds(self, resource: str, body: bytes) -> dict[str, Any]:
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
        with self.store.lock:
            account = self._accounts.get(email)
        if account is None or project not in ("-", account["projectId"]):
            raise not_found(f"Not found; Gaia id not found for email {email}")
        return account

    def _sa_get(self, req: Request, project: str, email: str) -> Any:
        return deep(self._account(project, email))

    def _sa_get_iam_policy(self, req: Request, project: str, email: str) -> Any:
        account = self._account(project, email)
        return self.policy_of(account["name"], req.query)

    def _sa_test_iam_permissions(self, req: Request, project: str, email: str) -> Any:
        account = self._account(project, email)
        return self.caller_holds(account["name"], req.body)

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
        if self.token_issuer is None:
            raise not_found("No OIDC issuer is configured on this emulator.")
        # Without includeEmail Google's token has no email claims; this one has an empty
        # email, which the function refuses the same way.
        included = request.get("includeEmail") is True
        return {"token": self.token_issuer.mint(audience=audience, email=email if included else "")}

    def _role_get(self, req: Request, name: str) -> Any:
        with self.store.lock:
            permissions = self._roles.get(name)
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

    def _certs(self, req: Request) -> Response:
        if self.token_issuer is None:
            raise not_found("No OIDC issuer is configured on this emulator.")
        document = self.token_issuer.jwks() if req.path == JWKS_PATH else self.token_issuer.certs_document()
        return json_response(
            200,
            document,
            {"Cache-Control": f"public, max-age={_CERTS_MAX_AGE_SECONDS}, must-revalidate, no-transform"},
        )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        raise invalid("Invalid JSON payload received.") from None
    if not isinstance(document, dict):
        raise invalid("Invalid JSON payload received. Expected a JSON object.")
    return document
