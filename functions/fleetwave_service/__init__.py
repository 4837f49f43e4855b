"""Fleetwave service: the Lambda runtime, one package per context (docs/architecture.md).

- ``core/``: errors, ids and ARNs, settings, DynamoDB access and keys, pagination, wire base models.
- ``fleet/``: fleets, robots, the IoT registry and its sync, shared by both front doors.
- ``robomaker/``, ``greengrass/``: the two front doors (routes, logic, store, models, rollout policy).
- ``engine/``: the rollout engine (steps, status path, store, ports and channels, robot protocol).
- ``api.py`` (the API Lambda), ``handlers.py`` (every Lambda entry point, the composition root) and
  ``lambdas.py`` (the table of functions).

This package is the Lambda asset (``functions/``). It holds runtime code only: no CDK, no tests, no
local-runtime code. The same handlers run in AWS and under ``fleetwave serve``. No ``__init__`` imports
anything heavy: a robot imports ``fleetwave_service.engine.messages`` with only pydantic installed.
"""
