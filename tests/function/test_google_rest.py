"""How google_rest.py classifies what Google answers: duplicate, transient (503, Scheduler
retries) or permanent. Unit level, with scripted connections in place of the network."""

from __future__ import annotations

import json
from email.message import Message

import pytest
from vertex_cron_trigger import transport
from vertex_cron_trigger.errors import ConfigError, UpstreamRejected, UpstreamUnavailable
from vertex_cron_trigger.google_rest import GoogleRest
from vertex_cron_trigger.settings import Settings

SETTINGS = Settings(
    project="p",
    region="us-central1",
    workload_sa="w@p.iam.gserviceaccount.com",
    spec_bucket="specs",
    allowed_invokers=frozenset(),
    audiences=(),
    certs_url="http://certs.test/oauth2/v1/certs",
    vertex_emulator="http://vertex.test",
    storage_emulator="http://storage.test",
    on_cloud_run=False,
)
JOB = {"displayName": "x"}


class Canned:
    """An answer as transport.Response gives it: status, headers, the body."""

    def __init__(self, status: int, content: bytes, headers: dict[str, str]) -> None:
        self.status_code, self._content = status, content
        self.headers = Message()
        for name, value in headers.items():
            self.headers[name] = value

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode()

    def read1(self, size: int) -> bytes:
        chunk, self._content = self._content[:size], self._content[size:]
        return chunk

    def close(self) -> None:
        pass

    def __enter__(self) -> Canned:
        return self

    def __exit__(self, *_: object) -> None:
        pass


def response(status: int, body: object = b"", headers: dict[str, str] | None = None) -> Canned:
    return Canned(status, body if isinstance(body, bytes) else json.dumps(body).encode(), headers or {})


def google_error(status: int, name: str, message: str = "boom") -> Canned:
    return response(status, {"error": {"code": status, "message": message, "status": name}})


class BrokenBody(Canned):
    """An error response whose body breaks off while it is read (a streamed download)."""

    def __init__(self, status: int, error: Exception) -> None:
        super().__init__(status, b"", {})
        self._error = error

    @property
    def content(self) -> bytes:
        raise self._error


