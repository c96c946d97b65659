"""What a person watching a deploy sees while the function builds."""

from __future__ import annotations

import io

from vertex_cron.progress import ConsoleProgress


def _watch(live: bool) -> str:
    stream = io.StringIO()
    progress = ConsoleProgress(stream, live=live)
    progress.step("creating function vertex-cron-trigger (building)")
    for elapsed in (2.0, 16.0, 31.0):
        progress.tick(elapsed)
    progress.step("creating Scheduler job vertex-cron-nightly")
    progress.finish()
    return stream.getvalue()


def test_a_terminal_gets_one_status_line_rewritten_with_the_elapsed_time():
    out = _watch(live=True)
    assert out.count("\r") == 3
    assert "  31s elapsed\ncreating Scheduler job" in out


def test_a_log_gets_plain_lines_now_and_then():
    out = _watch(live=False)
    assert "\r" not in out
    assert out.splitlines() == [
        "creating function vertex-cron-trigger (building)",
        "  still creating function vertex-cron-trigger (building) (16s)",
        "  still creating function vertex-cron-trigger (building) (31s)",
        "creating Scheduler job vertex-cron-nightly",
    ]


def test_what_the_operation_is_doing_shows_and_a_log_hears_of_each_new_stage():
    live, log = io.StringIO(), io.StringIO()
    for stream, is_live in ((live, True), (log, False)):
        progress = ConsoleProgress(stream, live=is_live)
        progress.step("creating function vertex-cron-trigger (building)")
        for elapsed, doing in ((1.0, "build stage: Build in progress"), (3.0, "build stage: Build in progress")):
            progress.tick(elapsed, doing)
        progress.tick(40.0, "service stage")
        progress.tick(41.0, "")
        progress.finish()

    assert "3s elapsed, build stage: Build in progress" in live.getvalue()
    last_status = live.getvalue().rsplit("\r", 1)[1]
    assert last_status.startswith("  ... creating function vertex-cron-trigger (building):   41s elapsed  ")
    assert "service" not in last_status  # the longer status before it is overwritten with blanks
    assert log.getvalue().splitlines()[1:] == [
        "  still creating function vertex-cron-trigger (building) (1s, build stage: Build in progress)",
        "  still creating function vertex-cron-trigger (building) (40s, service stage)",
    ]
