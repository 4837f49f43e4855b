"""The agent's log lines: one per event, robot and job first, key=value."""

from __future__ import annotations

import io
import logging

from fleetwave.agent.logs import configure_logging


def test_agent_log_line_has_robot_and_job_first_and_quotes_what_needs_it():
    out = io.StringIO()
    configure_logging("INFO", out)
    try:
        logging.getLogger("fleetwave.agent").info(
            "deployment finished",
            extra={"reason": 'exited with "status" 3', "attempt": 2, "jobId": "deployment-1", "robot": "r1"},
        )
        logging.getLogger("fleetwave.agent").debug("not shown at INFO")
    finally:
        configure_logging("WARNING")
    [line] = out.getvalue().splitlines()
    assert line.endswith(
        "INFO fleetwave.agent deployment finished robot=r1 jobId=deployment-1 attempt=2 "
        'reason="exited with \\"status\\" 3"'
    )
    assert line[:4].isdigit() and line[23] == "Z"  # 2026-05-04T10:12:03.412Z
