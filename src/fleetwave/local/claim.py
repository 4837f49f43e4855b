"""Fleet provisioning by claim on the local stack: IoT Core's MQTT provisioning API, served by the broker.

A robot connected with a claim certificate (the claim policy attached) publishes on
``$aws/certificates/create/json`` (CreateKeysAndCertificate) and then on
``$aws/provisioning-templates/<template>/provision/json`` (RegisterThing); the answers go to that
connection only, on ``.../accepted`` or ``.../rejected``, as IoT Core sends them. RegisterThing runs the
stack's pre-provisioning hook (the same handler as the Lambda: ``fleetwave_service.fleet.provisioning``),
then what the stack's provisioning template does: the thing (its name from the hook), the certificate
activated, the robot policy and the thing attached to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fleetwave_service.engine.iot_policies import CERTIFICATES_CREATE, PROVISION

from fleetwave.local.identity import PROVISIONING_TEMPLATE_NAME, ROBOT_POLICY_NAME

logger = logging.getLogger("fleetwave.claim")

Reply = Callable[[str, bytes], Awaitable[None]]


class ClaimService:
    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self._secret = secrets.token_bytes(32)
        self.template = PROVISIONING_TEMPLATE_NAME

    async def handle(self, session: Any, topic: str, payload: bytes, reply: Reply) -> None:
        if topic == CERTIFICATES_CREATE:
            answer = await asyncio.to_thread(self._create_keys_and_certificate)
        elif topic == PROVISION.format(template=self.template):
            answer = await asyncio.to_thread(self._register_thing, payload, session.client_id)
        else:
            answer = _rejected(404, "ResourceNotFound", f"no provisioning API on {topic}")
        accepted = "errorCode" not in answer
        await reply(f"{topic}/{'accepted' if accepted else 'rejected'}", json.dumps(answer).encode())

    def _iot(self) -> Any:
        return self._runtime.aws.client("iot")

    def _token(self, certificate_id: str) -> str:
        signature = hmac.new(self._secret, certificate_id.encode(), hashlib.sha256).hexdigest()
        return f"{certificate_id}.{signature}"

    def _certificate_of(self, token: str) -> str | None:
        certificate_id, _, _signature = token.partition(".")
        return (
            certificate_id
            if certificate_id and hmac.compare_digest(self._token(certificate_id), token)
            else None
        )

    def _create_keys_and_certificate(self) -> dict[str, Any]:
        # Inactive until RegisterThing succeeds (the template activates it), as in IoT Core.
        created = self._iot().create_keys_and_certificate(setAsActive=False)
        logger.info("claim: certificate created", extra={"certificateId": created["certificateId"]})
        return {
            "certificateId": created["certificateId"],
            "certificatePem": created["certificatePem"],
            "privateKey": created["keyPair"]["PrivateKey"],
            "certificateOwnershipToken": self._token(created["certificateId"]),
        }

    def _register_thing(self, payload: bytes, client_id: str) -> dict[str, Any]:
        try:
            request = json.loads(payload or b"{}")
        except ValueError:
            return _rejected(400, "InvalidPayload", "the request is not JSON")
        if not isinstance(request, dict):
            return _rejected(400, "InvalidPayload", "the request must be a JSON object")
        certificate_id = self._certificate_of(str(request.get("certificateOwnershipToken") or ""))
        if certificate_id is None:
            return _rejected(400, "InvalidCertificateOwnershipToken", "unknown certificate ownership token")
        parameters = request.get("parameters") or {}
        if not isinstance(parameters, dict):
            return _rejected(400, "InvalidPayload", "parameters must be a JSON object")
        iot = self._iot()
        certificate = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
        from fleetwave_service import handlers

        event = {
            "claimCertificateId": None,
            "certificateId": certificate_id,
            "certificatePem": certificate["certificatePem"],
            "templateArn": f"arn:aws:iot:{self._runtime.config.region}:{self._runtime.config.account_id}:"
            f"provisioningtemplate/{self.template}",
            "clientId": client_id,
            "parameters": {str(k): str(v) for k, v in parameters.items()},
        }
        verdict = handlers.provisioning_hook_handler(event, None)
        if not verdict.get("allowProvisioning"):
            logger.warning(
                "claim: provisioning refused by the hook", extra={"parameters": event["parameters"]}
            )
            iot.delete_certificate(certificateId=certificate_id, forceDelete=True)
            return _rejected(403, "AccessDenied", "the pre-provisioning hook did not allow this robot")
        thing = {**event["parameters"], **(verdict.get("parameterOverrides") or {})}.get("ThingName")
        if not thing:
            return _rejected(400, "InvalidParameters", "no ThingName after the pre-provisioning hook")
        # What the stack's provisioning template does (infra/fleet.py); the thing exists (CreateRobot).
        arn = certificate["certificateArn"]
        iot.update_certificate(certificateId=certificate_id, newStatus="ACTIVE")
        iot.attach_policy(policyName=ROBOT_POLICY_NAME, target=arn)
        iot.attach_thing_principal(thingName=thing, principal=arn)
        logger.info("claim: robot provisioned", extra={"thingName": thing, "certificateId": certificate_id})
        return {"thingName": thing, "deviceConfiguration": {}}


def _rejected(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "errorCode": code, "errorMessage": message}
