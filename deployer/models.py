"""Typed values passed between the deployer's stages:

    ScheduleInput (what the user asked) -> Desired -> Observed (read from the cloud)
    -> Plan of Changes (planner.py, pure) -> executor.py

Resource fields are flat mappings keyed by the API's dotted field path
(``"http_target.oidc_token.audience"``), so the planner compares plain values and the seam
(gcp.py) converts them to and from the client libraries' messages in one place.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vertex_cron_trigger.template_uri import TemplateUri

from .function_source import FunctionSource
from .schedule_options import (
    as_given,
    catch_up_body,
    catch_up_text,
    declare,
    declared,
    parameters_from_flags,
    rfc3339_text,
    spec_source,
)
from .validation import MAX_CATCH_UP_TEXT, MIN_CATCH_UP_TEXT

MANAGED_BY_LABEL = "managed-by"
MANAGED_BY = "vertex-cron"
SOURCE_LABEL = "vertex-cron-source"
# Scheduler jobs carry no labels: managed jobs are recognised by name prefix and description.
JOB_PREFIX = "vertex-cron-"
JOB_DESCRIPTION = "managed-by=vertex-cron"
SPEC_PREFIX = "vertex-cron/specs/"
# Object metadata of every spec vertex-cron uploads; `delete --purge` deletes only objects
# carrying both, with the location being its own.
SPEC_MANAGED_BY_KEY = MANAGED_BY_LABEL
SPEC_LOCATION_KEY = "vertex-cron-location"  # projects/P/locations/R whose schedules use it
INVOKER_ROLE = "roles/run.invoker"
# Function.state while an operation runs on the function (cloudfunctions v2 Discovery
# document; docs/fidelity.md, "Long-running operations and states").
BUSY_STATES = frozenset({"DEPLOYING", "DELETING", "DETACHING"})
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})  # never invokers of the function


def location(project: str, region: str) -> str:
    return f"projects/{project}/locations/{region}"


def lease_object(project: str, region: str) -> str:
    """The lease of one project+region (lease.py): under SPEC_PREFIX, where the deployer
    may write (infra/iam.tf confines it there), but beside the location's spec folder, not
    in it, so `delete --purge` never lists it."""
    return f"{SPEC_PREFIX}{project}/{region}.lease.json"


def spec_prefix(project: str, region: str) -> str:
    """Where one project+region's specs go. The bucket may serve several regions (and
    projects); each writes and purges only under its own prefix, so a purge can never
    delete a spec that a schedule elsewhere still runs."""
    return f"{SPEC_PREFIX}{project}/{region}/"


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"


class Kind(str, enum.Enum):
    SPEC = "spec"
    FUNCTION = "function"
    INVOKER = "invoker"
    JOB = "job"


@dataclass(frozen=True)
class Pending:
    """A value known only once an earlier step has run (a new generation, a new URL): a
    reference the executor resolves when the step holding it runs, to `prefix` followed by
    the output `ref` of an earlier step (`what` itself when no ref is given). It compares
    and shows as what it stands for."""

    what: str
    ref: str = field(default="", compare=False)
    prefix: str = field(default="", compare=False)

    @property
    def output(self) -> str:
        """The name of the earlier step's output it stands for."""
        return self.ref or self.what

    def __str__(self) -> str:
        return f"<{self.what}>"


# Outputs of the steps that produce values later steps use (Pending.output).
FUNCTION_URL = "function URL"
FUNCTION_SERVICE = "function service"


def spec_generation_output(object_name: str) -> str:
    return f"generation of {object_name}"


