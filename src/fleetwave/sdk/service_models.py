"""botocore service models for Fleetwave: the shipped RoboMaker model, botocore's Greengrass V2 model signing
for execute-api, a boto3 client that sees them, and `fleetwave sdk install-models`.

botocore finds a service's model in a list of directories laid out as
``<service>/<api version>/service-2.json`` (AWS_DATA_PATH's entries first, then ``~/.aws/models``, then its
own ``data/``), and takes the newest API version, from the first directory that has it. So:

- ``robomaker`` (2018-06-29) is Fleetwave's own model, generated from its route table and request models
  (fleetwave.sdk.generate) and shipped in the package; botocore dropped AWS's when RoboMaker retired.
- ``greengrassv2`` (2020-11-30) is botocore's own model with ``signingName`` ``execute-api``: API Gateway
  verifies that scope, botocore would sign for ``greengrass``. Written where the AWS CLI reads it, it
  shadows botocore's for every ``aws greengrassv2`` call (which then works against Fleetwave only);
  ``fleetwave sdk remove-models`` takes it away again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

SIGNING_NAME = "execute-api"
ROBOMAKER = "robomaker"
ROBOMAKER_API_VERSION = "2018-06-29"
GREENGRASSV2 = "greengrassv2"
GREENGRASSV2_API_VERSION = "2020-11-30"
SERVICES = (ROBOMAKER, GREENGRASSV2)
SERVICE_FILE = "service-2.json"
PAGINATORS_FILE = "paginators-1.json"
DEFAULT_REGION = "us-east-1"
# Where `aws configure add-model` writes: botocore's customer data path.
DEFAULT_MODELS_DIR = Path("~/.aws/models")


def data_dir() -> Path:
    """The package's model directory (a botocore search path: ``robomaker/2018-06-29/...``)."""
    root = resources.files("fleetwave.sdk") / "data"
    # An installed wheel and an editable install are both plain directories.
    return Path(str(root))


def source_model_dir() -> Path:
    return data_dir() / ROBOMAKER / ROBOMAKER_API_VERSION


def shipped_model(file_name: str = SERVICE_FILE) -> dict[str, Any]:
    return json.loads((source_model_dir() / file_name).read_text(encoding="utf-8"))


def greengrassv2_model() -> dict[str, Any]:
    """botocore's own greengrassv2 model, signing for execute-api."""
    import botocore.loaders

    loader = botocore.loaders.Loader()  # botocore's data only: no ~/.aws/models, no AWS_DATA_PATH
    loader.search_paths[:] = [loader.BUILTIN_DATA_PATH]
    model = loader.load_service_model(GREENGRASSV2, "service-2", GREENGRASSV2_API_VERSION)
    model = json.loads(json.dumps(model))
    model["metadata"]["signingName"] = SIGNING_NAME
    return model


def models_to_install(services: Iterable[str] = SERVICES) -> dict[str, dict[str, Any]]:
    """{relative path: JSON document} of what install-models writes."""
    files: dict[str, dict[str, Any]] = {}
    for service in services:
        if service == ROBOMAKER:
            for name in (SERVICE_FILE, PAGINATORS_FILE):
                files[f"{ROBOMAKER}/{ROBOMAKER_API_VERSION}/{name}"] = shipped_model(name)
        elif service == GREENGRASSV2:
            files[f"{GREENGRASSV2}/{GREENGRASSV2_API_VERSION}/{SERVICE_FILE}"] = greengrassv2_model()
        else:
            raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    return files


def default_models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The first AWS_DATA_PATH entry when it is set (botocore reads it before ~/.aws/models), else
    ~/.aws/models, where `aws configure add-model` writes."""
    env = os.environ if environ is None else environ
    data_path = [entry for entry in env.get("AWS_DATA_PATH", "").split(os.pathsep) if entry]
    return Path(data_path[0] if data_path else DEFAULT_MODELS_DIR).expanduser()


def install_models(target: Path, services: Iterable[str] = SERVICES) -> list[Path]:
    """Write the models under ``target`` (as `aws configure add-model` would); returns the files written."""
    written = []
    for relative, document in models_to_install(services).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written


def remove_models(target: Path, services: Iterable[str] = SERVICES) -> list[Path]:
    """Remove what install_models wrote (only Fleetwave's files: a model signing for execute-api)."""
    removed = []
    for relative in models_to_install(services):
        path = target / relative
        if not path.is_file():
            continue
        if relative.endswith(SERVICE_FILE):
            metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
            if metadata.get("signingName") != SIGNING_NAME:
                continue  # someone else's model: not ours to remove
        path.unlink()
        removed.append(path)
        for parent in (path.parent, path.parent.parent):
            if parent != target and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
    return removed


# --- the one-line setup ---------------------------------------------------------------------------


def session_with_models(session: Any = None) -> Any:
    """A boto3 session whose botocore finds Fleetwave's models before any other."""
    import boto3

    session = session or boto3.session.Session()
    loader = session._session.get_component("data_loader")
    search_paths = loader.search_paths
    shipped = str(data_dir())
    if shipped not in search_paths:
        search_paths.insert(0, shipped)
    return session


def client(
    service_name: str,
    endpoint_url: str,
    *,
    region_name: str | None = None,
    profile_name: str | None = None,
    session: Any = None,
    **kwargs: Any,
) -> Any:
    """``boto3.client(service_name, endpoint_url=...)`` for Fleetwave: ``"robomaker"`` (the shipped model,
    extensions included) or ``"greengrassv2"`` (botocore's model, signing for execute-api).

    Credentials come from boto3's chain (or ``aws_access_key_id``/``aws_secret_access_key``, or
    ``profile_name``); the region defaults to the profile's, else us-east-1. Other keyword arguments go to
    ``client()`` (config, verify...).
    """
    import boto3

    if service_name not in SERVICES:
        raise ValueError(f"fleetwave.sdk.client serves {', '.join(SERVICES)}, not {service_name!r}")
    if session is None:
        session = boto3.session.Session(profile_name=profile_name)
    region_name = region_name or session.region_name or DEFAULT_REGION
    if service_name == GREENGRASSV2:
        from fleetwave.sdk.greengrass import greengrassv2_client

        return greengrassv2_client(endpoint_url, session=session, region_name=region_name, **kwargs)
    return session_with_models(session).client(
        service_name, endpoint_url=endpoint_url, region_name=region_name, **kwargs
    )
