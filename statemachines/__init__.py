"""The state machine definitions (Amazon States Language), one ``<name>.asl.json`` per machine.

This directory is also the package ``fleetwave.statemachines`` (setup.py maps it), so an installed
Fleetwave carries the very files the CDK app deploys. The local runtime and the CDK app both read them
through ``importlib.resources`` (``ROLLOUT`` below), never through a path relative to the repository:
that works from a checkout, an editable install and a wheel alike.
"""

from __future__ import annotations

from importlib.resources import files

# A Traversable: read_text(), is_file() and name, like a Path; a real file in a wheel or a checkout.
ROLLOUT = files(__name__) / "rollout.asl.json"
