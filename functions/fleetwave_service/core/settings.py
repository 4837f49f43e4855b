"""Settings: one model, read once from the environment (house style #5).

A standard-library dataclass that checks its values as pydantic did (types, bounds), not a pydantic model:
every function reads its settings, and the provisioning hook (5 s of IoT Core's patience, 256 MB) needs
nothing else of pydantic, whose import costs about a third of ``import boto3`` (docs/performance.md).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass
class Settings:
    """Everything the runtime reads from its environment.

    In AWS the CDK stack sets these on each function; locally `fleetwave serve` sets them in-process.
    A value may be given as its type or as the string an environment variable holds; a wrong or
    out-of-range one is a ``ValueError`` naming the setting.
    """

    region: str = "us-east-1"
    account_id: str = "123456789012"
    partition: str = "aws"
    table_name: str = "fleetwave"
    idempotency_table_name: str = "fleetwave-idempotency"
    state_machine_arn: str = ""
    bundle_bucket: str = ""
    event_bus_name: str = "default"
    # "iot" publishes through the IoT data plane; "mqtt" through a broker at mqtt_url (local runtime).
    channel: str = "iot"
    iot_data_endpoint: str = ""
    # The thing type every robot's thing gets at CreateRobot (the stack's; the local runtime creates its own).
    thing_type_name: str = ""
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    # Multiplies every wait and timeout of the local runtime (FLEETWAVE_TIME_SCALE); 1 in AWS.
    time_scale: float = dataclasses.field(default=1.0, metadata={"gt": 0})
    presigned_url_ttl_seconds: int = dataclasses.field(default=3600, metadata={"ge": 60})
    # Quotas. The original service's defaults were adjustable; Fleetwave is self-hosted, so they are settings.
    max_fleets: int = dataclasses.field(default=1000, metadata={"ge": 1})
    max_concurrent_jobs: int = dataclasses.field(default=100, metadata={"ge": 1})
    max_versions_per_application: int = dataclasses.field(default=40, metadata={"ge": 1})
    retention_days: int = dataclasses.field(default=90, metadata={"ge": 1})

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = _checked(field.name, field.type, getattr(self, field.name))
            bound = field.metadata
            if "gt" in bound and not value > bound["gt"]:
                raise ValueError(f"settings: {field.name} must be greater than {bound['gt']}: {value}")
            if "ge" in bound and not value >= bound["ge"]:
                raise ValueError(f"settings: {field.name} must be at least {bound['ge']}: {value}")
            setattr(self, field.name, value)


def _checked(name: str, kind: str, value: object) -> str | int | float:
    """``value`` as the field's type (``kind``: its annotation), from that type or a string; pydantic's lax
    rules: no bool for a number, an int only from a whole number, a float finite."""
    if kind == "str":
        if isinstance(value, str):
            return value
    elif not isinstance(value, bool):
        try:
            if kind == "int" and isinstance(value, int | str):
                return int(value)
            if kind == "float" and isinstance(value, int | float | str):
                number = float(value)
                if math.isfinite(number):
                    return number
        except ValueError:
            pass
    raise ValueError(f"settings: {name} must be a valid {kind}: {value!r}")


_ENV = {
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "account_id": ("FLEETWAVE_ACCOUNT_ID",),
    "partition": ("FLEETWAVE_PARTITION",),
    "table_name": ("FLEETWAVE_TABLE_NAME",),
    "idempotency_table_name": ("FLEETWAVE_IDEMPOTENCY_TABLE_NAME",),
    "state_machine_arn": ("FLEETWAVE_STATE_MACHINE_ARN",),
    "bundle_bucket": ("FLEETWAVE_BUNDLE_BUCKET",),
    "event_bus_name": ("FLEETWAVE_EVENT_BUS_NAME",),
    "channel": ("FLEETWAVE_CHANNEL",),
    "iot_data_endpoint": ("FLEETWAVE_IOT_DATA_ENDPOINT",),
    "thing_type_name": ("FLEETWAVE_THING_TYPE_NAME",),
    "mqtt_url": ("FLEETWAVE_MQTT_URL",),
    "time_scale": ("FLEETWAVE_TIME_SCALE",),
    "presigned_url_ttl_seconds": ("FLEETWAVE_PRESIGNED_URL_TTL_SECONDS",),
    "max_fleets": ("FLEETWAVE_MAX_FLEETS",),
    "max_concurrent_jobs": ("FLEETWAVE_MAX_CONCURRENT_JOBS",),
    "max_versions_per_application": ("FLEETWAVE_MAX_VERSIONS_PER_APPLICATION",),
    "retention_days": ("FLEETWAVE_RETENTION_DAYS",),
}


# Region prefix -> partition, longest prefix first (AWS's partitions as botocore's endpoints data names them).
_PARTITIONS = (
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("us-gov-", "aws-us-gov"),
    ("cn-", "aws-cn"),
)


def partition_of(region: str) -> str:
    """The partition a region belongs to: ``aws`` unless the region's prefix names another."""
    return next((partition for prefix, partition in _PARTITIONS if region.startswith(prefix)), "aws")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for field, names in _ENV.items():
        for name in names:
            if env.get(name):
                values[field] = env[name]
                break
    if "partition" not in values:
        # The stack sets FLEETWAVE_PARTITION (AWS::Partition); without it, the region tells (the Lambda
        # runtime always sets AWS_REGION). Locally: us-east-1, so `aws`, the ARNs' value today.
        values["partition"] = partition_of(values.get("region", Settings().region))
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests and the local runtime call `reset_settings()`."""
    return load_settings()


def reset_settings() -> None:
    get_settings.cache_clear()
