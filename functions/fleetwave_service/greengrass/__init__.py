"""The Greengrass V2 front door: its routes, deployments, components, core devices, tags, idempotency,
continuous deployment and wire models, and its rollout policy for the engine (batches at a growing rate,
abort criteria, component commands). It imports core, fleet and engine, never the RoboMaker front door."""
