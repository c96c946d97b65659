"""Resource Manager v3 projects: getIamPolicy and testIamPermissions.

`POST /v3/projects/P:getIamPolicy` (GetIamPolicyRequest body; conditional bindings need
`options.requestedPolicyVersion` 3) answers the policy set with `set_policy("projects/P", ...)`;
`POST /v3/projects/P:testIamPermissions` answers from `caller_permissions["projects/P"]`
(see iam.py). Every project exists on this emulator.
"""

from __future__ import annotations

from typing import Any

from .common import parse_body
from .iam import Iam
from .routing import Request, Route


class ResourceManager:
    """Resource Manager v3 projects' IAM, answered from `iam`'s policies and caller permissions."""

    def __init__(self, iam: Iam) -> None:
        self.iam = iam

    def routes(self) -> list[Route]:
        project = r"/v3/(?P<resource>projects/[^/:]+)"
        return [
            Route("POST", rf"{project}:getIamPolicy", self._project_get_iam_policy, (), "GetIamPolicyRequest"),
            Route(
                "POST",
                rf"{project}:testIamPermissions",
                self._project_test_iam_permissions,
                (),
                "TestIamPermissionsRequest",
            ),
        ]

    def _project_get_iam_policy(self, req: Request, resource: str) -> Any:
        request = parse_body(req.body, "GetIamPolicyRequest", allow_empty=True)
        version = request.get("options", {}).get("requestedPolicyVersion", 0)
        return self.iam.policy_of(resource, {"options.requestedPolicyVersion": [str(version)]})

    def _project_test_iam_permissions(self, req: Request, resource: str) -> Any:
        return self.iam.caller_holds(resource, req.body)
