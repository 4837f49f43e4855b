"""Robot applications over HTTP: bundles uploaded to the embedded S3 as a user would, then $LATEST, numbered
versions pinned to the bundles' ETags, updates, listings and deletes through `fleetwave serve`."""

from __future__ import annotations

from fakes.robomaker import BUCKET, list_pages, unique

SUITE = {"name": "ROS2", "version": "Foxy"}


def test_application_create_version_describe_update_delete_over_http(api, given, serve):
    # Given two bundles uploaded to S3 through the embedded AWS endpoint
    name = unique("nav")
    s3 = serve.aws_client("s3")
    etags = [
        s3.put_object(Bucket=BUCKET, Key=f"{name}/{arch}.tar.gz", Body=f"{name}-{arch}".encode())[
            "ETag"
        ].strip('"')
        for arch in ("X86_64", "ARM64")
    ]
    sources = [
        {"s3Bucket": BUCKET, "s3Key": f"{name}/{arch}.tar.gz", "architecture": arch}
        for arch in ("X86_64", "ARM64")
    ]

    # When an application is created from them
    created = api.call(
        "createRobotApplication",
        {"name": name, "sources": sources, "robotSoftwareSuite": SUITE, "tags": {"team": "nav"}},
    )

    # Then it is $LATEST with a revision, in the original's shape
    assert created.status == 200, created.json
    arn = created.json["arn"]
    assert arn.startswith(f"arn:aws:robomaker:us-east-1:123456789012:robot-application/{name}/")
    assert {
        key: created.json[key] for key in ("name", "version", "sources", "robotSoftwareSuite", "tags")
    } == {
        "name": name,
        "version": "$LATEST",
        "sources": sources,
        "robotSoftwareSuite": SUITE,
        "tags": {"team": "nav"},
    }

    # When a version is created (with the ETags the user expects)
    version = api.call("createRobotApplicationVersion", {"application": arn, "s3Etags": etags})

    # Then it is "1", each source pinned to its bundle's ETag
    assert version.status == 200, version.json
    assert version.json["version"] == "1"
    assert [source["etag"] for source in version.json["sources"]] == etags

    # When $LATEST is updated, the version keeps its snapshot and the revision moves on
    new_sources = [{"s3Bucket": BUCKET, "s3Key": f"{name}/v2.tar.gz", "architecture": "X86_64"}]
    updated = api.call(
        "updateRobotApplication",
        {
            "application": arn,
            "sources": new_sources,
            "robotSoftwareSuite": {"name": "General"},
            "currentRevisionId": created.json["revisionId"],
        },
    )
    assert updated.status == 200, updated.json
    assert (updated.json["sources"], updated.json["robotSoftwareSuite"]) == (new_sources, {"name": "General"})
    assert updated.json["revisionId"] != created.json["revisionId"]
    one = api.call("describeRobotApplication", {"application": arn, "applicationVersion": "1"}).json
    latest = api.call("describeRobotApplication", {"application": arn}).json
    assert [source["s3Key"] for source in one["sources"]] == [source["s3Key"] for source in sources]
    assert latest["sources"] == new_sources
    assert one["tags"] == latest["tags"] == {"team": "nav"}

    # When version 1 is deleted, then the application, both are gone
    assert api.call("deleteRobotApplication", {"application": arn, "applicationVersion": "1"}).status == 200
    missing = api.call("describeRobotApplication", {"application": arn, "applicationVersion": "1"})
    assert (missing.status, missing.error_type) == (400, "ResourceNotFoundException")
    deleted = api.call("deleteRobotApplication", {"application": arn})
    assert (deleted.status, deleted.json) == (200, {})
    gone = api.call("describeRobotApplication", {"application": arn})
    assert (gone.status, gone.error_type) == (400, "ResourceNotFoundException")


def test_application_version_with_a_bundle_never_uploaded_is_stored_without_an_etag(api, given):
    # Given an application pointing at placeholder bundles (a missing key, and a bucket that does not exist)
    sources = [
        {"s3Bucket": BUCKET, "s3Key": f"{unique('nowhere')}.tgz", "architecture": "X86_64"},
        {"s3Bucket": unique("no-such-bucket"), "s3Key": "app.tgz", "architecture": "ARM64"},
    ]
    application = given.ok(
        "createRobotApplication",
        {"name": unique("placeholder"), "sources": sources, "robotSoftwareSuite": SUITE},
    )

    # When a version is created
    response = api.call("createRobotApplicationVersion", {"application": application["arn"]})

    # Then it is accepted, without etags (a robot that cannot fetch its bundle fails at deploy time)
    assert response.status == 200, response.json
    assert response.json["version"] == "1"
    assert response.json["sources"] == sources


def test_application_version_with_a_changed_bundle_etag_is_an_invalid_parameter(api, given):
    # Given an application whose bundle was rebuilt after the caller took its ETag
    name = unique("nav")
    application = given.application(name)
    key = f"{name}/X86_64.tar.gz"
    old_etag = given.bundle(key, b"first build")
    given.bundle(key, b"second build")

    # When a version is created expecting the old ETag
    response = api.call(
        "createRobotApplicationVersion", {"application": application["arn"], "s3Etags": [old_etag]}
    )

    # Then it is refused naming s3Etags, and no version exists
    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.json["message"].startswith("s3Etags[0]:")
    missing = api.call(
        "describeRobotApplication", {"application": application["arn"], "applicationVersion": "1"}
    )
    assert missing.error_type == "ResourceNotFoundException"


def test_application_version_with_a_stale_revision_is_an_invalid_parameter(api, given):
    application = given.application(unique("nav"))
    given.ok("updateRobotApplication", {"application": application["arn"], "robotSoftwareSuite": SUITE})

    response = api.call(
        "createRobotApplicationVersion",
        {"application": application["arn"], "currentRevisionId": application["revisionId"]},
    )

    assert (response.status, response.error_type) == (400, "InvalidParameterException")
    assert response.json["message"].startswith("currentRevisionId:")


def test_application_with_a_taken_name_is_already_existing(api, given):
    application = given.application(unique("nav"))

    response = api.call(
        "createRobotApplication",
        {"name": application["name"], "sources": application["sources"], "robotSoftwareSuite": SUITE},
    )

    assert (response.status, response.error_type) == (400, "ResourceAlreadyExistsException")


def test_list_robot_applications_pages_through_every_version(api, given):
    # Given an application with four versions: five entries with $LATEST
    application = given.application(unique("nav"))
    for _ in range(4):
        given.ok("createRobotApplicationVersion", {"application": application["arn"]})
    name_filter = [{"name": "name", "values": [application["name"]]}]

    # When ALL versions are listed two at a time
    body = {"versionQualifier": "ALL", "filters": name_filter, "maxResults": 2}
    summaries, pages = list_pages(api, "listRobotApplications", body, "robotApplicationSummaries")
    versions = [summary["version"] for summary in summaries]

    # Then every version appears once, in order, over three pages; the plain listing shows $LATEST only
    assert versions == ["$LATEST", "1", "2", "3", "4"]
    assert pages >= 3
    plain = api.call("listRobotApplications", {"filters": name_filter}).json["robotApplicationSummaries"]
    assert [(summary["name"], summary["version"]) for summary in plain] == [(application["name"], "$LATEST")]
    assert set(plain[0]) == {"name", "arn", "version", "lastUpdatedAt", "robotSoftwareSuite"}
