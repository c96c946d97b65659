"""The deployer's exceptions. Every failure a user can see is one of these.

    VertexCronError                  base; ``str(err)`` is the one-line reason, ``.details`` the rest
    ├── UsageError                   exit 2: the request is wrong; found before any cloud call
    │   ├── SettingsError            a setting is missing or malformed (project, region, SAs, files)
    │   └── ValidationError          a schedule is invalid (name, cron, time zone, spec, parameters, catch-up, sizes)
    ├── DeployError                  exit 1: Google Cloud refused or failed; raised by gcp.py only
    │   ├── NotFound                 the named resource does not exist
    │   ├── PermissionDenied         the caller's identity lacks a permission (401/403)
    │   ├── Unavailable              a transient failure (429, 5xx, timeouts): re-running is safe
    │   ├── OperationFailed          a long-running operation (function build) finished with an error
    │   ├── InvokerCheckDisabled     the function's Cloud Run service does not check run.invoker (found
    │   │                            by observe.py before any change, or after setting the invokers)
    │   ├── ConcurrentChange         someone else changed the resource since this run looked (409
    │   │                            ALREADY_EXISTS / ABORTED): re-running is safe
    │   └── LeaseLost                another run took this run's lease over (see lease.py)
    ├── RunFailed                    exit 1: the run `vertex-cron run --wait` followed ended FAILED or
    │                                CANCELLED, or never appeared
    └── VertexPipelineError          (luigi.py) the Luigi task could not submit or follow its PipelineJob
        ├── PipelineRunFailed        (luigi.py) the run ended FAILED/CANCELLED; carries the job
        └── PipelineInterrupted      (luigi.py) SIGTERM while waiting; the job was asked to cancel

The Luigi errors are defined in luigi.py because they belong to the optional Luigi integration:
users import them from ``vertex_cron.luigi`` together with the task.

Google client exceptions never leave gcp.py: they are translated there with ``raise ... from exc``
so the CLI can print a reason without a traceback. The local stack (``vertex_cron_local``) is
tooling around this tree, not part of it: its own ``LocalStackError`` and ``DemoFailed`` are
what ``vertex-cron local`` reports.
"""

from __future__ import annotations


class VertexCronError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, reason: str, *, details: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class UsageError(VertexCronError):
    """The request itself is wrong; nothing was changed."""

    exit_code = 2


class SettingsError(UsageError):
    """A setting is missing or malformed."""


class ValidationError(UsageError):
    """A schedule definition is invalid."""


class DeployError(VertexCronError):
    """Google Cloud refused or failed a call."""


class NotFound(DeployError):
    """The named resource does not exist."""


class PermissionDenied(DeployError):
    """The caller's identity lacks a permission."""


class Unavailable(DeployError):
    """A transient failure; re-running the command is safe (every step is idempotent)."""


class OperationFailed(DeployError):
    """A long-running operation finished with an error."""


class InvokerCheckDisabled(DeployError):
    """The function's Cloud Run service lets any caller in: Cloud Run does not check run.invoker."""


class RunFailed(VertexCronError):
    """A pipeline run the command waited for did not succeed."""


class ConcurrentChange(DeployError):
    """Someone else created or is changing the resource since this run looked at it; the
    re-run waits for any operation still running, compares again and converges."""


class LeaseLost(DeployError):
    """Another run took over this run's lease (it had not been renewed in time)."""
