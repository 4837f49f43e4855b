"""The live view of a rollout: reading a job (RoboMaker) or deployment (Greengrass) as per-robot rows
(``view``) and showing it on a terminal (``display``). `fleetwave demo`, `fleetwave jobs watch`,
`fleetwave deployments watch` and the web console's job page all read rollouts through ``view``."""
