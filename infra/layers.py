"""The functions' layers: Powertools resolved at deploy time, PyYAML built offline from the synth environment.

Powertools publishes one public SSM parameter per runtime, architecture and release,
``/aws/service/powertools/python/<arch>/<runtime>/<version>`` (value: that release's layer ARN in the
region). The stack reads it with a CloudFormation dynamic reference (``{{resolve:ssm:...}}``): synth stays
offline, CloudFormation resolves it in the deploying region and partition, and a release whose parameter
does not exist stops the deployment instead of running another Powertools than the one tested. The version
is the one the service is tested with (pyproject's lower bound; a test pins the two together).

PyYAML (Greengrass YAML recipes) is not in the Powertools layer. Its pure-Python package is copied from the
environment that synthesizes the stack into a layer of its own (``python/yaml``), without its optional C
extension (``_yaml``, built for the synth machine's platform, not Lambda's): PyYAML falls back to its
pure-Python loader. No docker, no download.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import shutil
import tempfile
from pathlib import Path

from aws_cdk import CfnDynamicReference, CfnDynamicReferenceService
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

# The Powertools release the layer must be: the version the service is tested with.
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_PARAMETER = "/aws/service/powertools/python/{architecture}/{runtime}/{version}"


def powertools_parameter(architecture: lambda_.Architecture, runtime: lambda_.Runtime) -> str:
    return POWERTOOLS_PARAMETER.format(
        architecture=architecture.name, runtime=runtime.name, version=POWERTOOLS_VERSION
    )


def powertools_layer(
    scope: Construct, construct_id: str, architecture: lambda_.Architecture, runtime: lambda_.Runtime
) -> lambda_.ILayerVersion:
    arn = CfnDynamicReference(
        CfnDynamicReferenceService.SSM, powertools_parameter(architecture, runtime)
    ).to_string()
    return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, arn)


def pyyaml_layer_directory() -> Path:
    """``<dir>/python/yaml/*.py``: the synth environment's PyYAML, pure Python only."""
    spec = importlib.util.find_spec("yaml")
    if spec is None or spec.origin is None:
        raise RuntimeError("PyYAML is not installed where the stack is synthesized: pip install '.[infra]'")
    source = Path(spec.origin).parent
    version = importlib.metadata.version("PyYAML")
    files = sorted(path for path in source.glob("*.py"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"fleetwave-pyyaml-{version}-{digest}"
    package = target / "python" / "yaml"
    if not (package / "__init__.py").is_file():
        staging = Path(tempfile.mkdtemp(prefix="fleetwave-pyyaml-"))
        (staging / "python" / "yaml").mkdir(parents=True)
        for path in files:
            shutil.copy2(path, staging / "python" / "yaml" / path.name)
        try:
            staging.rename(target)
        except OSError:  # another synth made it meanwhile: same content
            shutil.rmtree(staging, ignore_errors=True)
    return target


def pyyaml_layer(
    scope: Construct, construct_id: str, architecture: lambda_.Architecture, runtime: lambda_.Runtime
) -> lambda_.LayerVersion:
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(pyyaml_layer_directory()), exclude=["**/__pycache__"]),
        compatible_architectures=[architecture],
        compatible_runtimes=[runtime],
        description=f"PyYAML {importlib.metadata.version('PyYAML')}, pure Python: Greengrass YAML recipes",
        license="MIT",
    )
