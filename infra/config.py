"""Deployment settings read from CDK context (cdk.json, or `cdk deploy -c fleetwave:<key>=<value>`).

Everything that differs between two deployments of Fleetwave lives here, so the stack itself carries no
account ids, regions or names: the account and region come from the credentials `cdk deploy` runs with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

CONTEXT_PREFIX = "fleetwave:"

# CloudWatch Logs accepts only these retention periods (days); the CDK names them.
_RETENTION_NAMES = (
    "1 ONE_DAY, 3 THREE_DAYS, 5 FIVE_DAYS, 7 ONE_WEEK, 14 TWO_WEEKS, 30 ONE_MONTH, 60 TWO_MONTHS, "
    "90 THREE_MONTHS, 120 FOUR_MONTHS, 150 FIVE_MONTHS, 180 SIX_MONTHS, 365 ONE_YEAR, 400 THIRTEEN_MONTHS, "
    "545 EIGHTEEN_MONTHS, 731 TWO_YEARS, 1096 THREE_YEARS, 1827 FIVE_YEARS, 2192 SIX_YEARS, "
    "2557 SEVEN_YEARS, 2922 EIGHT_YEARS, 3288 NINE_YEARS, 3653 TEN_YEARS"
)
_RETENTION_DAYS = {
    int(days): logs.RetentionDays[name]
    for days, name in (entry.split() for entry in _RETENTION_NAMES.split(", "))
}
_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
# S3 bucket naming rules (the subset that matters for an ARN): 3-63 chars, lowercase, digits, dots, hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A context value is unusable; synth stops with this message instead of deploying something odd."""


@dataclass(frozen=True)
class StageConfig:
    stage: str = "prod"
    log_retention_days: int = 90
    alarm_email: str = ""
    bundle_bucket_names: tuple[str, ...] = ()
    throttle_rate_limit: int = 100
    throttle_burst_limit: int = 200
    # Optional: skips the DescribeEndpoint custom resource when the operator already knows the endpoint.
    iot_data_endpoint: str = ""

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION_DAYS[self.log_retention_days]

    @classmethod
    def from_context(cls, node: Node) -> StageConfig:
        def get(key: str) -> Any:
            return node.try_get_context(CONTEXT_PREFIX + key)

        defaults = cls()
        config = cls(
            stage=_stage(get("stage"), defaults.stage),
            log_retention_days=_retention(get("logRetentionDays"), defaults.log_retention_days),
            alarm_email=_email(get("alarmEmail")),
            bundle_bucket_names=_buckets(get("bundleBucketNames")),
            throttle_rate_limit=_positive_int(
                "throttleRateLimit", get("throttleRateLimit"), defaults.throttle_rate_limit
            ),
            throttle_burst_limit=_positive_int(
                "throttleBurstLimit", get("throttleBurstLimit"), defaults.throttle_burst_limit
            ),
            iot_data_endpoint=str(get("iotDataEndpoint") or ""),
        )
        return config


def _stage(value: Any, default: str) -> str:
    stage = default if value in (None, "") else str(value)
    if not _STAGE.match(stage):
        raise ConfigError(
            f"context {CONTEXT_PREFIX}stage={stage!r}: use 1-20 lowercase letters, digits or '-', "
            "starting with a letter (it becomes part of the stack name and the API stage)"
        )
    return stage


def _retention(value: Any, default: int) -> int:
    days = _positive_int("logRetentionDays", value, default)
    if days not in _RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in sorted(_RETENTION_DAYS))
        raise ConfigError(
            f"context {CONTEXT_PREFIX}logRetentionDays={days}: CloudWatch Logs accepts {allowed}"
        )
    return days


def _positive_int(key: str, value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"context {CONTEXT_PREFIX}{key}={value!r}: expected a whole number") from None
    if number < 1:
        raise ConfigError(f"context {CONTEXT_PREFIX}{key}={value!r}: expected a number of at least 1")
    return number


def _email(value: Any) -> str:
    if value in (None, ""):
        return ""
    email = str(value)
    if not _EMAIL.match(email):
        raise ConfigError(f"context {CONTEXT_PREFIX}alarmEmail={email!r}: expected an email address")
    return email


def _buckets(value: Any) -> tuple[str, ...]:
    # `-c key=a,b` arrives as a string; cdk.json can hold a real list.
    if value in (None, "", []):
        return ()
    names = value.split(",") if isinstance(value, str) else list(value)
    cleaned = tuple(dict.fromkeys(str(name).strip() for name in names if str(name).strip()))
    for name in cleaned:
        if not _BUCKET.match(name):
            raise ConfigError(f"context {CONTEXT_PREFIX}bundleBucketNames: {name!r} is not an S3 bucket name")
    return cleaned
