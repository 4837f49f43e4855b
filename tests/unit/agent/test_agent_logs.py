"""The agent's log lines: one per event, robot and job first, key=value."""

from __future__ import annotations

import io
import logging
import uuid

from fleetwave.agent.logs import configure_logging


def test_agent_log_line_has_robot_and_job_first_and_quotes_what_needs_it():
    out = io.StringIO()
    # A logger of its own: earlier tests in this process may have reconfigured or disabled existing ones.
    logger = logging.getLogger(f"agent-logs-test-{uuid.uuid4().hex[:6]}")
    configure_logging("INFO", out)
    try:
        logger.info(
            "deployment finished",
            extra={"reason": 'exited with "status" 3', "attempt": 2, "jobId": "deployment-1", "robot": "r1"},
        )
        logger.debug("not shown at INFO")
    finally:
        configure_logging("WARNING")
    [line] = out.getvalue().splitlines()
    assert line.endswith(
        f"INFO {logger.name} deployment finished robot=r1 jobId=deployment-1 attempt=2 "
        'reason="exited with \\"status\\" 3"'
    )
    assert line[:4].isdigit() and line[23] == "Z"  # 2026-05-04T10:12:03.412Z
