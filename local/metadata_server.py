"""A stand-in for the metadata server of a Cloud Run instance, on 127.0.0.1: the access
token of the instance's service account, which is what the function (and the Vertex AI
SDK, through google.auth.default()) fetches on its first call to Google.

Pointed at with GCE_METADATA_HOST (where google-auth reads metadata and tokens) and
GCE_METADATA_IP (where it pings to detect Compute Engine), both host:port, as
google/auth/compute_engine/_metadata.py reads them. What it answers (docs/fidelity.md,
"Metadata server"):
- `GET /` (google-auth's ping): 200 with the `Metadata-Flavor: Google` response header;
- under /computeMetadata/v1/, only with the `Metadata-Flavor: Google` request header
  (else 403): `project/project-id` (text), `instance/service-accounts/ACCOUNT/`
  (`?recursive=true`: email, aliases, scopes as JSON) and its `token` (`access_token`,
  `expires_in`, `token_type`), ACCOUNT being `default` or the account's email (google-auth
  asks by email once it has learnt it); anything else is a 404.
The tokens are opaque random strings: no emulator checks them.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FLAVOR = ("Metadata-Flavor", "Google")
ROOT = "/computeMetadata/v1/"
SERVICE_ACCOUNTS = ROOT + "instance/service-accounts/"
TOKEN_SECONDS = 3599  # what the metadata server grants: an hour, less the time it took
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class MetadataServer:
    def __init__(self, *, project: str, service_account: str) -> None:
        self.project = project
        self.service_account = service_account
        self._lock = threading.Lock()
        self.tokens_issued = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        """host:port, the form GCE_METADATA_HOST and GCE_METADATA_IP take."""
        if self._server is None:
            raise RuntimeError("the metadata server is not started")
        return f"127.0.0.1:{self._server.server_port}"

    def start(self) -> MetadataServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.metadata = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, name="metadata-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def env(self) -> dict[str, str]:
        """What points google-auth (and the function) at this server."""
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_IP": self.host}

    def answer(self, path: str, query: str) -> tuple[int, str, str]:
        """(status, content type, body) for a GET that carried the flavor header."""
        if path == ROOT + "project/project-id":
            return 200, "application/text", self.project
        account, _, rest = path.removeprefix(SERVICE_ACCOUNTS).partition("/")
        if not path.startswith(SERVICE_ACCOUNTS) or account not in ("default", self.service_account):
            return 404, "text/html", "Not Found"
        if rest == "" and "recursive=true" in query:
            info = {"aliases": ["default"], "email": self.service_account, "scopes": SCOPES}
            return 200, "application/json", json.dumps(info)
        if rest == "token":
            with self._lock:
                self.tokens_issued += 1
            token = {"access_token": secrets.token_urlsafe(32), "expires_in": TOKEN_SECONDS, "token_type": "Bearer"}
            return 200, "application/json", json.dumps(token)
        return 404, "text/html", "Not Found"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: MetadataServer = self.server.metadata  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        if parts.path == "/":
            status, content_type, body = 200, "application/text", "computeMetadata/\n"
        elif self.headers.get(FLAVOR[0]) != FLAVOR[1]:
            status, content_type, body = 403, "text/html", "Missing required header: Metadata-Flavor"
        else:
            status, content_type, body = server.answer(parts.path, parts.query)
        data = body.encode()
        self.send_response(status)
        self.send_header(*FLAVOR)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass
