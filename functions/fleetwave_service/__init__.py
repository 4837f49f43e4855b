"""Fleetwave service: the Lambda runtime (handlers, logic, storage, channels, models).

This package is the Lambda asset (``functions/``). It holds runtime code only: no CDK, no tests,
no local-runtime code. The same handlers run in AWS and under ``fleetwave serve``.
"""
