"""The CDK app that deploys Fleetwave (README.md, "Deploy to AWS"). One stack, one module per concern."""
