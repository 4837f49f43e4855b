"""The web console: fleets, robots, robot applications, deployment jobs with their live view, Greengrass
deployments and core devices, and the actions (create a deployment job, sync, cancel). `fleetwave console`
serves it on its own; `fleetwave serve` serves it at /console/. Its files are package data (``static/``)."""
