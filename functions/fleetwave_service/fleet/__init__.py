"""The fleet registry both front doors share: fleets, robots, their IoT things and thing groups, and the
fleet and robot operations (docs/architecture.md). It imports only core."""
