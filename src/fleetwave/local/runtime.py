"""`LocalRuntime`: the whole Fleetwave stack in one process, no AWS account, no docker.

Components start in order and stop in reverse:

1. ``aws``      moto server (DynamoDB, S3, IoT, Step Functions, ...) with the tables and bundle bucket;
                then the process environment points the in-process runtime at it.
2. ``engine``   hook: ``fleetwave.local.stepfunctions``   (Lambda functions + state machine in moto).
3. ``mqtt``     hook: ``fleetwave.local.broker``          (embedded MQTT broker, stands in for IoT Core).
4. ``bridge``   hook: ``fleetwave.local.bridge``          (status topics -> status handler, like rule -> SQS).
5. ``api``      the API Gateway stand-in (SigV4) in front of the API Lambda handler.

Hook contract (so that those modules plug in without editing this file): the module defines
``create_component(runtime: LocalRuntime) -> Component | None``. It is called after every earlier
component has started, so ``runtime.aws_url``, ``runtime.config`` and the environment are ready; a hook
that adds environment (e.g. FLEETWAVE_STATE_MACHINE_ARN) calls ``runtime.set_environment({...})``. A
``Component`` has ``name``, ``start()``, ``stop()`` and, when it listens, ``url``. The ``mqtt`` component's
``url`` appears in the ready line.
"""

from __future__ import annotations

import errno
import functools
import importlib
import importlib.util
import json
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fleetwave.local.aws import MotoAws
from fleetwave.local.gateway import (
    ApiGateway,
    GatewayIdentity,
    GatewayResponse,
    LambdaHandler,
    error_response,
    url_host,
)
from fleetwave.local.log import logger

DEFAULT_PORT = 8787
DEFAULT_AWS_PORT = 8788
DEFAULT_MQTT_PORT = 1883
DEFAULT_CREDENTIAL = "testing"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account: the one moto files everything under
LOCAL_REGION = "us-east-1"
BUNDLE_BUCKET = "fleetwave-bundles"
API_HANDLER = "fleetwave_service.handlers.api_handler"  # fleetwave_service/lambdas.py, function "api"

# name -> module; order is start order (see the module docstring).
HOOKS: tuple[tuple[str, str], ...] = (
    ("engine", "fleetwave.local.stepfunctions"),  # ENGINE: Lambda adapter + rollout state machine
    ("identity", "fleetwave.local.identity"),  # IDENTITY: local CA, moto's IoT signing with it, policies
    ("mqtt", "fleetwave.local.broker"),  # MQTT: embedded broker
    ("bridge", "fleetwave.local.bridge"),  # MQTT: status topics -> status handler
)


@runtime_checkable
class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LocalRuntimeError(Exception):
    """A start-up failure to report in one line (no traceback)."""


class PortInUseError(LocalRuntimeError):
    def __init__(self, what: str, flag: str, host: str, port: int) -> None:
        super().__init__(f"{what} port {port} on {host} is already in use (choose another with {flag})")
        self.port = port


@dataclass(frozen=True)
class LocalConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    aws_port: int = DEFAULT_AWS_PORT
    mqtt_port: int = DEFAULT_MQTT_PORT
    # Multiplies every wait and timeout of the local runtime (FLEETWAVE_TIME_SCALE).
    time_scale: float = 1.0
    access_key_id: str = DEFAULT_CREDENTIAL
    secret_access_key: str = DEFAULT_CREDENTIAL
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    table_name: str = "fleetwave"
    idempotency_table_name: str = "fleetwave-idempotency"
    bundle_bucket: str = BUNDLE_BUCKET
    # Robots' things get this type at CreateRobot, as in AWS (the stack's RobotThingType).
    thing_type_name: str = "fleetwave-robot"
    # The broker's mTLS listener (None: none) and where the local CA lives (None: the default directory,
    # fleetwave.local.identity); mtls_only: the plain listener refuses all but the stack's own clients.
    mqtts_port: int | None = None
    identity_dir: str | None = None
    mtls_only: bool = False

    @property
    def client_host(self) -> str:
        """The address to reach a server bound on ``host`` from this machine."""
        return url_host(self.host)

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.client_host}:{self.mqtt_port}"


