"""The catch-up contract shared by the deployer (which writes it) and the function (which sweeps).

A schedule opts in with `catch_up` (a window, off by default). The deployer writes two extra
fields into that schedule's Scheduler job body, beside the fields `body.py` already checks:

- `catch_up`: the window as a Google duration string (`"21600s"`): fire times at most this
  old that have no PipelineJob get one;
- `catch_up_since`: RFC 3339 UTC, the earliest fire time that may ever be caught up: when the
  schedule was first deployed with catch-up, moved forward by `resume` without `--catch-up`
  so that the times a schedule spent paused are not caught up unless the user asks.

Every other schedule's body carries `catch_up_since` too, as the earliest fire time its own
runs report as missed (run_reports.py): when it was deployed or its fire times last changed,
moved forward by a plain `resume` likewise. (A body written before that carries none, until
its next deploy, and its runs report no missed fire time.)

While at least one schedule of a project+region uses catch-up, the deployer keeps one more
Scheduler job, `SWEEP_JOB`, calling the same function with `SWEEP_BODY` on `SWEEP_CRON`
(in UTC), with the same OIDC identity and audience as the schedules' jobs. The function
answers that body by sweeping the region's schedules (read from Cloud Scheduler, read-only).
"""

from __future__ import annotations

# Scheduler job id of the sweep: the schedule name `catch-up` is reserved so no schedule's
# job (`vertex-cron-NAME`) can collide with it.
SWEEP_JOB = "vertex-cron-catch-up"
RESERVED_SCHEDULE_NAME = "catch-up"
SWEEP_BODY = {"sweep": "catch_up"}
SWEEP_CRON = "*/10 * * * *"
