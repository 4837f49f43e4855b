"""The embedded AWS endpoint: moto in server mode, in this process.

Same process on purpose: the Lambda adapter patches moto's in-process backends so that Lambda invokes from
the state machine run the real handler code here. moto is pinned exactly (pyproject) because of that.

moto's own ``ThreadedMotoServer`` binds inside its thread and, when the bind fails, never sets the event its
``start()`` waits on: a port already in use would hang start-up forever. So this builds the same WSGI app
and server (moto's ``DomainDispatcherApplication`` + ``MotoRequestHandler``) and binds in the caller's
thread, where a busy port is an ``OSError`` right away.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from fleetwave.local import moto_atomic
from fleetwave.local.gateway import Listener
from fleetwave.local.log import logger
from fleetwave.local.s3_expiry import PresignedExpiry

# Step Functions really executes the ASL; Lambda runs without docker (the adapter routes invokes in process).
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


class MotoAws(Listener):
    """moto server on ``host:port`` with the tables and bucket the API needs."""

    name = "aws"

    def __init__(
        self,
        host: str,
        port: int,
        region: str,
        table_name: str,
        idempotency_table_name: str,
        bundle_bucket: str,
        thing_type_name: str = "",
    ) -> None:
        self._host = host
        self._port = port
        self._region = region
        self._table_name = table_name
        self._idempotency_table_name = idempotency_table_name
        self._bundle_bucket = bundle_bucket
        self._thing_type_name = thing_type_name
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where clients (and the in-process runtime) reach it."""
        return self.origin

    def start(self) -> None:
        # werkzeug logs every request at INFO; a rollout makes thousands of them.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Presigned S3 URLs expire here as they do in S3 (moto would serve them forever).
        app = PresignedExpiry(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=MotoRequestHandler
        )
        # The server answers each request on its own thread: without this, two racing requests can both
        # pass one DynamoDB condition (e.g. both take a fleet's job lock).
        moto_atomic.install()
        # A short poll interval keeps stop() prompt (serve_forever checks for shutdown between polls).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fleetwave-moto", daemon=True
        )
        self._thread.start()
        self._configure()
        self._provision()
        logger.info("moto server ready", extra={"url": self.url})

    def stop(self) -> None:
        if self._server is None:
            return
        self._shut_down()
        moto_atomic.uninstall()

    def client(self, service: str) -> Any:
        """A boto3 client for this endpoint (key pair `testing` keeps moto's default account)."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self._region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )

    def _configure(self) -> None:
        # moto's documented way to configure a running server: POST /moto-api/config.
        request = urllib.request.Request(
            f"{self.url}/moto-api/config",
            data=json.dumps(MOTO_CONFIG).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def _provision(self) -> None:
        from fleetwave_service.core.schema import create_tables

        create_tables(self.client("dynamodb"), self._table_name, self._idempotency_table_name)
        s3 = self.client("s3")
        existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
        if self._bundle_bucket not in existing:
            s3.create_bucket(Bucket=self._bundle_bucket)
        if self._thing_type_name:
            iot = self.client("iot")
            known = {t["thingTypeName"] for t in iot.list_thing_types().get("thingTypes", [])}
            if self._thing_type_name not in known:
                iot.create_thing_type(
                    thingTypeName=self._thing_type_name,
                    thingTypeProperties={"thingTypeDescription": "A robot managed by Fleetwave"},
                )
