"""The guard that makes moto's DynamoDB operations atomic (fleetwave serve and in-process tests)."""

from __future__ import annotations

from moto.dynamodb.models import DynamoDBBackend

from fleetwave.local import moto_atomic


def test_moto_atomic_wraps_every_item_operation_and_restores_moto_on_uninstall():
    # Given moto's own methods
    originals = {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS}

    # When the guard is installed, then uninstalled
    moto_atomic.install()
    wrapped = {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS}
    moto_atomic.uninstall()

    # Then every operation was wrapped while installed, and moto's own methods are back afterwards
    assert all(getattr(wrapped[name], "__fleetwave_serialized__", False) for name in moto_atomic.METHODS)
    assert {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS} == originals
    assert not moto_atomic.is_installed()


def test_moto_atomic_installed_twice_stays_until_the_last_uninstall():
    # Given two users of the guard (e.g. an in-process test and an embedded endpoint), stopping out of order
    originals = {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS}
    moto_atomic.install()
    moto_atomic.install()

    # When the first one uninstalls, the guard stays, wrapped once (not twice)
    moto_atomic.uninstall()
    still = DynamoDBBackend.put_item
    assert moto_atomic.is_installed()
    assert still.__wrapped__ is originals["put_item"]

    # And when the last one uninstalls, moto's own methods are back
    moto_atomic.uninstall()
    assert DynamoDBBackend.put_item is originals["put_item"]
    assert not moto_atomic.is_installed()


def test_embedded_aws_endpoint_installs_the_guard_while_it_runs(monkeypatch):
    # Given the embedded AWS endpoint of `fleetwave serve` (tables, bucket and moto config are not under test)
    from fleetwave.local.aws import MotoAws

    monkeypatch.setattr(MotoAws, "_configure", lambda self: None)
    monkeypatch.setattr(MotoAws, "_provision", lambda self: None)
    endpoint = MotoAws("127.0.0.1", 0, "us-east-1", "table", "idempotency", "bucket")

    # When it starts, then stops
    endpoint.start()
    try:
        running = moto_atomic.is_installed()
    finally:
        endpoint.stop()

    # Then moto's DynamoDB was serialised while it ran, and is moto's own again afterwards
    assert running
    assert not moto_atomic.is_installed()
