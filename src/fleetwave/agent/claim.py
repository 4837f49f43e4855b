"""Fleet provisioning by claim, on the robot: trade the shared claim certificate for the robot's own.

The robot connects with the claim certificate (``fleetwave robot claim-certificate`` wrote it, with a
``claim.json`` naming the broker, the CA and the provisioning template), and speaks IoT Core's MQTT
provisioning API (docs/robot-identity.md):

1. subscribe to ``$aws/certificates/create/json/{accepted,rejected}`` and
   ``$aws/provisioning-templates/<template>/provision/json/{accepted,rejected}``;
2. publish ``{}`` on ``$aws/certificates/create/json`` (CreateKeysAndCertificate): the answer carries the
   robot's certificate, private key and an ownership token;
3. publish ``{"certificateOwnershipToken": ..., "parameters": {"RobotName": <robot>}}`` on
   ``$aws/provisioning-templates/<template>/provision/json`` (RegisterThing): the stack's pre-provisioning
   hook admits the robot only when the operator created it, and the answer names its thing.

The identity is then written like `fleetwave robot provision` writes it (agent.json, certificate.pem,
private.key 0600, ca.pem), and the agent runs with it; on later starts it is simply used again.
Standard library and paho only: this runs on the robot.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from fleetwave_service.engine.channels.mqtt_client import parse_mqtt_url

from fleetwave.agent.config import CA_NAME, CERT_NAME, CONFIG_NAME, KEY_NAME, write_identity

logger = logging.getLogger("fleetwave.agent.claim")

CREATE = "$aws/certificates/create/json"
PROVISION = "$aws/provisioning-templates/{template}/provision/json"
ROBOT_NAME_PARAMETER = "RobotName"


class ClaimError(Exception):
    """The exchange failed or was refused; the message says which step and why."""


def read_claim_file(path: Path) -> dict[str, str]:
    """claim.json: mqttUrl, templateName, caFile, certFile, keyFile (paths relative to the file)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ClaimError(f"--claim {path}: cannot read it ({error})") from None
    if not isinstance(document, dict):
        raise ClaimError(f"--claim {path}: must be a JSON object")
    values: dict[str, str] = {}
    for key in ("mqttUrl", "templateName", "caFile", "certFile", "keyFile"):
        value = document.get(key)
        if not isinstance(value, str) or not value:
            raise ClaimError(f"--claim {path}: {key} is missing")
        values[key] = str((Path(path).parent / value).absolute()) if key.endswith("File") else value
    return values


def claim_identity(claim_file: Path, robot: str, directory: Path, timeout: float = 30.0) -> Path:
    """Run the exchange for ``robot`` and write its identity to ``directory``; the agent.json path."""
    claim = read_claim_file(claim_file)
    target = parse_mqtt_url(claim["mqttUrl"])
    template = claim["templateName"]
    replies: dict[str, Any] = {}
    arrived = threading.Condition()
    subscribed = threading.Event()
    connected: dict[str, Any] = {}

    import paho.mqtt.client as paho

    client = paho.Client(
        callback_api_version=paho.CallbackAPIVersion.VERSION2,
        client_id=f"claim-{robot}"[:128],
        protocol=paho.MQTTv311,
        clean_session=True,
    )
    client.tls_set(ca_certs=claim["caFile"], certfile=claim["certFile"], keyfile=claim["keyFile"])
    topics = [
        f"{request}/{reply}"
        for request in (CREATE, PROVISION.format(template=template))
        for reply in ("accepted", "rejected")
    ]

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        connected["code"] = reason_code
        if not reason_code.is_failure:
            client.subscribe([(topic, 1) for topic in topics])
        else:
            subscribed.set()

    def on_subscribe(client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        connected["subscribed"] = [code.is_failure for code in reason_codes]
        subscribed.set()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        with arrived:
            try:
                replies[message.topic] = json.loads(message.payload or b"{}")
            except ValueError:
                replies[message.topic] = {"errorMessage": "unreadable reply"}
            arrived.notify_all()

    def on_disconnect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        with arrived:
            connected["lost"] = str(reason_code)
            arrived.notify_all()
        subscribed.set()

    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_message, client.on_disconnect = on_message, on_disconnect

    def ask(request: str, payload: dict[str, Any]) -> dict[str, Any]:
        for reply in ("accepted", "rejected"):
            replies.pop(f"{request}/{reply}", None)
        client.publish(request, json.dumps(payload), qos=1)
        with arrived:
            done = arrived.wait_for(
                lambda: (
                    any(f"{request}/{r}" in replies for r in ("accepted", "rejected")) or "lost" in connected
                ),
                timeout,
            )
        if f"{request}/rejected" in replies:
            answer = replies[f"{request}/rejected"]
            raise ClaimError(f"{request} rejected: {answer.get('errorCode')}: {answer.get('errorMessage')}")
        if not done or f"{request}/accepted" not in replies:
            raise ClaimError(
                f"{request}: no answer within {timeout:g} s ({connected.get('lost') or 'timed out'})"
            )
        return replies[f"{request}/accepted"]

    try:
        client.connect(target.host, target.port, keepalive=30)
    except OSError as error:
        raise ClaimError(f"cannot reach {target.host}:{target.port}: {error}") from None
    client.loop_start()
    try:
        if not subscribed.wait(timeout):
            raise ClaimError(f"no answer from {target.host}:{target.port} within {timeout:g} s")
        code = connected.get("code")
        if code is None or code.is_failure or any(connected.get("subscribed", [True])):
            raise ClaimError(f"the broker refused the claim certificate ({code or connected.get('lost')})")
        created = ask(CREATE, {})
        registered = ask(
            PROVISION.format(template=template),
            {
                "certificateOwnershipToken": created["certificateOwnershipToken"],
                "parameters": {ROBOT_NAME_PARAMETER: robot},
            },
        )
    finally:
        client.disconnect()
        client.loop_stop()
    thing = registered.get("thingName")
    if not isinstance(thing, str) or not thing:
        raise ClaimError("RegisterThing answered no thingName")
    config = {
        "robot": robot,
        "thingName": thing,
        "mqttUrl": claim["mqttUrl"],
        "caFile": CA_NAME,
        "certFile": CERT_NAME,
        "keyFile": KEY_NAME,
        "certificateId": created.get("certificateId"),
    }
    ca_pem = Path(claim["caFile"]).read_text(encoding="ascii")
    write_identity(directory, config, created["certificatePem"], created["privateKey"], ca_pem)
    logger.info("robot provisioned by claim", extra={"robot": robot, "thingName": thing})
    return directory / CONFIG_NAME