class Scripted:
    """Connections answering each request with the next scripted response (or raising it)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.timeouts: list[object] = []  # the (connect, read) timeout of each request sent
        self.params: list[dict[str, object]] = []  # the query of each request sent

    def request(self, method: str, url: str, **kwargs: object) -> object:
        self.timeouts.append(kwargs["timeout"])
        self.params.append(dict(kwargs.get("params") or {}))  # type: ignore[call-overload]
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def rest_answering(*answers: object) -> GoogleRest:
    rest = GoogleRest(SETTINGS)
    rest._connections = Scripted(*answers)  # type: ignore[assignment]
    return rest


def test_calls_get_at_most_what_is_left_of_the_request_deadline_and_none_after_it():
    from vertex_cron_trigger.deadline import request_deadline
    from vertex_cron_trigger.google_rest import VERTEX_TIMEOUT

    rest = rest_answering(response(200, {"name": "j"}))
    with request_deadline(10.0):
        rest.create_pipeline_job("j", JOB)
    [(connect, read)] = rest._connections.timeouts
    assert connect <= VERTEX_TIMEOUT[0] and read <= 10.0 < VERTEX_TIMEOUT[1]

    with request_deadline(0.0), pytest.raises(UpstreamUnavailable) as caught:
        rest.create_pipeline_job("j", JOB)
    assert "not sent, the request's 0 s deadline has passed" in caught.value.message
    assert len(rest._connections.timeouts) == 1


def test_without_a_request_deadline_calls_get_their_own_timeouts():
    """The Luigi task submits outside any request."""
    from vertex_cron_trigger.google_rest import VERTEX_TIMEOUT

    rest = rest_answering(response(200, {"name": "j"}))
    rest.create_pipeline_job("j", JOB)
    assert rest._connections.timeouts == [VERTEX_TIMEOUT]


def test_already_exists_is_a_duplicate():
    assert rest_answering(google_error(409, "ALREADY_EXISTS")).create_pipeline_job("j", JOB) is False
    assert rest_answering(response(200, {"name": "j"})).create_pipeline_job("j", JOB) is True


@pytest.mark.parametrize(
    "answer",
    [
        google_error(409, "ABORTED", "concurrent modification, retry"),
        google_error(409, "SOMETHING_NEW"),
        response(409, b"<html>Conflict</html>"),
        response(409, {"error": "ALREADY_EXISTS"}),  # not Google's error shape
        response(409, {"error": {"message": "already exists"}}),  # no status: not provably a duplicate
    ],
)
def test_any_other_409_on_create_is_transient_never_a_duplicate(answer):
    with pytest.raises(UpstreamUnavailable) as caught:
        rest_answering(answer).create_pipeline_job("j", JOB)
    assert "HTTP 409" in caught.value.message and caught.value.status == 503


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 505, 507, 511, 520, 599])
def test_408_429_and_every_5xx_but_501_are_transient(status):
    with pytest.raises(UpstreamUnavailable):
        rest_answering(response(status, b"busy")).create_pipeline_job("j", JOB)
    with pytest.raises(UpstreamUnavailable):
        rest_answering(response(status, b"busy")).object_generation("specs", "o.json")
    with pytest.raises(UpstreamUnavailable):
        rest_answering(response(status, b"busy")).fetch_certs()


@pytest.mark.parametrize("status", [400, 401, 404, 412, 501])
def test_permanent_statuses_are_not_retried(status):
    with pytest.raises(UpstreamRejected):
        rest_answering(response(status, b"no")).create_pipeline_job("j", JOB)


def test_409_aborted_is_transient_elsewhere_too():
    with pytest.raises(UpstreamUnavailable):
        rest_answering(google_error(409, "ABORTED")).count_active_runs("s", excluding="j", limit=1)


REQUEST_FAILURES = [
    transport.ChunkedEncodingError("chunk broke off"),
    transport.SSLError("handshake"),
    transport.ConnectTimeout("no answer to SYN"),
    transport.ReadTimeout("slow"),
    transport.ConnectionError("reset"),
]


@pytest.mark.parametrize("failure", REQUEST_FAILURES, ids=lambda exc: type(exc).__name__)
def test_every_transport_failure_is_transient_for_every_upstream(failure):
    calls = [
        lambda rest: rest.create_pipeline_job("j", JOB),
        lambda rest: rest.get_pipeline_job("projects/p/locations/l/pipelineJobs/j"),
        lambda rest: rest.count_active_runs("s", excluding="j", limit=1),
        lambda rest: rest.object_generation("specs", "o.json"),
        lambda rest: rest.download_object("specs", "o.json", generation=1, max_bytes=10),
        lambda rest: rest.fetch_certs(),
    ]
    for call in calls:
        with pytest.raises(UpstreamUnavailable) as caught:
            call(rest_answering(failure))
        assert type(failure).__name__ in caught.value.message


def test_a_body_that_breaks_off_while_reading_an_error_is_transient():
    broken = BrokenBody(503, transport.ChunkedEncodingError("broke off"))
    with pytest.raises(UpstreamUnavailable):
        rest_answering(broken).download_object("specs", "o.json", generation=1, max_bytes=10)
    # Even a 404 whose body cannot be read is still "the spec does not exist"...
    from vertex_cron_trigger.errors import SpecNotFound

    with pytest.raises(SpecNotFound):
        rest_answering(BrokenBody(404, transport.ChunkedEncodingError("x"))).download_object(
            "specs", "o.json", generation=1, max_bytes=10
        )
    # ...and an unreadable 409 on create is never a duplicate.
    with pytest.raises(UpstreamUnavailable):
        rest_answering(BrokenBody(409, transport.ReadTimeout("x"))).create_pipeline_job("j", JOB)


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (lambda rest: rest.object_generation("specs", "o.json"), response(200, b"<html>proxy</html>")),
        (lambda rest: rest.object_generation("specs", "o.json"), response(200, {"no": "generation"})),
        (lambda rest: rest.object_generation("specs", "o.json"), response(200, [1])),
        (lambda rest: rest.get_pipeline_job("projects/p/locations/l/pipelineJobs/j"), response(200, b"garbage")),
        (lambda rest: rest.count_active_runs("s", excluding="j", limit=1), response(200, b"garbage")),
        (lambda rest: rest.count_active_runs("s", excluding="j", limit=1), response(200, [])),
        (lambda rest: rest.count_active_runs("s", excluding="j", limit=1), response(200, {"pipelineJobs": 5})),
        (lambda rest: rest.fetch_certs(), response(200, b"not json")),
    ],
)
def test_a_garbled_success_body_is_transient_not_a_crash(call, answer):
    with pytest.raises(UpstreamUnavailable):
        call(rest_answering(answer))


@pytest.mark.parametrize("url", ["certs.test/oauth2/v1/certs", "ftp://certs.test/certs", "http://certs.test:port/"])
def test_a_url_the_transport_refuses_is_a_configuration_error_not_an_outage(url):
    from vertex_cron_trigger.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        GoogleRest(SETTINGS._replace(certs_url=url)).fetch_certs()
    assert "VERTEX_CRON_OIDC_CERTS_URL" in caught.value.message and caught.value.status == 500


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_certs_max_age_is_capped_and_certs_must_be_pem_text():
    certs, max_age = rest_answering(
        response(200, {"k": PEM}, {"Cache-Control": "public, max-age=" + "9" * 400})
    ).fetch_certs()
    assert certs == {"k": PEM} and max_age == 24 * 3600
    assert rest_answering(response(200, {"k": PEM}, {"Cache-Control": "max-age=600"})).fetch_certs()[1] == 600
    for neither in ({"k": ["not", "a", "pem"]}, {"k": "PEM"}, {}, {"keys": []}):
        with pytest.raises(ConfigError, match="VERTEX_CRON_OIDC_CERTS_URL"):
            rest_answering(response(200, neither)).fetch_certs()
    with pytest.raises(UpstreamUnavailable):  # a proxy's page, a body cut short: a retry may do
        rest_answering(response(200, b"<html>")).fetch_certs()


def test_a_large_max_concurrent_runs_is_counted_page_by_page():
    """Vertex AI's pageSize is a small int32; the count follows nextPageToken instead."""
    page = [{"name": f"projects/p/locations/us-central1/pipelineJobs/run-{i}"} for i in range(100)]
    rest = rest_answering(
        response(200, {"pipelineJobs": page, "nextPageToken": "t2"}), response(200, {"pipelineJobs": page[:30]})
    )

    assert rest.count_active_runs("s", excluding="j", limit=1000) == 130
    sent = rest._connections.params
    assert [query["pageSize"] for query in sent] == [100, 100] and sent[1]["pageToken"] == "t2"
