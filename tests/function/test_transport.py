"""The function's HTTP transport and access tokens against local servers: connections are
reused, a connection the server dropped is not, the metadata server's token is fetched once
and sent to Google (and to an emulator only when asked), a 401 refreshes it once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_google_rest import SETTINGS, Scripted, response
from vertex_cron_local.metadata_server import MetadataServer
from vertex_cron_trigger.access_tokens import MetadataServerTokens
from vertex_cron_trigger.errors import UpstreamUnavailable
from vertex_cron_trigger.google_rest import GoogleRest
from vertex_cron_trigger.transport import Connections


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        # /drop: hang up after answering without saying so (an idle timeout on the server's side)
        self.close_connection = self.path == "/drop"

    def log_message(self, *args: object) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    """Counts connections; `hung_up` is set once it has closed one (after its handler ends)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Counting)
        self.connections = 0
        self.hung_up = threading.Event()

    def shutdown_request(self, request: object) -> None:
        super().shutdown_request(request)  # type: ignore[arg-type]
        self.hung_up.set()


@pytest.fixture
def counting_server() -> Iterator[_CountingServer]:
    server = _CountingServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_connection_serves_consecutive_requests_to_a_host(counting_server):
    connections, url = Connections(), f"http://127.0.0.1:{counting_server.server_port}/ok"
    answers = [connections.request("GET", url, timeout=(5, 5)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200] and counting_server.connections == 1


def test_a_connection_the_server_dropped_is_not_reused(counting_server):
    connections, base = Connections(), f"http://127.0.0.1:{counting_server.server_port}"
    assert connections.request("GET", base + "/drop", timeout=(5, 5)).status_code == 200
    # Dropped before the next request, as by an idle timeout: one racing the request cannot
    # be told from a live connection, and fails as it would with requests (a 503 to retry).
    assert counting_server.hung_up.wait(timeout=30)
    assert connections.request("GET", base + "/ok", timeout=(5, 5)).status_code == 200
    assert counting_server.connections == 2


@pytest.fixture
def metadata() -> Iterator[MetadataServer]:
    server = MetadataServer(project="p", service_account="f@p.iam.gserviceaccount.com").start()
    yield server
    server.stop()


def test_the_metadata_servers_token_is_fetched_once_and_again_only_when_due(metadata):
    now = [0.0]
    tokens = MetadataServerTokens(Connections(), ["scope"], host=metadata.host, clock=lambda: now[0])

    first = tokens.authorization()
    assert first.startswith("Bearer ") and tokens.authorization() == first and metadata.tokens_issued == 1
    now[0] = 3599 - 225 - 1  # just before google-auth's refresh threshold
    assert tokens.authorization() == first and metadata.tokens_issued == 1
    now[0] += 2
    assert tokens.authorization() != first and metadata.tokens_issued == 2
    tokens.invalidate()
    tokens.authorization()
    assert metadata.tokens_issued == 3


def test_no_metadata_server_is_a_503_that_says_how_to_give_credentials():
    tokens = MetadataServerTokens(Connections(), ["scope"], host="127.0.0.1:9")  # discard: nothing listens
    with pytest.raises(UpstreamUnavailable) as caught:
        tokens.authorization()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in caught.value.message and "ConnectionError" in caught.value.message


class _Tokens:
    def __init__(self) -> None:
        self.fetched = 0

    def authorization(self) -> str:
        self.fetched += 1
        return f"Bearer t{self.fetched}"

    def invalidate(self) -> None:
        pass


class _Recording(Scripted):
    def __init__(self, *answers: object) -> None:
        super().__init__(*answers)
        self.authorization: list[str | None] = []

    def request(self, method: str, url: str, **kwargs: object) -> object:
        self.authorization.append((kwargs.get("headers") or {}).get("Authorization"))  # type: ignore[attr-defined]
        return super().request(method, url, **kwargs)


def _rest(settings, *answers: object) -> tuple[GoogleRest, _Recording, _Tokens]:
    rest, sent, tokens = GoogleRest(settings), _Recording(*answers), _Tokens()
    rest._connections, rest._tokens = sent, tokens  # type: ignore[assignment]
    return rest, sent, tokens


def test_emulators_get_no_token_unless_asked_and_the_certs_never_do():
    rest, sent, _ = _rest(SETTINGS, response(200, {"name": "j"}), response(200, {"k": "-----BEGIN X"}))
    rest.create_pipeline_job("j", {})
    rest.fetch_certs()
    assert sent.authorization == [None, None]

    rest, sent, _ = _rest(SETTINGS._replace(emulator_credentials=True), response(200, {"generation": "1"}))
    rest.object_generation("specs", "o.json")
    assert sent.authorization == ["Bearer t1"]


def test_a_401_refreshes_the_token_once_and_sends_again():
    google = SETTINGS._replace(vertex_emulator=None)
    rest, sent, _ = _rest(google, response(401, b"expired"), response(200, {"name": "j"}))
    assert rest.create_pipeline_job("j", {}) is True
    assert sent.authorization == ["Bearer t1", "Bearer t2"]

    rest, sent, _ = _rest(google, response(401, b"expired"), response(401, b"still"))
    with pytest.raises(Exception, match="HTTP 401"):
        rest.create_pipeline_job("j", {})
    assert len(sent.authorization) == 2


class _OAuthTokenEndpoint(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint, answering any grant (RFC 6749 §5.1)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        form = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.grants.append(form)  # type: ignore[attr-defined]
        body = b'{"access_token": "from-the-grant", "expires_in": 3599, "token_type": "Bearer"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_key_file_credentials_are_refreshed_by_google_auth_over_the_transport(tmp_path, monkeypatch):
    """Off Cloud Run (the Luigi task on a laptop): google.auth.default() finds the key file
    or gcloud's file, and refreshes through google_auth_request, not `requests`."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from vertex_cron_trigger.access_tokens import GoogleAuthTokens, application_default

    server = ThreadingHTTPServer(("127.0.0.1", 0), _OAuthTokenEndpoint)
    server.grants = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file = tmp_path / "key.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "client_email": "luigi@p.iam.gserviceaccount.com",
                "client_id": "1",
                "private_key_id": "k1",
                "private_key": key.decode(),
                "token_uri": f"http://127.0.0.1:{server.server_port}/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    try:
        tokens = application_default(Connections(), ["https://www.googleapis.com/auth/cloud-platform"])
        assert isinstance(tokens, GoogleAuthTokens)
        assert tokens.authorization() == "Bearer from-the-grant"
        assert tokens.authorization() == "Bearer from-the-grant"
    finally:
        server.shutdown()
        server.server_close()
    [grant] = server.grants  # type: ignore[attr-defined]
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in grant


def test_the_metadata_stand_in_answers_by_default_or_by_email_and_only_with_the_flavor_header(metadata):
    connections, root = Connections(), f"http://{metadata.host}/computeMetadata/v1/instance/service-accounts/"
    flavor = {"Metadata-Flavor": "Google"}

    def get(path: str, headers: dict[str, str]) -> int:
        return connections.request("GET", root + path, headers=headers, timeout=(5, 5)).status_code

    assert get("default/token", flavor) == get(f"{metadata.service_account}/token", flavor) == 200
    assert get("default/?recursive=true", flavor) == 200
    assert get("default/token", {}) == 403
    assert get("someone-else@p.iam.gserviceaccount.com/token", flavor) == 404
    assert metadata.tokens_issued == 2