class LocalRuntime:
    """Start/stop the local stack; also a context manager."""

    def __init__(self, config: LocalConfig | None = None, api_handler: LambdaHandler | None = None) -> None:
        self.config = config or LocalConfig()
        self._api_handler = api_handler
        self.components: list[Any] = []
        self._saved_env: dict[str, str | None] = {}
        self.aws: MotoAws | None = None
        self.gateway: ApiGateway | None = None

    # --- what other components and the CLI read -------------------------------------------------------

    @property
    def aws_url(self) -> str:
        assert self.aws is not None, "start() first"
        return self.aws.url

    @property
    def api_url(self) -> str:
        assert self.gateway is not None, "start() first"
        return self.gateway.url

    @property
    def mqtt_url(self) -> str:
        """The embedded broker's URL once it listens (``--mqtt-port 0`` lets it pick the port)."""
        return getattr(self.component("mqtt"), "url", None) or self.config.mqtt_url

    @property
    def mqtts_url(self) -> str | None:
        """The broker's mTLS listener (robots with certificates), once it listens; None without one."""
        return getattr(self.component("mqtt"), "mtls_url", None)

    @property
    def service_mqtt_url(self) -> str:
        """Where the stack's own clients (dispatch, status bridge) connect: the plain listener, with the
        service secret under ``--mtls-only``."""
        return getattr(self.component("mqtt"), "service_url", None) or self.mqtt_url

    def restart_broker(self, timeout: float = 10.0) -> None:
        """Restart the embedded MQTT broker on its port (its retained messages kept) and reconnect the
        status bridge at once: what the fault-injection suite does mid-wave."""
        broker, bridge = self.component("mqtt"), self.component("bridge")
        if broker is None:
            raise RuntimeError("no embedded broker to restart")
        broker.restart(timeout)
        if bridge is not None:
            bridge.reconnect(timeout)

    def component(self, name: str) -> Any | None:
        return next((c for c in self.components if getattr(c, "name", None) == name), None)

    def environment(self) -> dict[str, str]:
        """The environment the in-process handlers read (fleetwave_service.core.settings)."""
        c = self.config
        return {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": c.region,
            "AWS_DEFAULT_REGION": c.region,
            "FLEETWAVE_ACCOUNT_ID": c.account_id,
            "FLEETWAVE_TABLE_NAME": c.table_name,
            "FLEETWAVE_IDEMPOTENCY_TABLE_NAME": c.idempotency_table_name,
            "FLEETWAVE_BUNDLE_BUCKET": c.bundle_bucket,
            "FLEETWAVE_CHANNEL": "mqtt",
            "FLEETWAVE_MQTT_URL": self.service_mqtt_url,
            "FLEETWAVE_TIME_SCALE": f"{c.time_scale:g}",
            "FLEETWAVE_THING_TYPE_NAME": c.thing_type_name,
        }

    def ready_line(self) -> str:
        parts = [f"fleetwave serve: API {self.api_url}", f"AWS {self.aws_url}/"]
        if self.component("mqtt") is not None:
            parts.append(f"MQTT {self.mqtt_url}")
            if self.mqtts_url:
                parts.append(f"MQTTS {self.mqtts_url}")
        parts.append(f"(time scale {self.config.time_scale:g})")
        return "  ".join(parts)

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        c = self.config
        hooks = [(name, module) for name, module in HOOKS if importlib.util.find_spec(module) is not None]
        ports = [("api", "API", "--port", c.port), ("aws", "AWS", "--aws-port", c.aws_port)]
        if any(name == "mqtt" for name, _ in hooks):
            ports.append(("mqtt", "MQTT", "--mqtt-port", c.mqtt_port))
            if c.mqtts_port is not None:
                ports.append(("mqtts", "MQTT/TLS", "--mqtts-port", c.mqtts_port))
        for _, what, flag, port in ports:
            _check_port_free(c.host, port, what, flag)
        try:
            self.aws = MotoAws(
                c.host,
                c.aws_port,
                c.region,
                c.table_name,
                c.idempotency_table_name,
                c.bundle_bucket,
                c.thing_type_name,
            )
            self._start(self.aws, ports)
            self._apply_environment()
            for name, module in hooks:
                component = _hook_component(name, module, self)
                if component is not None:
                    self._start(component, ports)
                    if name == "mqtt":
                        # The service publishes robot commands here: the port the broker really took.
                        self.set_environment({"FLEETWAVE_MQTT_URL": self.service_mqtt_url})
            handler = self._api_handler or _load_api_handler()
            self.gateway = ApiGateway(
                handler,
                {c.access_key_id: c.secret_access_key},
                host=c.host,
                port=c.port,
                identity=GatewayIdentity(account_id=c.account_id, region=c.region),
                mounts={
                    "/console": self._console().handle,
                    **_openapi_mount(),
                    IDENTITY_PATH: self._identity_document,
                },
            )
            self._start(self.gateway, ports)
        except BaseException:
            self.stop()
            raise

    def _console(self) -> Any:
        """The web console at /console/, signing its calls to this gateway with the local key pair."""
        from fleetwave.console.app import ConsoleApp
        from fleetwave.sdk import FleetwaveClient

        c = self.config

        def client() -> FleetwaveClient:
            assert self.gateway is not None
            return FleetwaveClient(
                self.gateway.url, region=c.region, credentials=(c.access_key_id, c.secret_access_key)
            )

        return ConsoleApp(client, allowed_hosts={c.host})

    def _identity_document(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> GatewayResponse:
        """What `fleetwave robot provision` needs of this stack to give a robot its identity (unsigned: the
        CA's certificate and the endpoints are public; the CA's key never leaves the identity directory).
        In AWS the same comes from DescribeEndpoint and the stack's outputs."""
        identity = self.component("identity")
        if method not in ("GET", "HEAD") or path.partition("?")[0] != IDENTITY_PATH:
            return error_response(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token", ""
            )
        if identity is None or identity.ca is None or self.mqtts_url is None:
            return error_response(
                404, "ResourceNotFoundException", "this fleetwave serve has no mTLS listener", ""
            )
        from fleetwave.local.identity import (
            CLAIM_POLICY_NAME,
            PROVISIONING_TEMPLATE_NAME,
            ROBOT_POLICY_NAME,
        )

        document = {
            "mqttUrl": self.mqtts_url,
            "caCertificatePem": identity.ca.ca_pem,
            "awsEndpoint": self.aws_url,
            "region": self.config.region,
            "robotPolicyName": ROBOT_POLICY_NAME,
            "claimPolicyName": CLAIM_POLICY_NAME,
            "provisioningTemplateName": PROVISIONING_TEMPLATE_NAME,
        }
        return GatewayResponse(200, [("Content-Type", "application/json")], json.dumps(document).encode())

    def stop(self) -> None:
        while self.components:
            component = self.components.pop()
            try:
                component.stop()
            except Exception:
                logger.exception("component failed to stop", extra={"component": component.name})
        self._restore_environment()

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, component: Any, ports: list[tuple[str, str, str, int]]) -> None:
        try:
            component.start()
        except OSError as error:
            known = next((p for p in ports if p[0] == component.name), None)
            if error.errno == errno.EADDRINUSE and known is not None:
                raise PortInUseError(known[1], known[2], self.config.host, known[3]) from None
            raise LocalRuntimeError(f"{component.name} failed to start: {error}") from None
        self.components.append(component)

    def set_environment(self, updates: Mapping[str, str | None]) -> None:
        """Set (or, with None, unset) process environment for the in-process handlers, e.g. a hook's
        FLEETWAVE_STATE_MACHINE_ARN. Settings are re-read; stop() restores the previous values."""
        for key, value in updates.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reset_settings()

    def _apply_environment(self) -> None:
        self.set_environment({**self.environment(), "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None})

    def _restore_environment(self) -> None:
        if not self._saved_env:
            return
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        _reset_settings()


def _check_port_free(host: str, port: int, what: str, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the servers bind with, so a port in TIME_WAIT is free and a listening one is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(what, flag, host, port) from None
            raise LocalRuntimeError(f"cannot listen on {host}:{port} ({flag}): {error.strerror}") from None


def _hook_component(name: str, module_name: str, runtime: LocalRuntime) -> Any | None:
    module = importlib.import_module(module_name)
    factory: Callable[[LocalRuntime], Any] | None = getattr(module, "create_component", None)
    if factory is None:
        logger.warning("local component has no create_component(); skipped", extra={"hook": module_name})
        return None
    component = factory(runtime)
    if component is not None and not getattr(component, "name", None):
        component.name = name
    return component


# Where `fleetwave serve` serves the API's OpenAPI document (both front doors), unsigned.
OPENAPI_PATH = "/openapi.json"
# Where it tells `fleetwave robot provision` its broker's mTLS endpoint and CA (docs/robot-identity.md).
IDENTITY_PATH = "/local/identity"


def _openapi_mount() -> dict[str, Any]:
    """The API's OpenAPI document, unsigned, as a gateway mount (a local convenience: the deployed API does
    not serve it). Produced once, by the API's resolver, on the first GET."""
    if importlib.util.find_spec("fleetwave_service") is None:
        return {}

    @functools.cache
    def document() -> bytes:
        from fleetwave_service import handlers  # noqa: F401 - wires the routes' policies, as for a request
        from fleetwave_service.api import openapi_document

        return json.dumps(openapi_document(), indent=2, sort_keys=True).encode("utf-8")

    def serve(method: str, path: str, headers: Mapping[str, str], body: bytes) -> GatewayResponse:
        if method not in ("GET", "HEAD") or path.partition("?")[0] != OPENAPI_PATH:
            return error_response(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token", ""
            )
        return GatewayResponse(200, [("Content-Type", "application/json")], document())

    return {OPENAPI_PATH: serve}


def _load_api_handler() -> LambdaHandler:
    """Import the API handler after the environment points at moto (it builds boto3 clients on import)."""
    module_name, _, attribute = API_HANDLER.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not module_name.startswith(error.name):
            raise
        logger.warning(
            "API handler not available; every signed request gets 502", extra={"handler": API_HANDLER}
        )

        def missing(event: dict[str, Any], context: Any) -> Any:
            raise RuntimeError(f"{API_HANDLER} is not available")

        return missing
    return getattr(module, attribute)


def _reset_settings() -> None:
    from fleetwave_service.core.settings import reset_settings

    reset_settings()
