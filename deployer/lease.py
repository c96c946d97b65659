"""One vertex-cron run at a time per project+region: a lease object in the spec bucket.

`apply`, `deploy` and `delete` read what exists, plan, then change it. Two runs doing that
at once would plan against the same picture and trip over each other's changes (the
loser's create meets 409 ALREADY_EXISTS, or one run's invoker set drops the other's
scheduler SA). So each run first creates `gs://BUCKET/vertex-cron/specs/PROJECT/REGION.lease.json`
with `ifGenerationMatch=0`: Cloud Storage lets exactly one such write succeed; the others
get 412 Precondition Failed. A run that finds the lease held waits for it, showing who
holds it, then takes it and looks at the cloud afresh. So two runs of the same file end
with the second finding nothing to change.

The holder renews the lease (a rewrite conditioned on its own generation) every
`RENEW_SECONDS` from a background thread, and deletes it when done, also after a failure
or Ctrl-C. A run killed outright (SIGKILL, a closed terminal, a lost machine) leaves its
lease behind. A waiter takes such a lease over:
- at once when the holder ran on this host and its process no longer exists;
- otherwise when the lease's generation has not changed for the `stale_after_seconds` the
  holder wrote into it, measured on the waiter's own clock (no clock is compared across
  machines).
Taking over is a delete conditioned on the stale generation, then the usual create, so
two waiters cannot both win. A holder whose renewal finds another run's lease (it was
frozen longer than that), or that finds it replaced when it releases it, raises LeaseLost
at the end of its run.

Writes are retried by the client library; a retried write that meets 412 may have been
our own (the answer to the first attempt was lost), so the lease carries a random token
and a run recognises its own.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import DeployError, LeaseLost
from .models import lease_object
from .progress import Progress
from .seam import LeaseObject

RENEW_SECONDS = 20.0
STALE_AFTER_SECONDS = 120.0  # six renewals missed


@dataclass(frozen=True)
class _Seen:
    """A lease held by another run, as this run first saw it (generation and when)."""

    generation: int
    since: float
    holder: dict[str, Any]


@contextmanager
def held(
    cloud: LeaseObject,
    bucket: str,
    project: str,
    region: str,
    *,
    command: str,
    progress: Progress,
    poll_seconds: float,
) -> Iterator[None]:
    """Hold the lease of project+region while the body runs (see the module docstring)."""
    lease = _Lease(cloud, bucket, lease_object(project, region), command, poll_seconds)
    lease.acquire(progress)
    try:
        yield
    except BaseException:
        with suppress(DeployError):  # the body's own error is the one to show
            lease.release(report_loss=False)
        raise
    lease.release()


class _Lease:
    def __init__(self, cloud: LeaseObject, bucket: str, object_name: str, command: str, poll_seconds: float) -> None:
        self._cloud = cloud
        self._bucket = bucket
        self._object = object_name
        self._poll = poll_seconds
        self._token = uuid.uuid4().hex
        self._content = json.dumps(
            {
                "holder": f"{os.environ.get('USER') or 'someone'}@{socket.gethostname()}",
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "command": command,
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "stale_after_seconds": STALE_AFTER_SECONDS,
                "token": self._token,
            },
            sort_keys=True,
        ).encode()
        self._generation = 0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def _where(self) -> str:
        return f"gs://{self._bucket}/{self._object}"

    def acquire(self, progress: Progress) -> None:
        seen: _Seen | None = None
        started = time.monotonic()
        while True:
            generation = self._cloud.write_if_generation(self._bucket, self._object, self._content, generation=0)
            if generation is not None:
                self._hold(generation)
                return
            current = self._cloud.read_object(self._bucket, self._object)
            if current is None:
                continue  # released between the write and the read: try again
            generation, data = current
            holder = _parse(data)
            if holder.get("token") == self._token:  # our own write, answered 412 on a retry
                self._hold(generation)
                return
            if seen is None or seen.generation != generation:
                if seen is None or seen.holder.get("token") != holder.get("token"):
                    progress.step(f"waiting for another vertex-cron run to finish: {_describe(holder)} ({self._where})")
                seen = _Seen(generation, time.monotonic(), holder)
            elif self._abandoned(seen):
                progress.step(f"taking over the lease of a run that is no longer running: {_describe(holder)}")
                self._cloud.delete_if_generation(self._bucket, self._object, generation=generation)
                seen = None
                continue
            progress.tick(time.monotonic() - started)
            time.sleep(self._poll)

    def _abandoned(self, seen: _Seen) -> bool:
        holder = seen.holder
        pid = holder.get("pid")
        if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _process_exists(pid):
            return True
        stale_after = holder.get("stale_after_seconds")
        if not isinstance(stale_after, int | float):
            stale_after = STALE_AFTER_SECONDS
        return time.monotonic() - seen.since > stale_after

    def _hold(self, generation: int) -> None:
        self._generation = generation
        self._renewer = threading.Thread(target=self._renew_until_stopped, name="vertex-cron-lease", daemon=True)
        self._renewer.start()

    def _renew_until_stopped(self) -> None:
        while not self._lost and not self._stop.wait(RENEW_SECONDS):
            with suppress(DeployError):  # Google unavailable: the next renewal tries again
                self._renew()

    def _renew(self) -> None:
        generation = self._cloud.write_if_generation(
            self._bucket, self._object, self._content, generation=self._generation
        )
        if generation is not None:
            self._generation = generation
            return
        current = self._cloud.read_object(self._bucket, self._object)
        if current is not None and _parse(current[1]).get("token") == self._token:
            self._generation = current[0]  # our own renewal, answered 412 on a retry
            return
        self._lost = _describe(_parse(current[1])) if current is not None else "nobody (it was deleted)"

    def release(self, *, report_loss: bool = True) -> None:
        """Delete the lease if it is still ours; LeaseLost (when `report_loss`) if it is not."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if not self._lost and self._cloud.delete_if_generation(self._bucket, self._object, generation=self._generation):
            return
        if not self._lost:
            current = self._cloud.read_object(self._bucket, self._object)
            self._lost = _describe(_parse(current[1])) if current is not None else "a run that has finished since"
        if report_loss:
            raise LeaseLost(
                f"another run took over this run's lease {self._where} while it ran: {self._lost}",
                details=f"this run's lease went {STALE_AFTER_SECONDS:.0f}s without renewal (the run was frozen, "
                "or cut off from Google Cloud); what it changed may have been changed again since: re-run the "
                "command, it is safe",
            )


def _parse(data: bytes) -> dict[str, Any]:
    try:
        holder = json.loads(data)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    who = holder.get("holder") or "an unknown run"
    return f"{who}, pid {holder.get('pid', '?')}, `{holder.get('command', '?')}` since {holder.get('started', '?')}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
