"""The RoboMaker front door: its routes, robot applications, deployment jobs, tags, lookups and wire
models, and its rollout policy for the engine (percentage waves, one failure threshold, a bundle per
architecture). It imports core, fleet and engine, never the Greengrass front door."""
