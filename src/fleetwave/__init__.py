"""Fleetwave client side: CLI, local runtime, robot agent and simulator, SDK."""

__version__ = "0.1.0"
