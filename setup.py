"""Which directories become which packages; everything else about the distribution is in pyproject.toml.

The rollout state machine stays in the top-level ``statemachines/`` directory (the house layout; the CDK
app deploys it from there) and ships as the package ``fleetwave.statemachines``, so the installed
Fleetwave runs the same ASL file. pyproject.toml's ``packages.find`` cannot map a directory outside its
search roots into a package, hence this file (docs/decisions.md).
"""

from setuptools import find_packages, setup

ROOTS = ("src", "functions")  # src/fleetwave (CLI, local stack, agent, SDK), functions/fleetwave_service

found = {root: find_packages(root) for root in ROOTS}
packages = [name for names in found.values() for name in names]
package_dir = {name: f"{root}/{name}" for root, names in found.items() for name in names if "." not in name}

setup(
    packages=[*packages, "fleetwave.statemachines"],
    package_dir={**package_dir, "fleetwave.statemachines": "statemachines"},
    package_data={
        "fleetwave.statemachines": ["*.asl.json"],
        # botocore service models (generated: fleetwave.sdk.generate) and the web console's files
        "fleetwave.sdk": ["data/*/*/*.json"],
        "fleetwave.console": ["static/*"],
        # Amazon Root CA 1: what `fleetwave robot provision` gives a robot of IoT Core to trust
        "fleetwave": ["data/*.pem"],
    },
)
