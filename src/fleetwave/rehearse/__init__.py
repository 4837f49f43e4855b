"""`fleetwave rehearse`: a planned deployment rolled out by the real engine on a simulated copy of a fleet."""
