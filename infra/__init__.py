"""The CDK app that deploys Fleetwave (docs/deploy.md). One stack, one module per concern."""
