"""AWS clients, each created on first use for the settings in force.

Created lazily so that moto (tests) or ``AWS_ENDPOINT_URL`` (``fleetwave serve``) is in place before the
client exists; built again when the settings were reset (a new environment). Low-level clients, which are
thread-safe: the local runtime and the tests call the handlers from several threads at once.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from fleetwave_service.core.settings import Settings, get_settings


class LazyClient:
    """``client()`` -> the boto3 client of ``service`` for the current settings."""

    def __init__(self, service: str, config: Config | None = None) -> None:
        self._service = service
        self._config = config
        self._lock = threading.Lock()
        self._built: tuple[Settings, Any] | None = None

    def __call__(self) -> Any:
        settings = get_settings()
        with self._lock:
            if self._built is None or self._built[0] is not settings:
                client = boto3.client(self._service, region_name=settings.region, config=self._config)
                self._built = (settings, client)
            return self._built[1]

    def reset(self) -> None:
        """Forget the client (tests and the local runtime call this after they change the environment)."""
        with self._lock:
            self._built = None
