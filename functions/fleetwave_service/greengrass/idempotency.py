"""Powertools idempotency on the Greengrass front door's ``clientToken`` (docs/greengrass.md)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

from fleetwave_service.core import dynamo, invocation
from fleetwave_service.core.errors import ConflictError, RequestAlreadyInProgressError
from fleetwave_service.core.settings import get_settings

IDEMPOTENCY_SECONDS = 8 * 3600


def _persistence() -> DynamoDBPersistenceLayer:
    # Built per call on the service's own lazily created client, so moto (tests, serve) is up before it.
    return DynamoDBPersistenceLayer(
        table_name=get_settings().idempotency_table_name,
        boto3_client=dynamo.client(),
        static_pk_value="idempotency#fleetwave-greengrass",
    )


def idempotent_on_client_token(
    response_model: type, validated: tuple[str, ...]
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Powertools idempotency keyed by the request's clientToken (requests without one always run).

    The same token with the same request returns the first successful response for 8 hours; with a
    different request it is a ConflictException; while the first request still runs it is a
    RequestAlreadyInProgressException.
    """

    def decorate(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(function)
        def wrapper(request: Any) -> Any:
            if not getattr(request, "clientToken", None):
                return function(request)
            config = IdempotencyConfig(
                event_key_jmespath="clientToken",
                payload_validation_jmespath="[" + ", ".join(validated) + "]",
                expires_after_seconds=IDEMPOTENCY_SECONDS,
                raise_on_no_idempotency_key=True,
            )
            context = invocation.lambda_context()  # an in-progress record expires with the invocation
            if context is not None and hasattr(context, "get_remaining_time_in_millis"):
                config.register_lambda_context(context)

            @idempotent_function(
                data_keyword_argument="payload",
                persistence_store=_persistence(),
                config=config,
                output_serializer=PydanticSerializer(response_model),
            )
            def run(payload: dict[str, Any]) -> Any:
                return function(request)

            try:
                return run(payload=request.model_dump(mode="json", exclude_none=True))
            except IdempotencyAlreadyInProgressError as error:
                raise RequestAlreadyInProgressError(
                    f"clientToken: a request with token {request.clientToken} is still in progress."
                ) from error
            except IdempotencyValidationError as error:
                raise ConflictError(
                    f"clientToken: token {request.clientToken} was used for a different request."
                ) from error

        return wrapper

    return decorate
