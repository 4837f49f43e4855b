"""RoboMaker's routes: ``POST /<lowerCamelOperation>`` with a JSON body, one logic call per operation (a
Router the API handler includes; tags live in fleetwave_service.api, shared with Greengrass).

Request bodies are validated by Powertools against the pydantic models (the seed's constraints).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from fleetwave_service.core.errors import InvalidParameterError, ResourceNotFoundError
from fleetwave_service.core.wire import EmptyResponse
from fleetwave_service.fleet import fleets, robots
from fleetwave_service.fleet import models as fleet_models
from fleetwave_service.robomaker import applications, control, jobs, models

router = APIGatewayRouter()


@contextmanager
def _missing_is_invalid_parameter() -> Iterator[None]:
    """For the operations whose AWS model lists no ResourceNotFoundException (DeleteFleet, DeleteRobot,
    CreateRobotApplicationVersion, DeleteRobotApplication): a resource that does not exist is a parameter
    that is invalid, InvalidParameterException (400, the same message), so SDKs see only modeled errors."""
    try:
        yield
    except ResourceNotFoundError as error:
        raise InvalidParameterError(error.message) from error


# --- fleets ---------------------------------------------------------------------------------------


@router.post("/createFleet")
def create_fleet(body: fleet_models.CreateFleetRequest) -> fleet_models.CreateFleetResponse:
    return fleets.create_fleet(body)


@router.post("/deleteFleet")
def delete_fleet(body: fleet_models.FleetRequest) -> EmptyResponse:
    with _missing_is_invalid_parameter():
        fleets.delete_fleet(body)
    return EmptyResponse()


@router.post("/describeFleet")
def describe_fleet(body: fleet_models.FleetRequest) -> fleet_models.DescribeFleetResponse:
    return fleets.describe_fleet(body)


# List operations accept an absent body: every member of their request is optional.
@router.post("/listFleets")
def list_fleets(
    body: Annotated[fleet_models.ListFleetsRequest | None, Body()] = None,
) -> fleet_models.ListFleetsResponse:
    return fleets.list_fleets(body or fleet_models.ListFleetsRequest())


# --- robots ---------------------------------------------------------------------------------------


@router.post("/createRobot")
def create_robot(body: fleet_models.CreateRobotRequest) -> fleet_models.CreateRobotResponse:
    return robots.create_robot(body)


@router.post("/deleteRobot")
def delete_robot(body: fleet_models.RobotRequest) -> EmptyResponse:
    with _missing_is_invalid_parameter():
        robots.delete_robot(body)
    return EmptyResponse()


@router.post("/describeRobot")
def describe_robot(body: fleet_models.RobotRequest) -> fleet_models.DescribeRobotResponse:
    return robots.describe_robot(body)


@router.post("/listRobots")
def list_robots(
    body: Annotated[fleet_models.ListRobotsRequest | None, Body()] = None,
) -> fleet_models.ListRobotsResponse:
    return robots.list_robots(body or fleet_models.ListRobotsRequest())


@router.post("/registerRobot")
def register_robot(body: fleet_models.RobotMembershipRequest) -> fleet_models.RobotMembershipResponse:
    return robots.register_robot(body)


@router.post("/deregisterRobot")
def deregister_robot(body: fleet_models.RobotMembershipRequest) -> fleet_models.RobotMembershipResponse:
    return robots.deregister_robot(body)


# --- robot applications ---------------------------------------------------------------------------


@router.post("/createRobotApplication")
def create_robot_application(
    body: models.CreateRobotApplicationRequest,
) -> models.TaggedRobotApplicationResponse:
    return applications.create_robot_application(body)


@router.post("/createRobotApplicationVersion")
def create_robot_application_version(
    body: models.CreateRobotApplicationVersionRequest,
) -> models.RobotApplicationResponse:
    with _missing_is_invalid_parameter():
        return applications.create_robot_application_version(body)


@router.post("/updateRobotApplication")
def update_robot_application(body: models.UpdateRobotApplicationRequest) -> models.RobotApplicationResponse:
    return applications.update_robot_application(body)


@router.post("/describeRobotApplication")
def describe_robot_application(
    body: models.RobotApplicationVersionRequest,
) -> models.TaggedRobotApplicationResponse:
    return applications.describe_robot_application(body)


@router.post("/listRobotApplications")
def list_robot_applications(
    body: Annotated[models.ListRobotApplicationsRequest | None, Body()] = None,
) -> models.ListRobotApplicationsResponse:
    return applications.list_robot_applications(body or models.ListRobotApplicationsRequest())


@router.post("/deleteRobotApplication")
def delete_robot_application(body: models.RobotApplicationVersionRequest) -> EmptyResponse:
    with _missing_is_invalid_parameter():
        applications.delete_robot_application(body)
    return EmptyResponse()


# --- deployment jobs ------------------------------------------------------------------------------


@router.post("/createDeploymentJob")
def create_deployment_job(body: models.CreateDeploymentJobRequest) -> models.CreateDeploymentJobResponse:
    return jobs.create_deployment_job(body)


@router.post("/syncDeploymentJob")
def sync_deployment_job(body: models.SyncDeploymentJobRequest) -> models.DeploymentJob:
    return jobs.sync_deployment_job(body)


@router.post("/describeDeploymentJob")
def describe_deployment_job(body: models.JobRequest) -> models.DescribeDeploymentJobResponse:
    return jobs.describe_deployment_job(body)


@router.post("/listDeploymentJobs")
def list_deployment_jobs(
    body: Annotated[models.ListDeploymentJobsRequest | None, Body()] = None,
) -> models.ListDeploymentJobsResponse:
    return jobs.list_deployment_jobs(body or models.ListDeploymentJobsRequest())


@router.post("/cancelDeploymentJob")
def cancel_deployment_job(body: models.JobRequest) -> EmptyResponse:
    jobs.cancel_deployment_job(body)
    return EmptyResponse()


# --- Fleetwave extension operations (docs/extensions.md) -----------------------------------------


@router.post("/approveDeploymentWave")
def approve_deployment_wave(
    body: models.ApproveDeploymentWaveRequest,
) -> models.ApproveDeploymentWaveResponse:
    """Releases the wave an approval gate (deploymentConfig.approval) holds back; with a wave number, approves
    that wave, ahead of time too. Idempotent. See docs/extensions.md."""
    return control.approve_deployment_wave(body)


@router.post("/pauseDeploymentJob")
def pause_deployment_job(body: models.JobRequest) -> EmptyResponse:
    """Stops releasing waves (robots in flight finish) until ResumeDeploymentJob. Idempotent."""
    control.pause_deployment_job(body)
    return EmptyResponse()


@router.post("/resumeDeploymentJob")
def resume_deployment_job(body: models.JobRequest) -> EmptyResponse:
    """Releases waves of a paused job again. Idempotent."""
    control.resume_deployment_job(body)
    return EmptyResponse()


@router.post("/retryDeploymentJob")
def retry_deployment_job(body: models.RetryDeploymentJobRequest) -> models.DeploymentJob:
    """Deploys a finished job's deployment again to its Failed and NoResponse robots only, as a new job with
    the same deployment configuration, linked to it (retryOf, retriedBy)."""
    return control.retry_deployment_job(body)


@router.post("/rollbackFleet")
def rollback_fleet(body: models.RollbackFleetRequest) -> models.DeploymentJob:
    """Deploys the fleet's previous successful deployment (application version and launch config) to every
    robot not on it, as a normal deployment job (rollbackFrom, rollbackTo)."""
    return control.rollback_fleet(body)
