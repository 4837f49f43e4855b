"""Settings read from the environment: types and bounds checked as the stack's values are read."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fleetwave_service.core.settings import Settings, load_settings


def test_load_settings_reads_typed_values_from_environment_strings():
    settings = load_settings(
        {"AWS_REGION": "cn-north-1", "FLEETWAVE_TIME_SCALE": "0.05", "FLEETWAVE_MAX_FLEETS": "7"}
    )

    assert settings.region == "cn-north-1"
    assert settings.partition == "aws-cn"
    assert settings.time_scale == 0.05
    assert settings.max_fleets == 7
    assert settings.max_concurrent_jobs == 100  # the default


def test_load_settings_without_environment_is_the_defaults():
    assert load_settings({}) == Settings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FLEETWAVE_TIME_SCALE": "0"}, "time_scale must be greater than 0"),
        ({"FLEETWAVE_TIME_SCALE": "fast"}, "time_scale must be a valid float"),
        ({"FLEETWAVE_TIME_SCALE": "inf"}, "time_scale must be a valid float"),
        ({"FLEETWAVE_MAX_FLEETS": "0"}, "max_fleets must be at least 1"),
        ({"FLEETWAVE_MAX_FLEETS": "1.5"}, "max_fleets must be a valid int"),
        ({"FLEETWAVE_PRESIGNED_URL_TTL_SECONDS": "59"}, "presigned_url_ttl_seconds must be at least 60"),
    ],
)
def test_load_settings_refuses_a_wrong_value_naming_the_setting(environ, message):
    with pytest.raises(ValueError, match=message):
        load_settings(environ)


def test_settings_refuse_a_value_of_another_type():
    with pytest.raises(ValueError, match="region must be a valid str"):
        Settings(region=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retention_days must be a valid int"):
        Settings(retention_days=True)


def test_reading_settings_and_robot_rows_loads_no_pydantic():
    # The provisioning hook's whole cold start: settings, keys and the robot rows, without pydantic.
    code = (
        "import sys, fleetwave_service.handlers as h; h.provisioning_hook_handler\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
