"""The shared core: errors, ids and ARNs, settings, DynamoDB access (one encoding, one key module),
pagination and the wire base models. It imports nothing else of Fleetwave's (docs/architecture.md)."""
