"""Every function's log lines are written, whether or not it imports the API (which it does lazily)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_step_functions_child_loggers_write_their_lines_without_the_api_imported():
    # Given a fresh interpreter that imports only the composition root, as a rollout step's Lambda does
    script = (
        "import sys, fleetwave_service.handlers\n"
        "assert 'fleetwave_service.api' not in sys.modules, 'the API was imported eagerly'\n"
        "from fleetwave_service.engine.channels import mqtt\n"
        "mqtt.logger.info('channel line', extra={'probe': 1})\n"
    )
    # When a module's child logger (service "fleetwave") writes an INFO line
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    # Then the line is written, as JSON, by the parent logger the composition root configured
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert any(line["message"] == "channel line" and line.get("probe") == 1 for line in lines), done.stdout
