"""moto's DynamoDB made atomic for in-process tests: the product's own guard (fleetwave.local.moto_atomic),
which `fleetwave serve` installs on its embedded AWS endpoint."""

from __future__ import annotations

from fleetwave.local.moto_atomic import serialized_dynamodb

__all__ = ["serialized_dynamodb"]
