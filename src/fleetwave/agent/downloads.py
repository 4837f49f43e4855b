"""What the agent does with files it is sent: download over HTTP(S), unpack archives safely, read the end
of a log for a failure reason. Shared by robot-application bundles (`process`) and Greengrass component
artifacts (`artifacts`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from fleetwave_service.engine.messages import FailureCode

from fleetwave.agent.presigned import link_expired
from fleetwave.agent.protocol import StepFailed

_CHUNK = 1 << 16
# HTTP answers of S3 to a link that no longer works: 403 (expired, or signed by expired credentials), 400
# (ExpiredToken, when the signing session itself has expired).
EXPIRED_LINK_STATUSES = frozenset({400, 403})
DownloadErrors = (urllib.error.URLError, OSError, ValueError)


def fetch(url: str, target: Path, timeout: float, algorithm: str = "md5") -> tuple[str | None, bytes]:
    """Stream ``url`` into ``target``; returns the served ETag and the content's ``algorithm`` digest
    (hashlib's name). Raises urllib.error.HTTPError for an answer other than 2xx."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"unsupported URL scheme in {url!r}")
    digest = hashlib.new(algorithm)  # md5: S3's etag for single-part objects, not security
    with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:  # noqa: S310
        while chunk := response.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        return response.headers.get("ETag"), digest.digest()


#: Asked for a fresh link when the one in hand cannot be used, with why; raises StepFailed when there is none.
FreshLink = Callable[[str], Awaitable[str]]


async def download(
    url: str,
    target: Path,
    *,
    what: str,
    timeout: float,
    now: float,
    fresh: FreshLink | None,
    algorithm: str = "md5",
) -> tuple[str | None, bytes]:
    """`fetch` with the robot's answer to a link that no longer works (expired by its own query, or refused
    by S3 with 403/400): one more try with a fresh link from ``fresh``. Failures are StepFailed
    (ResourceNotFound) naming ``what``."""
    if link_expired(url, now):
        if fresh is None:
            raise StepFailed(
                FailureCode.RESOURCE_NOT_FOUND,
                f"the {what} link cannot be used (it expired) and no fresh one can be asked for",
            )
        url = await fresh("it expired")
    try:
        return await asyncio.to_thread(fetch, url, target, timeout, algorithm)
    except urllib.error.HTTPError as error:
        if error.code not in EXPIRED_LINK_STATUSES or fresh is None:
            raise http_failure(what, error) from None
        url = await fresh(f"it answered HTTP {error.code} {error.reason}")
    except DownloadErrors as error:
        raise StepFailed(FailureCode.RESOURCE_NOT_FOUND, f"cannot download the {what}: {error}") from None
    try:
        return await asyncio.to_thread(fetch, url, target, timeout, algorithm)
    except urllib.error.HTTPError as again:
        raise http_failure(what, again, " (with a fresh link)") from None
    except DownloadErrors as again:
        raise StepFailed(FailureCode.RESOURCE_NOT_FOUND, f"cannot download the {what}: {again}") from None


def http_failure(what: str, error: urllib.error.HTTPError, note: str = "") -> StepFailed:
    return StepFailed(
        FailureCode.RESOURCE_NOT_FOUND, f"the {what} URL answered HTTP {error.code} {error.reason}{note}"
    )


def extract(archive: Path, destination: Path, *, what: str = "bundle", zip_only: bool = False) -> None:
    """Unpack a tar(.gz) or zip ``archive`` into a fresh ``destination``; members that would land outside
    it are refused (ExtractingBundleFailure)."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    try:
        if not zip_only and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                _extract_tar(tar, destination, what)
            return
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                root = destination.resolve()
                for member in bundle.namelist():
                    if not inside(root, root / member):
                        raise StepFailed(
                            FailureCode.EXTRACTING_BUNDLE_FAILURE,
                            f"the {what} member {member} would be extracted outside the {what} directory",
                        )
                bundle.extractall(destination)
            return
    except StepFailed:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        reason = f"cannot extract the {what}: {error}"
        raise StepFailed(FailureCode.EXTRACTING_BUNDLE_FAILURE, reason) from None
    kinds = "not a zip archive" if zip_only else "neither a tar(.gz) nor a zip archive"
    raise StepFailed(FailureCode.EXTRACTING_BUNDLE_FAILURE, f"the {what} is {kinds}")


def _extract_tar(tar: tarfile.TarFile, destination: Path, what: str) -> None:
    if hasattr(tarfile, "data_filter"):
        # The "data" filter (3.12, and 3.10.12+ / 3.11.4+) refuses absolute paths, .. and links out.
        tar.extractall(destination, filter="data")
        return
    root = destination.resolve()  # older 3.10 patch releases: the same refusals, checked here
    for member in tar.getmembers():
        target = root / member.name
        linked = (target.parent / member.linkname) if member.issym() else root / member.linkname
        if not inside(root, target) or ((member.issym() or member.islnk()) and not inside(root, linked)):
            raise tarfile.TarError(f"the {what} member {member.name} would be extracted outside the {what}")
        if member.isdev():
            raise tarfile.TarError(f"the {what} member {member.name} is a device file")
    tar.extractall(destination)  # noqa: S202 - members checked above


def inside(root: Path, path: Path) -> bool:
    resolved = path.resolve()
    return resolved == root or root in resolved.parents


def log_tail(log: Path, lines: int = 1) -> str:
    """``; last output: ...`` from the end of a log, for a failure reason ("" when there is none)."""
    try:
        with log.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 4096))
            text = file.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f"; last output: {' | '.join(text[-lines:])[:300]}" if text else ""
