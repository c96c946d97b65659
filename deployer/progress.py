"""Progress of a deploy, for people: a live status line on a terminal, plain lines otherwise.

This is user output, not logging; it goes to stderr so stdout stays the command's result.
"""

from __future__ import annotations

from typing import TextIO

_PLAIN_EVERY_SECONDS = 15.0


class Progress:
    """Silent; the API's default. Subclasses show steps and the wait on long operations."""

    def step(self, message: str) -> None:
        """A step starts (e.g. "deploying function vertex-cron-trigger (build)")."""

    def tick(self, elapsed: float, doing: str = "") -> None:
        """The current step is still waiting, `elapsed` seconds in; `doing`: what the awaited
        operation reports it is doing now (e.g. "build stage"), "" if nothing."""

    def finish(self) -> None:
        """All steps are done."""


class ConsoleProgress(Progress):
    def __init__(self, stream: TextIO, *, live: bool) -> None:
        self._stream = stream
        self._live = live
        self._message = ""
        self._next_plain = _PLAIN_EVERY_SECONDS
        self._status_shown = False
        self._status_width = 0
        self._doing = ""

    def step(self, message: str) -> None:
        self._end_status()
        self._message = message
        self._next_plain = _PLAIN_EVERY_SECONDS
        self._doing = ""
        self._write(f"{message}\n")

    def tick(self, elapsed: float, doing: str = "") -> None:
        detail = f", {doing}" if doing else ""
        if self._live:
            # Padded: a shorter status must cover the end of a longer one it overwrites.
            status = f"  ... {self._message}: {elapsed:4.0f}s elapsed{detail}"
            self._write(f"\r{status.ljust(self._status_width)}")
            self._status_width = len(status)
            self._status_shown = True
        elif elapsed >= self._next_plain or (doing and doing != self._doing):
            self._write(f"  still {self._message} ({elapsed:.0f}s{detail})\n")
            self._next_plain = max(self._next_plain, elapsed) + _PLAIN_EVERY_SECONDS
        self._doing = doing

    def finish(self) -> None:
        self._end_status()

    def _end_status(self) -> None:
        if self._status_shown:
            self._write("\n")
            self._status_shown = False
            self._status_width = 0

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