def encode_body(body: Mapping[str, Any]) -> bytes:
    """A Scheduler job's body as sent to the function: canonical JSON."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ScheduleInput:
    """One schedule as the user wrote it (flags or a schedules-file entry), not yet checked.
    `spec` is where the compiled pipeline comes from: a local file, or the Artifact Registry
    URI it was published at (resolved through the seam before Desired is built).

    Each field declares its option once (schedule_options.py): the deploy flags, the
    schedules file's keys and checks and the body fields are derived from these."""

    name: str = field(metadata=declare(help="The schedule's name.", kinds=(str,), described="a string", from_flag=str))
    spec: Path | TemplateUri = field(
        metadata=declare(
            help="Compiled KFP pipeline: a JSON or YAML file, or an Artifact Registry URI "
            "https://REGION-kfp.pkg.dev/PROJECT/REPO/PACKAGE/{TAG|sha256:DIGEST} (a tag is pinned at deploy).",
            kinds=(str,),
            described="a string (a path relative to this file, or an Artifact Registry URI)",
            flag="--spec",
            from_flag=spec_source,
            from_file=spec_source,
        )
    )
    cron: str = field(
        metadata=declare(
            help="Unix-cron expression, e.g. '0 3 * * *'.",
            kinds=(str,),
            described="a string (quote it)",
            flag="--cron",
        )
    )
    time_zone: str = field(
        default="UTC",
        metadata=declare(
            help="IANA time zone of the cron expression.",
            kinds=(str,),
            described="a string",
            flag="--time-zone",
            takes_default=True,
        ),
    )
    parameters: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=declare(
            help="Pipeline parameter (repeatable).",
            kinds=(dict,),
            described="a mapping of parameter names to values",
            flag="--param",
            flag_options={"multiple": True, "metavar": "K=V"},
            from_flag=parameters_from_flags,
            takes_default=True,
        ),
    )
    pipeline_root: str | None = field(
        default=None,
        metadata=declare(
            help="gs:// root for run artifacts [default: gs://BUCKET/vertex-cron/pipeline-root/PROJECT/REGION/NAME].",
            kinds=(str,),
            described="a string (a gs:// URI)",
            flag="--pipeline-root",
            takes_default=True,
        ),
    )
    max_concurrent_runs: int | None = field(
        default=None,
        metadata=declare(
            help="Skip a firing while this many runs are active.",
            kinds=(int,),
            described="an integer",
            flag="--max-concurrent-runs",
            flag_options={"type": int},
            takes_default=True,
            body=as_given,
        ),
    )
    start_time: str | None = field(
        default=None,
        metadata=declare(
            help="RFC3339 time before which firings are skipped.",
            kinds=(str, datetime),
            described="an RFC 3339 time",
            flag="--start-time",
            from_file=rfc3339_text,
            body=as_given,
        ),
    )
    end_time: str | None = field(
        default=None,
        metadata=declare(
            help="RFC3339 time at or after which firings are skipped.",
            kinds=(str, datetime),
            described="an RFC 3339 time",
            flag="--end-time",
            from_file=rfc3339_text,
            body=as_given,
        ),
    )
    enable_caching: bool | None = field(
        default=None,
        metadata=declare(
            help="Override the pipeline's caching.",
            kinds=(bool,),
            described="true or false",
            flag="--enable-caching/--disable-caching",
            takes_default=True,
            body=as_given,
        ),
    )
    catch_up: str | None = field(
        default=None,
        metadata=declare(
            help="Catch up fire times at most this old that got no run (e.g. 6h, 90m, 1d; at least "
            f"{MIN_CATCH_UP_TEXT}, at most {MAX_CATCH_UP_TEXT}) [default: off].",
            kinds=(str,),
            described="a duration such as 6h, 90m or 1d",
            flag="--catch-up",
            flag_options={"metavar": "DURATION"},
            from_file=catch_up_text,
            takes_default=True,
            body=catch_up_body,
        ),
    )


# Each schedule option, by name, as its field of ScheduleInput declares it.
SCHEDULE_OPTIONS = declared(ScheduleInput)


@dataclass(frozen=True)
class PublishedSpec:
    """A pipeline read from Artifact Registry at deploy time: the URI as given (a tag or a
    version), the same URI pinned to the version it named then, and that version's bytes."""

    uri: str
    pinned_uri: str
    data: bytes

    @property
    def version(self) -> str:
        return self.pinned_uri.rsplit("/", 1)[1]


@dataclass(frozen=True)
class SpecObject:
    """A compiled pipeline spec, stored content-addressed in the bucket."""

    object_name: str
    data: bytes
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)  # object metadata set on upload


@dataclass(frozen=True)
class StoredSpec:
    """A spec object found in the bucket, as listed (by `observe` and `delete --purge`)."""

    name: str
    metadata: Mapping[str, str]
    generation: int | None = None


@dataclass(frozen=True)
class DesiredFunction:
    name: str  # projects/P/locations/R/functions/F
    source: FunctionSource
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class DesiredJob:
    name: str  # projects/P/locations/R/jobs/vertex-cron-NAME
    schedule: str | None  # None: the catch-up sweep's job, no schedule's
    spec_object: str | None  # None: the sweep's job, which runs no pipeline
    body: Mapping[str, Any]  # the function's request body; spec_uri is pinned at plan time
    cron: str
    time_zone: str
    scheduler_sa: str


