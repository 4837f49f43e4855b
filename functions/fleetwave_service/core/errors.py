"""Domain errors and the one map from error class to wire error (house style #3).

Every error a user can see is a class ending in ``Error`` named after the wire error it becomes.
The API handler turns it into: HTTP status + ``x-amzn-ErrorType: <wire name>`` + ``{"message": ...}``.
Never match on message text; match on the class.
"""

from __future__ import annotations


class FleetwaveError(Exception):
    """Base of every error that reaches a caller. Subclasses set ``status`` and ``wire_name``."""

    status: int = 500
    wire_name: str = "InternalServerException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- RoboMaker front door (seeds 000, 001 and reference/robomaker-api.md) --------------------------


class InvalidParameterError(FleetwaveError):
    status = 400
    wire_name = "InvalidParameterException"


class ResourceNotFoundError(FleetwaveError):
    status = 400
    wire_name = "ResourceNotFoundException"


class ResourceAlreadyExistsError(FleetwaveError):
    status = 400
    wire_name = "ResourceAlreadyExistsException"


class ConcurrentDeploymentError(FleetwaveError):
    status = 400
    wire_name = "ConcurrentDeploymentException"


class IdempotentParameterMismatchError(FleetwaveError):
    status = 400
    wire_name = "IdempotentParameterMismatchException"


class LimitExceededError(FleetwaveError):
    status = 400
    wire_name = "LimitExceededException"


class ThrottlingError(FleetwaveError):
    status = 400
    wire_name = "ThrottlingException"


class InternalServerError(FleetwaveError):
    status = 500
    wire_name = "InternalServerException"


class MissingAuthenticationTokenError(FleetwaveError):
    """No operation at this method and path: API Gateway's own answer for a route it does not have."""

    status = 403
    wire_name = "MissingAuthenticationTokenException"


# --- Greengrass V2 front door (seed 002 and reference/greengrass-v2.md) ---------------------------


class ValidationError(FleetwaveError):
    status = 400
    wire_name = "ValidationException"


class GreengrassResourceNotFoundError(FleetwaveError):
    status = 404
    wire_name = "ResourceNotFoundException"


class ConflictError(FleetwaveError):
    status = 409
    wire_name = "ConflictException"


class RequestAlreadyInProgressError(FleetwaveError):
    status = 400
    wire_name = "RequestAlreadyInProgressException"


class GreengrassThrottlingError(FleetwaveError):
    status = 429
    wire_name = "ThrottlingException"


class AccessDeniedError(FleetwaveError):
    status = 403
    wire_name = "AccessDeniedException"


def to_wire(error: FleetwaveError) -> tuple[int, dict[str, str], dict[str, str]]:
    """(status, headers, body) for an error, the shape botocore's rest-json parser reads."""
    return (
        error.status,
        {"x-amzn-ErrorType": error.wire_name, "Content-Type": "application/json"},
        {"message": error.message},
    )
