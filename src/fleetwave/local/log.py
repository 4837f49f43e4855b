"""The local runtime's structured logger.

It writes to stderr: stdout of `fleetwave serve` carries the ready line that scripts and tests wait for.
Level from POWERTOOLS_LOG_LEVEL (default INFO), like every Powertools logger.
"""

from __future__ import annotations

import sys

from aws_lambda_powertools import Logger

logger = Logger(service="fleetwave-local", stream=sys.stderr)
