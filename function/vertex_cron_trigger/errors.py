"""The trigger's exception tree. Each error knows the HTTP status and outcome it becomes.

    TriggerError                 500 failed    base; never raised directly
    ├── ConfigError              500 failed    a required environment variable is missing/bad
    ├── BadRequest               400 rejected  body, header or spec is wrong (`.field` names it)
    │   └── SpecNotFound         400 rejected  the spec object does not exist (names the URI)
    ├── MethodNotAllowed         405 rejected  anything but POST
    ├── Unauthenticated          401 rejected  missing or invalid OIDC token
    ├── Forbidden                403 rejected  valid token of another identity; foreign bucket
    ├── UpstreamUnavailable      503 failed    408/429/409 ABORTED/5xx but 501, any transport failure,
    │   │                                      a garbled 2xx: Scheduler retries
    │   └── ConditionNotMet      503 failed    412: a conditional write found another generation live
    │                                          (another request wrote first; read again)
    └── UpstreamRejected         500 failed    permanent upstream error (permission, invalid argument)

Google and transport (transport.py) exceptions are translated into these at the seam (google_rest.py) with
`raise ... from exc`; the handler turns them into a JSON response and one log line.
"""

from __future__ import annotations

from typing import ClassVar


class TriggerError(Exception):
    status: ClassVar[int] = 500
    outcome: ClassVar[str] = "failed"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConfigError(TriggerError):
    status = 500


class BadRequest(TriggerError):
    status = 400
    outcome = "rejected"


class SpecNotFound(BadRequest):
    pass


class MethodNotAllowed(TriggerError):
    status = 405
    outcome = "rejected"


class Unauthenticated(TriggerError):
    status = 401
    outcome = "rejected"


class Forbidden(TriggerError):
    status = 403
    outcome = "rejected"


class UpstreamUnavailable(TriggerError):
    status = 503


class ConditionNotMet(UpstreamUnavailable):
    pass


class UpstreamRejected(TriggerError):
    status = 500