@dataclass(frozen=True)
class Desired:
    project: str
    region: str
    bucket: str
    function: DesiredFunction
    scheduler_sa: str  # the configured one: every job written now calls the function as it
    specs: tuple[SpecObject, ...]
    jobs: tuple[DesiredJob, ...]
    prune: bool = False  # delete managed jobs that are not in `jobs`
    # Exactly who may invoke the function (IAM members, sorted). desired.build() starts
    # with the configured scheduler SA; planner.with_invokers() adds the scheduler SAs of
    # the other managed jobs that keep calling the function (see planner.py).
    invoker_members: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObservedFunction:
    name: str
    fields: Mapping[str, Any]
    uri: str
    service: str  # the Cloud Run service: projects/P/locations/R/services/S

    @property
    def state(self) -> str | None:
        """Function.state: ACTIVE, FAILED, DEPLOYING, DELETING, UNKNOWN ..."""
        state = self.fields.get("state")
        return state if isinstance(state, str) else None


@dataclass(frozen=True)
class ObservedJob:
    name: str
    fields: Mapping[str, Any]
    state: str = "ENABLED"
    next_run: datetime | None = None
    last_attempt: datetime | None = None
    last_status: str | None = None  # google.rpc.Code name of the last attempt, None if never run


@dataclass(frozen=True)
class Observed:
    spec_generations: Mapping[str, int | None]
    function: ObservedFunction | None
    invoker_members: frozenset[str] | None  # None when there is no function yet
    jobs: Mapping[str, ObservedJob]  # by full job name


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


# The steps of a plan: each carries everything its call sends (values produced by an
# earlier step of the same plan as Pending references), so the executor runs a plan alone.


@dataclass(frozen=True)
class UploadSpec:
    """Output: the object's generation (spec_generation_output)."""

    bucket: str
    spec: SpecObject


@dataclass(frozen=True)
class DeployFunction:
    """Create the function (mask None) or update the top-level fields in `mask`; `build`:
    upload `source` and build it. Outputs: FUNCTION_URL and FUNCTION_SERVICE, once it serves."""

    name: str
    fields: Mapping[str, Any]
    source: FunctionSource
    mask: tuple[str, ...] | None
    build: bool


@dataclass(frozen=True)
class SetInvokers:
    """roles/run.invoker on the function's Cloud Run service becomes exactly `members`."""

    service: str | Pending
    members: tuple[str, ...]


@dataclass(frozen=True)
class WriteJob:
    """Create the Scheduler job (mask None) or update the top-level fields in `mask`."""

    name: str
    fields: Mapping[str, Any]
    mask: tuple[str, ...] | None


@dataclass(frozen=True)
class DeleteJob:
    name: str


@dataclass(frozen=True)
class DeleteSpec:
    bucket: str
    name: str


@dataclass(frozen=True)
class DeleteFunction:
    name: str


Step = UploadSpec | DeployFunction | SetInvokers | WriteJob | DeleteJob | DeleteSpec | DeleteFunction


@dataclass(frozen=True)
class Change:
    """One resource's change, for people (`diffs`) and for the executor (`step`, None when unchanged)."""

    kind: Kind
    name: str
    action: Action
    diffs: tuple[FieldChange, ...] = ()
    step: Step | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class NextRuns:
    schedule: str
    time_zone: str
    times: tuple[datetime, ...]


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    next_runs: tuple[NextRuns, ...] = ()
    # Artifact Registry URIs given by tag, each with the version deploy pinned it to.
    resolved: tuple[PublishedSpec, ...] = ()

    @property
    def mutations(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.UNCHANGED)


@dataclass(frozen=True)
class ScheduleStatus:
    """A managed schedule as `list` and `describe` show it."""

    name: str
    job: ObservedJob
    # `resume` only: whether the schedule was paused when asked to resume (else None).
    was_paused: bool | None = None

    @property
    def body(self) -> Mapping[str, Any]:
        return self.job.fields.get("http_target.body") or {}


@dataclass(frozen=True)
class PipelineRun:
    name: str
    state: str
    create_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    console_url: str
    error: str | None = None  # Vertex AI's error message of a failed run
    schedule: str | None = None  # its vertex-cron-schedule label


@dataclass(frozen=True)
class Binding:
    """One IAM role binding, as doctor reads it; ``condition`` is its title (or expression),
    None when unconditional, and ``expression`` its CEL expression."""

    role: str
    members: frozenset[str]
    condition: str | None
    expression: str | None = None


@dataclass(frozen=True)
class ForcedRun:
    """What `run` started. Cloud Scheduler stamps a forced firing with the moment it executes
    it (milliseconds included), so until the PipelineJob exists its id is only approximate:
    `expected_job_id` is the id for `requested_at`; `pipeline_run` is set once it is found."""

    schedule: str
    scheduler_job: str
    cron: str
    time_zone: str
    requested_at: datetime
    expected_job_id: str
    pipeline_run: PipelineRun | None = None
    logical_time: datetime | None = None
    runs_before: frozenset[str] = frozenset()  # the schedule's PipelineJobs before the request
