"""Robot applications: $LATEST, numbered versions pinned to their bundles' ETags (when the bundle is in
S3), listing, deletion."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from fakes.robomaker import BUCKET
from fleetwave_service.core import ids
from fleetwave_service.robomaker import bundles

SUITE = {"name": "ROS2", "version": "Foxy"}


def test_create_robot_application_returns_latest(given, api, monkeypatch):
    # Given a clock
    monkeypatch.setattr(ids, "now", lambda: 1_700_000_000.0)

    # When an application is created with one source per architecture
    sources = [
        {"s3Bucket": BUCKET, "s3Key": "nav/x86.tgz", "architecture": "X86_64"},
        {"s3Bucket": BUCKET, "s3Key": "nav/arm.tgz", "architecture": "ARM64"},
    ]
    response = api.call(
        "createRobotApplication",
        {"name": "nav", "sources": sources, "robotSoftwareSuite": SUITE, "tags": {"team": "nav"}},
    )

    # Then it is $LATEST with a revision, in the original's shape
    assert response.status == 200
    body = response.json
    assert body.pop("revisionId")
    assert body == {
        "arn": "arn:aws:robomaker:us-east-1:123456789012:robot-application/nav/1700000000000",
        "name": "nav",
        "version": "$LATEST",
        "sources": sources,
        "robotSoftwareSuite": SUITE,
        "lastUpdatedAt": 1_700_000_000.0,
        "tags": {"team": "nav"},
    }


def test_create_robot_application_with_a_taken_name_is_rejected(given, api):
    given.application("nav")

    response = api.call(
        "createRobotApplication",
        {
            "name": "nav",
            "sources": [{"s3Bucket": BUCKET, "s3Key": "k", "architecture": "X86_64"}],
            "robotSoftwareSuite": SUITE,
        },
    )

    assert (response.status, response.error_type) == (400, "ResourceAlreadyExistsException")


def test_create_robot_application_version_numbers_and_pins_etags(given, api):
    # Given an application whose bundles are in S3
    application = given.application("nav", architectures=("X86_64", "ARM64"))
    etags = [given.bundle("nav/X86_64.tar.gz", b"nav-X86_64"), given.bundle("nav/ARM64.tar.gz", b"nav-ARM64")]

    # When two versions are created
    first = api.call("createRobotApplicationVersion", {"application": application["arn"]})
    second = api.call("createRobotApplicationVersion", {"application": application["arn"], "s3Etags": etags})

    # Then they are "1" and "2", each source carrying the bundle's ETag, without tags
    assert (first.status, second.status) == (200, 200)
    assert (first.json["version"], second.json["version"]) == ("1", "2")
    assert [source["etag"] for source in first.json["sources"]] == etags
    assert "tags" not in first.json
    assert first.json["revisionId"] != application["revisionId"]


def test_create_robot_application_version_numbers_are_never_reused(given, api):
    # Given an application with versions 1 and 2, of which 2 is deleted
    application = given.application("nav")
    for _ in range(2):
        given.ok("createRobotApplicationVersion", {"application": application["arn"]})
    given.ok("deleteRobotApplication", {"application": application["arn"], "applicationVersion": "2"})

    # When another version is created
    response = api.call("createRobotApplicationVersion", {"application": application["arn"]})

    # Then it is 3
    assert response.json["version"] == "3"


def test_create_robot_application_version_beyond_the_quota_is_rejected(given, api, monkeypatch):
    # Given a deployment allowing two versions per application, and an application with two
    monkeypatch.setenv("FLEETWAVE_MAX_VERSIONS_PER_APPLICATION", "2")
    from fleetwave_service.core.settings import reset_settings

    reset_settings()
    application = given.application("nav")
    for _ in range(2):
        given.ok("createRobotApplicationVersion", {"application": application["arn"]})

    # When a third is created
    response = api.call("createRobotApplicationVersion", {"application": application["arn"]})

    # Then it is a LimitExceededException
    assert (response.status, response.error_type) == (400, "LimitExceededException")


def test_create_robot_application_version_with_a_stale_revision_is_rejected(given, api):
    # Given an application updated after the caller read it
    application = given.application("nav")
    given.ok("updateRobotApplication", {"application": application["arn"], "robotSoftwareSuite": SUITE})

    # When a version is created with the revision the caller read
    response = api.call(
        "createRobotApplicationVersion",
        {"application": application["arn"], "currentRevisionId": application["revisionId"]},
    )

    # Then it is rejected naming currentRevisionId
    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("currentRevisionId:")


def test_create_robot_application_version_with_changed_bundle_etag_is_rejected(given, api):
    # Given an application whose bundle was re-uploaded after the caller took its ETag
    application = given.application("nav")
    old_etag = given.bundle("nav/X86_64.tar.gz", b"first build")
    given.bundle("nav/X86_64.tar.gz", b"second build")

    # When a version is created expecting the old ETag
    response = api.call(
        "createRobotApplicationVersion", {"application": application["arn"], "s3Etags": [old_etag]}
    )

    # Then it is rejected naming s3Etags, and no version exists
    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("s3Etags[0]:")
    missing = api.call(
        "describeRobotApplication", {"application": application["arn"], "applicationVersion": "1"}
    )
    assert missing.error_type == "ResourceNotFoundException"


def _application_with_source(given, bucket, key, name="nav"):
    return given.ok(
        "createRobotApplication",
        {
            "name": name,
            "sources": [{"s3Bucket": bucket, "s3Key": key, "architecture": "X86_64"}],
            "robotSoftwareSuite": SUITE,
        },
    )


@pytest.mark.parametrize(
    "bucket_exists,s3_etags",
    [(True, None), (False, None), (True, ["0123abcd"])],
    ids=["missing-key", "missing-bucket", "missing-key-with-expected-etag"],
)
def test_create_robot_application_version_with_a_missing_bundle_is_stored_without_an_etag(
    given, api, bucket_exists, s3_etags
):
    # Given an application whose source object (or whole bucket) is not in S3, e.g. a placeholder
    if bucket_exists:
        given.bundle("unrelated", b"x")
    application = _application_with_source(given, BUCKET if bucket_exists else "never-made", "nowhere.tgz")

    # When a version is created
    body = {"application": application["arn"], **({"s3Etags": s3_etags} if s3_etags else {})}
    response = api.call("createRobotApplicationVersion", body)

    # Then it is version 1, its source without an etag (the robot fails at deploy time, not the API now)
    assert response.status == 200, response.json
    assert response.json["version"] == "1"
    assert response.json["sources"] == application["sources"]
    assert "etag" not in response.json["sources"][0]
    described = given.ok(
        "describeRobotApplication", {"application": application["arn"], "applicationVersion": "1"}
    )
    assert described["sources"] == application["sources"]


class ForbiddenS3:
    """S3 as the API function sees a bucket it may not read: 403 on HEAD (S3 hides whether it exists)."""

    def head_object(self, **kwargs):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")


def test_create_robot_application_version_with_a_forbidden_bundle_is_stored_without_an_etag(
    given, api, monkeypatch
):
    # Given an application whose bundle the service may not read
    application = _application_with_source(given, "someone-elses-bucket", "nav.tgz")
    monkeypatch.setattr(bundles, "_s3", lambda: ForbiddenS3())

    # When a version is created
    response = api.call("createRobotApplicationVersion", {"application": application["arn"]})

    # Then it is stored, without an etag
    assert response.status == 200, response.json
    assert "etag" not in response.json["sources"][0]


def test_update_robot_application_changes_latest_and_bumps_the_revision(given, api):
    application = given.application("nav")
    new_sources = [{"s3Bucket": BUCKET, "s3Key": "nav/v2.tgz", "architecture": "ARM64"}]

    response = api.call(
        "updateRobotApplication",
        {
            "application": application["arn"],
            "sources": new_sources,
            "robotSoftwareSuite": {"name": "General"},
            "currentRevisionId": application["revisionId"],
        },
    )

    assert response.status == 200
    assert response.json["version"] == "$LATEST"
    assert response.json["sources"] == new_sources
    assert response.json["robotSoftwareSuite"] == {"name": "General"}
    assert response.json["revisionId"] != application["revisionId"]
    assert "tags" not in response.json
    described = api.call("describeRobotApplication", {"application": application["arn"]}).json
    assert described["sources"] == new_sources


def test_update_robot_application_with_a_stale_revision_is_rejected(given, api):
    application = given.application("nav")
    given.ok("updateRobotApplication", {"application": application["arn"], "robotSoftwareSuite": SUITE})

    response = api.call(
        "updateRobotApplication",
        {
            "application": application["arn"],
            "robotSoftwareSuite": SUITE,
            "currentRevisionId": application["revisionId"],
        },
    )

    assert (response.status, response.error_type) == (400, "InvalidParameterException")


def test_describe_robot_application_version_keeps_its_snapshot(given, api):
    # Given version 1, then $LATEST changed
    application = given.application("nav")
    given.ok("createRobotApplicationVersion", {"application": application["arn"]})
    given.ok(
        "updateRobotApplication",
        {
            "application": application["arn"],
            "sources": [{"s3Bucket": BUCKET, "s3Key": "other.tgz", "architecture": "X86_64"}],
            "robotSoftwareSuite": SUITE,
        },
    )

    # When version 1 and $LATEST are described
    one = api.call("describeRobotApplication", {"application": application["arn"], "applicationVersion": "1"})
    latest = api.call("describeRobotApplication", {"application": application["arn"]})

    # Then version 1 still has the old source and both carry the application's tags
    assert one.json["sources"][0]["s3Key"] == "nav/X86_64.tar.gz"
    assert latest.json["sources"][0]["s3Key"] == "other.tgz"
    assert one.json["tags"] == latest.json["tags"] == {}


def test_describe_robot_application_of_a_missing_version_is_not_found(given, api):
    application = given.application("nav")

    response = api.call(
        "describeRobotApplication", {"application": application["arn"], "applicationVersion": "9"}
    )

    assert (response.status, response.error_type) == (400, "ResourceNotFoundException")


def test_list_robot_applications_shows_latest_or_all_versions(given, api):
    # Given two applications, one with two versions
    nav = given.application("nav")
    given.application("arm")
    for _ in range(2):
        given.ok("createRobotApplicationVersion", {"application": nav["arn"]})

    # When applications are listed plain, with ALL versions, and by name with ALL versions
    plain = api.call("listRobotApplications").json["robotApplicationSummaries"]
    every = api.call("listRobotApplications", {"versionQualifier": "ALL"}).json["robotApplicationSummaries"]
    only_nav = api.call(
        "listRobotApplications", {"versionQualifier": "ALL", "filters": [{"name": "name", "values": ["nav"]}]}
    ).json["robotApplicationSummaries"]

    # Then plain shows one summary per application, ALL every version, in the original's shape
    assert [(s["name"], s["version"]) for s in plain] == [("arm", "$LATEST"), ("nav", "$LATEST")]
    assert [(s["name"], s["version"]) for s in every] == [
        ("arm", "$LATEST"),
        ("nav", "$LATEST"),
        ("nav", "1"),
        ("nav", "2"),
    ]
    assert [s["version"] for s in only_nav] == ["$LATEST", "1", "2"]
    assert set(plain[0]) == {"name", "arn", "version", "lastUpdatedAt", "robotSoftwareSuite"}


def test_list_robot_applications_rejects_more_than_100_results(api):
    response = api.call("listRobotApplications", {"maxResults": 101})

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.message.startswith("maxResults:")


def test_delete_robot_application_without_version_removes_everything(given, api):
    application = given.application("nav")
    given.ok("createRobotApplicationVersion", {"application": application["arn"]})

    response = api.call("deleteRobotApplication", {"application": application["arn"]})

    assert (response.status, response.json) == (200, {})
    for version in ({}, {"applicationVersion": "1"}):
        described = api.call("describeRobotApplication", {"application": application["arn"], **version})
        assert described.error_type == "ResourceNotFoundException"
    every = api.call("listRobotApplications", {"versionQualifier": "ALL"}).json["robotApplicationSummaries"]
    assert every == []


def test_delete_robot_application_version_keeps_the_others(given, api):
    application = given.application("nav")
    for _ in range(2):
        given.ok("createRobotApplicationVersion", {"application": application["arn"]})

    response = api.call(
        "deleteRobotApplication", {"application": application["arn"], "applicationVersion": "1"}
    )

    assert response.status == 200
    versions = api.call("listRobotApplications", {"versionQualifier": "ALL"}).json[
        "robotApplicationSummaries"
    ]
    assert [s["version"] for s in versions] == ["$LATEST", "2"]


def test_delete_robot_application_of_a_missing_version_is_an_invalid_parameter(given, api):
    application = given.application("nav")

    response = api.call(
        "deleteRobotApplication", {"application": application["arn"], "applicationVersion": "4"}
    )

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
