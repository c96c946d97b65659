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
