"""The embedded broker's authentication: every client may connect, named clients keep persistent sessions.

A local broker has no credentials to check. amqtt keeps the QoS 1 messages of a disconnected persistent
session (``clean_session=False``) only for a client that is not anonymous, so a client that gives a username
(the status bridge) is not: what is published while it is away waits for it, as IoT Core keeps messages for
a persistent session. Its own module because amqtt loads plugins by dotted path, and importing
fleetwave.local.broker must not need amqtt.
"""

from __future__ import annotations

from typing import Any

from amqtt.plugins.base import BaseAuthPlugin


class OpenAuthPlugin(BaseAuthPlugin):
    async def authenticate(self, *, session: Any) -> bool:
        session.is_anonymous = not session.username
        return True
