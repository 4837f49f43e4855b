"""Presigned download links of a deployment job, for one architecture: what a command carries, and what a
robot gets again when the command's links have expired (`logic/robot_messages.py`, link requests)."""

from __future__ import annotations

from typing import Any

from fleetwave_service.logic.rollout_ports import BundleSigner
from fleetwave_service.models.messages import Bundle, DownloadCondition


def bundle_link(architecture: str, source: dict[str, Any], signer: BundleSigner) -> Bundle:
    return Bundle(
        url=signer.presign(source["s3Bucket"], source["s3Key"]),
        etag=source.get("etag"),
        architecture=architecture,
        s3Bucket=source["s3Bucket"],
        s3Key=source["s3Key"],
    )


def download_condition_link(job: dict[str, Any], signer: BundleSigner) -> DownloadCondition | None:
    condition_file = (job.get("deploymentConfig") or {}).get("downloadConditionFile")
    if not condition_file:
        return None
    return DownloadCondition(
        url=signer.presign(condition_file["bucket"], condition_file["key"]), etag=condition_file.get("etag")
    )
