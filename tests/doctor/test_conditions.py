"""IAM conditions decided for a whole pipeline root: true only when every request a run
makes there satisfies them; CEL beyond the subset is never guessed."""

from __future__ import annotations

import pytest
from vertex_cron.conditions import Request, Unevaluable, holds, request_kind

OBJECTS = 'resource.name.startsWith("projects/_/buckets/b/objects/vertex-cron/pipeline-root/")'
LISTING = 'api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("vertex-cron/pipeline-root/")'
INFRA = f"{OBJECTS} || {LISTING}"  # iam.tf's pipeline-root condition


@pytest.mark.parametrize(
    "prefix, expected",
    [
        ("vertex-cron/pipeline-root/p/r/nightly/", True),
        ("vertex-cron/pipeline-root/", True),
        ("vertex-cron/", False),  # runs would also write beside the granted folder
        ("vertex-cron/pipeline-rootless/", False),
        ("", False),
    ],
)
def test_infra_condition_covers_roots_inside_its_prefix_for_every_object_request(prefix, expected):
    for kind in (Request.OBJECT, Request.LIST):
        assert holds(INFRA, bucket="b", prefix=prefix, kind=kind) is expected


def test_the_object_part_alone_does_not_allow_listing_nor_another_bucket():
    assert holds(OBJECTS, bucket="b", prefix="vertex-cron/pipeline-root/x/", kind=Request.LIST) is False
    assert holds(OBJECTS, bucket="other", prefix="vertex-cron/pipeline-root/x/", kind=Request.OBJECT) is False


def test_bucket_requests_have_no_object_name_and_no_listed_prefix():
    assert holds(INFRA, bucket="b", prefix="vertex-cron/pipeline-root/", kind=Request.BUCKET) is False
    assert holds('resource.name == "projects/_/buckets/b"', bucket="b", prefix="", kind=Request.BUCKET)
    assert holds(
        'resource.type == "storage.googleapis.com/Bucket" && resource.service == "storage.googleapis.com"',
        bucket="b",
        prefix="",
        kind=Request.BUCKET,
    )
    # an object's name is only known by its prefix: equality never holds for all of them
    assert not holds('resource.name == "projects/_/buckets/b/objects/a/"', bucket="b", prefix="a/", kind=Request.OBJECT)


def test_and_binds_tighter_than_or_and_parentheses_group():
    yes, no = 'resource.service == "storage.googleapis.com"', 'resource.service == "x"'
    assert holds(f"{no} && {no} || {yes}", bucket="b", prefix="", kind=Request.OBJECT)
    assert not holds(f"{no} && ({no} || {yes})", bucket="b", prefix="", kind=Request.OBJECT)


@pytest.mark.parametrize(
    "expression",
    [
        '!resource.name.startsWith("projects/_/buckets/b/")',
        'resource.name.endsWith(".json")',
        'request.time < timestamp("2030-01-01T00:00:00Z")',
        'api.getAttribute("iam.googleapis.com/modifiedGrantsByRole", []).hasOnly(["roles/x"])',
        'resource.name.startsWith("projects/_/buckets/b/"',
    ],
)
def test_cel_beyond_the_subset_is_unevaluable(expression):
    with pytest.raises(Unevaluable):
        holds(expression, bucket="b", prefix="a/", kind=Request.OBJECT)


def test_each_storage_permission_is_checked_on_its_request():
    assert request_kind("storage.buckets.get") is Request.BUCKET
    assert request_kind("storage.objects.list") is Request.LIST
    assert request_kind("storage.objects.create") is Request.OBJECT
