"""Resource Manager v3 projects: getIamPolicy and testIamPermissions.

`POST /v3/projects/P:getIamPolicy` (GetIamPolicyRequest body; conditional bindings need
`options.requestedPolicyVersion` 3) answers the policy set with `set_policy("projects/P", ...)`;
`POST /v3/projects/P:testIamPermissions` answers from `caller_permissions["projects/P"]`
(see iam.py). Every project exists on this emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .common import parse_body

if TYPE_CHECKING:
    from .server import Request


class ResourceManagerMixin:
    def _resourcemanager_routes(self) -> list[tuple[str, str, Any, set[str], str | None]]:
        project = r"/v3/(?P<resource>projects/[^/:]+)"
        return [
            ("POST", rf"{project}:getIamPolicy", self._project_get_iam_policy, set(), "GetIamPolicyRequest"),
            (
                "POST",
                rf"{project}:testIamPermissions",
                self._project_test_iam_permissions,
                set(),
                "TestIamPermissionsRequest",
            ),
        ]

    def _project_get_iam_policy(self, req: Request, resource: str) -> Any:
        request = parse_body(req.body, "GetIamPolicyRequest", allow_empty=True)
        version = request.get("options", {}).get("requestedPolicyVersion", 0)
        return self._policy_of(resource, {"options.requestedPolicyVersion": [str(version)]})  # type: ignore[attr-defined]

    def _project_test_iam_permissions(self, req: Request, resource: str) -> Any:
        return self._caller_holds(resource, req.body)  # type: ignore[attr-defined]
