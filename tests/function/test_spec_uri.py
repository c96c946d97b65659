import pytest
from vertex_cron_trigger.errors import BadRequest, Forbidden
from vertex_cron_trigger.spec_uri import SpecUri, parse_spec_uri


def test_plain_and_pinned_uris():
    assert parse_spec_uri("gs://specs/a/b.json", allowed_bucket="specs") == SpecUri("specs", "a/b.json", None)
    pinned = parse_spec_uri("gs://specs/a/b.json#1700000000123456", allowed_bucket="specs")
    assert pinned.generation == 1700000000123456 and str(pinned) == "gs://specs/a/b.json#1700000000123456"


def test_other_bucket_is_forbidden():
    with pytest.raises(Forbidden) as caught:
        parse_spec_uri("gs://elsewhere/a.json", allowed_bucket="specs")
    assert caught.value.status == 403 and "elsewhere" in caught.value.message


@pytest.mark.parametrize(
    "uri",
    [
        "https://storage.googleapis.com/specs/a.json",
        "gs://specs",
        "gs://specs/",
        "gs://specs/a/../b.json",
        "gs://specs/a//b.json",
        "gs://specs/./a.json",
        "gs://specs/a.json#latest",
        "gs://specs/a.json#",
        "gs://Specs/a.json",
        "gs://specs/a\nb.json",
    ],
)
def test_malformed_uris_are_bad_requests(uri):
    with pytest.raises(BadRequest) as caught:
        parse_spec_uri(uri, allowed_bucket="specs")
    assert caught.value.field == "spec_uri" and caught.value.status == 400


def test_generations_are_int64():
    largest = 2**63 - 1
    assert parse_spec_uri(f"gs://specs/a.json#{largest}", allowed_bucket="specs").generation == largest
    for generation in (largest + 1, 9999999999999999999):
        with pytest.raises(BadRequest) as caught:
            parse_spec_uri(f"gs://specs/a.json#{generation}", allowed_bucket="specs")
        assert "generation" in caught.value.message and caught.value.field == "spec_uri"


@pytest.mark.parametrize("generation", ["+5", " 5", "5 ", "5\n", "-5", "0x10", "5_000", "١٢"])
def test_generations_are_plain_ascii_digits(generation):
    with pytest.raises(BadRequest):
        parse_spec_uri(f"gs://specs/a.json#{generation}", allowed_bucket="specs")
