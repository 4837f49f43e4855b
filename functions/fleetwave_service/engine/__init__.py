"""The rollout engine: the step handlers, the status path, the store, the ports and their adapters, and
the interface each front door implements (its rollout policy). It imports no front door
(docs/architecture.md)."""
