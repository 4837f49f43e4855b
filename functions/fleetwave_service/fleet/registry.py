"""The device registry port: robots are IoT things, fleets are IoT thing groups, and keeping IoT in step
with the rows (IoT names, best-effort removals).

DynamoDB rows are the source of truth for the API; the registry mirrors them so that IoT policies,
Greengrass-style targets (``thing/NAME``, ``thinggroup/NAME``) and the IoT console see the same robots
and fleets. The adapter is the IoT control plane, which moto also serves, so the API behaves the same
under moto, under ``fleetwave serve`` and in AWS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from fleetwave_service.core.dynamo import Row
from fleetwave_service.core.errors import InternalServerError, ResourceAlreadyExistsError
from fleetwave_service.core.settings import get_settings

logger = Logger(service="fleetwave", child=True)

ARCHITECTURE_ATTRIBUTE = "architecture"
_EXISTS = "ResourceAlreadyExistsException"
_MISSING = "ResourceNotFoundException"
# DeleteThing refuses a thing whose principals are still attached; IoT detaches them eventually (seconds).
_STILL_ATTACHED = "InvalidRequestException"
_DETACH_WAIT_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)


class Registry(Protocol):
    def create_thing(self, name: str, architecture: str) -> None: ...

    def delete_thing(self, name: str) -> None: ...

    def retire_thing(self, name: str) -> list[str]: ...

    def create_thing_group(self, name: str) -> None: ...

    def delete_thing_group(self, name: str) -> None: ...

    def add_thing_to_group(self, thing: str, group: str) -> None: ...

    def remove_thing_from_group(self, thing: str, group: str) -> None: ...


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class IotRegistry:
    """The IoT control-plane adapter. Every call is idempotent, so a retried API request is safe."""

    def __init__(self, client: Any = None) -> None:
        self._client = client or boto3.client("iot", region_name=get_settings().region)

    @staticmethod
    def _tolerating(code: str, call: Callable[..., Any], **kwargs: Any) -> bool:
        """``call(**kwargs)``; False when IoT answers ``code`` (already done, or nothing to undo)."""
        try:
            call(**kwargs)
        except ClientError as error:
            if _code(error) != code:
                raise
            return False
        return True

    def create_thing(self, name: str, architecture: str) -> None:
        attributes = {"attributes": {ARCHITECTURE_ATTRIBUTE: architecture}}
        # Robots are things of the stack's thing type (settings.thing_type_name), when one is configured.
        thing_type = get_settings().thing_type_name
        typed = {"thingTypeName": thing_type} if thing_type else {}
        if not self._tolerating(
            _EXISTS, self._client.create_thing, thingName=name, attributePayload=attributes, **typed
        ):
            # A thing left over from an earlier robot of this name: adopt it with the new attributes.
            self._client.update_thing(thingName=name, attributePayload=dict(attributes, merge=False), **typed)

    def delete_thing(self, name: str) -> None:
        self._tolerating(_MISSING, self._client.delete_thing, thingName=name)

    def certificates(self, thing: str) -> list[str]:
        """The ARNs of the principals (certificates) attached to ``thing``."""
        found: list[str] = []
        token: str | None = None
        while True:
            page = self._client.list_thing_principals(
                thingName=thing, **({"nextToken": token} if token else {})
            )
            found += page.get("principals", [])
            token = page.get("nextToken")
            if not token:
                return found

    def revoke_certificate(self, arn: str, thing: str | None = None) -> None:
        """Detach a robot's certificate from ``thing`` and from its policies, deactivate it (IoT Core then
        closes the connections that use it) and delete it. Idempotent: what is already gone is skipped."""
        if ":cert/" not in arn:
            if thing is not None:  # another kind of principal (a Cognito identity): only detached
                self._tolerating(
                    _MISSING, self._client.detach_thing_principal, thingName=thing, principal=arn
                )
            return
        certificate_id = arn.rsplit("/", 1)[-1]
        if thing is not None:
            self._tolerating(_MISSING, self._client.detach_thing_principal, thingName=thing, principal=arn)
        try:
            policies = self._client.list_attached_policies(target=arn).get("policies", [])
        except ClientError as error:
            if _code(error) != _MISSING:
                raise
            return
        for policy in policies:
            self._tolerating(
                _MISSING, self._client.detach_policy, policyName=policy["policyName"], target=arn
            )
        self._tolerating(
            _MISSING, self._client.update_certificate, certificateId=certificate_id, newStatus="INACTIVE"
        )
        try:
            self._client.delete_certificate(certificateId=certificate_id, forceDelete=True)
        except ClientError as error:
            if _code(error) == _MISSING:
                return
            if _code(error) != "DeleteConflictException":
                raise
            # Still attached to another thing (a certificate brought by its owner and shared): inactive,
            # detached from this robot, left for its owner.
            logger.warning("certificate shared with another thing left inactive", extra={"certificate": arn})

    def retire_thing(self, name: str) -> list[str]:
        """Revoke every certificate of the robot's thing, then delete the thing; the revoked ARNs."""
        revoked = self.certificates(name) if self._exists(name) else []
        for arn in revoked:
            self.revoke_certificate(arn, name)
        for delay in (*_DETACH_WAIT_SECONDS, None):
            try:
                self.delete_thing(name)
                return revoked
            except ClientError as error:
                if _code(error) != _STILL_ATTACHED or delay is None:
                    raise
            time.sleep(delay)
        return revoked

    def _exists(self, thing: str) -> bool:
        try:
            self._client.describe_thing(thingName=thing)
        except ClientError as error:
            if _code(error) != _MISSING:
                raise
            return False
        return True

    def create_thing_group(self, name: str) -> None:
        self._tolerating(_EXISTS, self._client.create_thing_group, thingGroupName=name)

    def delete_thing_group(self, name: str) -> None:
        self._tolerating(_MISSING, self._client.delete_thing_group, thingGroupName=name)

    def add_thing_to_group(self, thing: str, group: str) -> None:
        self._client.add_thing_to_thing_group(thingGroupName=group, thingName=thing)

    def remove_thing_from_group(self, thing: str, group: str) -> None:
        self._tolerating(
            _MISSING, self._client.remove_thing_from_thing_group, thingGroupName=group, thingName=thing
        )


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    global _registry
    with _lock:
        if _registry is None:
            _registry = IotRegistry()
        return _registry


