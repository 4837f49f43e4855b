"""Robot applications: a mutable $LATEST and immutable numbered versions that jobs deploy.

A version snapshots $LATEST together with the ETag of every source bundle at that moment, so a robot can
later check it runs exactly the bundle that was versioned (EtagMismatch otherwise). A bundle missing from
S3 is no reason to refuse a version (docs/decisions.md); that source is then stored without an ETag.
"""

from __future__ import annotations

import uuid

from aws_lambda_powertools import Logger

from fleetwave_service.core import ids, listing, pagination
from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import (
    InvalidParameterError,
    LimitExceededError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from fleetwave_service.core.keys import LATEST
from fleetwave_service.core.settings import get_settings
from fleetwave_service.robomaker import bundles, lookup, models, store

logger = Logger(service="fleetwave", child=True)

DEFAULT_PAGE_SIZE = 100
_VERSION_RETRIES = 5


def _revision() -> str:
    return str(uuid.uuid4())


def create_robot_application(
    request: models.CreateRobotApplicationRequest,
) -> models.TaggedRobotApplicationResponse:
    created_at = ids.now()
    row = {
        "name": request.name,
        "arn": ids.robot_application_arn(request.name, ids.epoch_millis(created_at)),
        "version": LATEST,
        "sources": [source.model_dump(mode="json") for source in request.sources],
        "robotSoftwareSuite": request.robotSoftwareSuite.model_dump(mode="json"),
        "lastUpdatedAt": created_at,
        "revisionId": _revision(),
        "lastVersionNumber": 0,
        "tags": request.tags or {},
    }
    if not store.create_application(row):
        raise ResourceAlreadyExistsError(f"a robot application named {request.name} already exists")
    logger.info("robot application created", extra={"application": request.name})
    return models.TaggedRobotApplicationResponse.model_validate(row)


def update_robot_application(
    request: models.UpdateRobotApplicationRequest,
) -> models.RobotApplicationResponse:
    latest = lookup.application(request.application)
    _check_revision(latest, request.currentRevisionId)
    changes = {
        "robotSoftwareSuite": request.robotSoftwareSuite.model_dump(mode="json"),
        "lastUpdatedAt": ids.now(),
        "revisionId": _revision(),
    }
    if request.sources is not None:
        changes["sources"] = [source.model_dump(mode="json") for source in request.sources]
    if not store.update_latest(latest["name"], latest["revisionId"], changes):
        raise InvalidParameterError(
            "currentRevisionId: the application changed while it was being updated; describe it and retry"
        )
    logger.info("robot application updated", extra={"application": latest["name"]})
    return models.RobotApplicationResponse.model_validate(dict(latest, **changes))


def create_robot_application_version(
    request: models.CreateRobotApplicationVersionRequest,
) -> models.RobotApplicationResponse:
    """Snapshot $LATEST as the next number; numbers are never reused, even after a version is deleted."""
    for _ in range(_VERSION_RETRIES):
        latest = lookup.application(request.application)
        _check_revision(latest, request.currentRevisionId)
        limit = get_settings().max_versions_per_application
        if store.count_versions(latest["name"]) >= limit:
            raise LimitExceededError(f"robot application {latest['name']} already has {limit} versions")
        number = int(latest.get("lastVersionNumber", 0)) + 1
        version = {
            "name": latest["name"],
            "arn": latest["arn"],
            "version": str(number),
            "sources": _pinned_sources(latest["name"], latest["sources"], request.s3Etags),
            "robotSoftwareSuite": latest["robotSoftwareSuite"],
            "lastUpdatedAt": ids.now(),
            "revisionId": _revision(),
        }
        if store.create_version(version, number - 1, latest["revisionId"]):
            logger.info(
                "robot application version created", extra={"application": latest["name"], "version": number}
            )
            return models.RobotApplicationResponse.model_validate(version)
        # Another version or an update got in between our read and write: read again.
    raise InvalidParameterError("application: the application is changing too fast to version; retry")


def _check_revision(latest: Row, expected: str | None) -> None:
    if expected is not None and expected != latest["revisionId"]:
        raise InvalidParameterError(
            f"currentRevisionId: {expected} is not the application's current revision {latest['revisionId']}"
        )


def _pinned_sources(
    application: str, sources: list[dict[str, str]], expected_etags: list[str] | None
) -> list[dict[str, str]]:
    """Each source with the ETag its bundle has now, so robots can detect a bundle replaced later.

    A bundle that is not (yet) in S3 does not block the version: scripts and acceptance suites written
    from the reference use placeholder buckets and keys, and a robot that cannot fetch its bundle fails
    at deploy time instead (ResourceNotFound / ExtractingBundleFailure), as a robot-side failure.
    """
    if expected_etags is not None and len(expected_etags) != len(sources):
        raise InvalidParameterError(
            f"s3Etags: expected one etag per source ({len(sources)}), got {len(expected_etags)}"
        )
    pinned = []
    for index, source in enumerate(sources):
        expected = expected_etags[index].strip('"') if expected_etags is not None else None
        etag = bundles.object_etag(source["s3Bucket"], source["s3Key"])
        if etag is None:
            logger.warning(
                "bundle missing or unreadable; version source stored without an etag",
                extra={
                    "application": application,
                    "source": index,
                    "bucket": source["s3Bucket"],
                    "key": source["s3Key"],
                },
            )
            pinned.append(dict(source))
            continue
        if expected is not None and expected != etag:
            raise InvalidParameterError(
                f"s3Etags[{index}]: s3://{source['s3Bucket']}/{source['s3Key']} has etag {etag}, "
                f"not {expected}"
            )
        pinned.append(dict(source, etag=etag))
    return pinned


def describe_robot_application(
    request: models.RobotApplicationVersionRequest,
) -> models.TaggedRobotApplicationResponse:
    version = request.applicationVersion or LATEST
    row = lookup.application_version(request.application, version)
    latest = row if version == LATEST else lookup.application(request.application)
    # Tags belong to the application (one ARN for all its versions).
    return models.TaggedRobotApplicationResponse.model_validate(dict(row, tags=latest.get("tags") or {}))


def list_robot_applications(
    request: models.ListRobotApplicationsRequest,
) -> models.ListRobotApplicationsResponse:
    selected = listing.single_filter(request.filters, ["name"])
    all_versions = request.versionQualifier == "ALL"
    scope = listing.token_scope("ListRobotApplications", selected, request.versionQualifier or LATEST)
    rows, last = store.list_applications_page(
        request.maxResults or DEFAULT_PAGE_SIZE,
        pagination.decode(request.nextToken, scope),
        name=selected[1] if selected else None,
        all_versions=all_versions,
    )
    return models.ListRobotApplicationsResponse(
        robotApplicationSummaries=[models.RobotApplicationSummary.model_validate(row) for row in rows],
        nextToken=pagination.encode(last, scope),
    )


def delete_robot_application(request: models.RobotApplicationVersionRequest) -> None:
    """Without a version (or with $LATEST) the whole application goes; with a number, that version."""
    latest = lookup.application(request.application)
    version = request.applicationVersion or LATEST
    if version == LATEST:
        store.delete_application(latest["name"])
        logger.info("robot application deleted", extra={"application": latest["name"]})
        return
    if not store.delete_version(latest["name"], version):
        raise ResourceNotFoundError(f"robot application {request.application} has no version {version}")
    logger.info(
        "robot application version deleted", extra={"application": latest["name"], "version": version}
    )
