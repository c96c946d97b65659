"""Fixtures for the local stack's tests: an HTTP target that records what it receives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass(frozen=True)
class Received:
    method: str
    headers: dict[str, str]
    body: bytes


class RecordingTarget:
    """Answers each request with the next scripted status (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = [200]
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with target._lock:
                    target.requests.append(Received("POST", dict(self.headers), body))
                    status = target.statuses[min(len(target.requests), len(target.statuses)) - 1]
                payload = b'{"message": "recorded"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def received_for(self, job_short_name: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.headers.get("X-CloudScheduler-JobName") == job_short_name]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def target() -> Iterator[RecordingTarget]:
    recording = RecordingTarget()
    yield recording
    recording.close()