def set_registry(registry: Registry | None) -> None:
    """Swap the adapter (tests use a fake; None goes back to IoT on next use)."""
    global _registry
    with _lock:
        _registry = registry


# --- keeping IoT in step with the rows ----------------------------------------------------------------
def check_iot_name_free(name: str, iot_name: str, owner: Row | None, what: str) -> None:
    """Refuse a name whose IoT name another resource already has.

    Only names of 128 characters or more can meet here (one named exactly like another's hashed IoT
    name); two resources on one thing would delete or receive each other's IoT state.
    """
    if owner is not None and owner["name"] != name:
        raise ResourceAlreadyExistsError(
            f"name: its IoT {what} name {iot_name} is already used by {owner['name']}"
        )


def create_mirrored(
    kind: str,
    row: Row,
    store_new: Callable[[Row], bool],
    iot_what: str,
    mirror: Callable[[], object],
    unstore: Callable[[str], object],
) -> None:
    """Store a new fleet or robot ``row`` and make its IoT side (``mirror``).

    A name already taken is a ResourceAlreadyExistsException. When IoT fails, the row is deleted again
    (``unstore``) and the answer is an InternalServerError, so that the caller retries: a fleet without its
    thing group, or a robot without the thing it connects to IoT as, would be half made.
    """
    name = row["name"]
    if not store_new(row):
        raise ResourceAlreadyExistsError(f"a {kind} named {name} already exists")
    try:
        mirror()
    except Exception as error:
        logger.exception(f"{iot_what} creation failed", extra={kind: name})
        unstore(name)
        raise InternalServerError(f"the {kind} could not be created; try again") from error
    logger.info(f"{kind} created", extra={kind: name})


def best_effort(call: Callable[..., None], *args: str) -> None:
    """Mirror a removal into IoT without failing the request.

    Rows are the source of truth; whatever is left behind in IoT is adopted (or cleaned up) by the next
    create of the same name, so a failed removal only costs a warning.
    """
    try:
        call(*args)
    except Exception:
        logger.warning(
            "registry update failed", extra={"call": call.__name__, "targets": list(args)}, exc_info=True
        )
