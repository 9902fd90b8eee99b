"""Beyond ``mlflow gc``: orphaned roots (``--orphans``) and abandoned uploads (``--uploads``).

Orphans are ``<location>/<run_id>/`` and ``<location>/models/<model_id>/`` directories under an
experiment's artifact location whose id the backend store does not know (older gc versions, manual
database edits). Anything with a file written within the grace period, or whose store gives no
modification times, is kept: an upload may be in flight.
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from artifact_fs import errors
from artifact_fs.gc import roots
from artifact_fs.gc.backend_store import BackendStore
from artifact_fs.gc.collector import Settings
from artifact_fs.gc.report import DELETED, FAILED, KEPT, WOULD_DELETE, Outcome, Report, reason_of
from artifact_fs.paths import RESERVED_PREFIX
from artifact_fs.root import ArtifactRoot

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
MODIFIED_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modify", "modified")


def modified_seconds(info: Mapping[str, Any]) -> float | None:
    """A listing entry's modification time (each fsspec filesystem names it differently)."""
    for key in MODIFIED_KEYS:
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                try:
                    # FTP MLSD: UTC (RFC 3659), not the local time zone
                    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
                except ValueError:
                    continue
    return None


def _locations(store: BackendStore, settings: Settings) -> list[str]:
    resolved = {
        roots.resolve(location, artifacts_destination=settings.artifacts_destination, tracking_uri=None)
        for location in store.artifact_locations(settings.experiment_ids)
    }
    return sorted(resolved)


def _children(root: ArtifactRoot, path: str) -> list[dict[str, Any]]:
    try:
        with errors.translating(path):
            return [e for e in root.backend_fs.ls(path, detail=True) if not roots.same(e["name"], path)]
    except FileNotFoundError:
        return []


def _orphan_candidates(root: ArtifactRoot, known: set[str]) -> Iterator[str]:
    for entry in _children(root, root.path):
        name = posixpath.basename(entry["name"].rstrip("/"))
        if RUN_ID.match(name) and name not in known:
            yield name
        elif name == "models":
            for model in _children(root, entry["name"].rstrip("/")):
                model_name = posixpath.basename(model["name"].rstrip("/"))
                if MODEL_ID.match(model_name) and model_name not in known:
                    yield f"models/{model_name}"


def collect_orphans(
    store: BackendStore, settings: Settings, report: Report, *, grace_ms: int, yes: bool
) -> None:
    """Report (and with ``yes`` delete) roots the backend store does not know, older than the grace."""
    known = store.known_ids()
    newest_allowed = time.time() - grace_ms / 1000
    for location in _locations(store, settings):
        try:
            parent = roots.open_for_gc(location, settings.environ, settings.tracking_uri)
            candidates = list(_orphan_candidates(parent, known))
        except Exception as exc:  # noqa: BLE001 - one location's failure is reported, the rest go on
            report.add(Outcome("orphan_scan", location, FAILED, uri=location, reason=reason_of(exc)))
            continue
        for relative in candidates:
            uri = location.rstrip("/") + "/" + relative
            outcome = Outcome("orphan", posixpath.basename(relative), FAILED, uri=uri)
            try:
                root = roots.open_for_gc(uri, settings.environ, settings.tracking_uri)
                entries = _files_with_times(root)
                outcome.objects = len(entries)
                outcome.bytes = sum(int(e.get("size") or 0) for e in entries)
                times = [modified_seconds(e) for e in entries]
                if any(t is None for t in times):
                    outcome.status, outcome.reason = KEPT, "the store gives no modification times"
                elif any(t is not None and t > newest_allowed for t in times):
                    outcome.status, outcome.reason = KEPT, "written within the grace period"
                elif not yes or settings.dry_run:
                    outcome.status = WOULD_DELETE
                else:
                    roots.delete(root, roots.contents(root))
                    outcome.status = DELETED
            except Exception as exc:  # noqa: BLE001 - reported, the rest go on
                outcome.reason = reason_of(exc)
            report.add(outcome)


def _files_with_times(root: ArtifactRoot) -> list[dict[str, Any]]:
    fs = root.backend_fs
    with errors.translating(root.path):
        if root.capabilities.empty_directories:
            return [e for e in roots.walk(fs, root.path) if e["type"] != "directory" or roots.is_link(e)]
        return list(fs.find(root.path, detail=True, withdirs=False).values())


def collect_uploads(store: BackendStore, settings: Settings, report: Report, *, older_than_ms: int) -> None:
    """Abort multipart uploads and remove ``.artifact.uploading.*`` files older than the threshold."""
    cutoff = time.time() - older_than_ms / 1000
    for location in _locations(store, settings):
        try:
            root = roots.open_for_gc(location, settings.environ, settings.tracking_uri)
            _abort_multipart_uploads(root, cutoff, settings, report)
            _remove_temporaries(root, cutoff, settings, report)
        except Exception as exc:  # noqa: BLE001 - one location's failure is reported, the rest go on
            report.add(Outcome("upload_scan", location, FAILED, uri=location, reason=reason_of(exc)))


def _abort_multipart_uploads(root: ArtifactRoot, cutoff: float, settings: Settings, report: Report) -> None:
    """S3 (s3fs) keeps parts of unfinished uploads forever; list them under the root and abort."""
    fs = root.backend_fs
    call_s3 = getattr(fs, "call_s3", None)
    if not callable(call_s3):
        return
    bucket, _, prefix = root.path.partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        with errors.translating(root.path):
            page = call_s3("list_multipart_uploads", **request)
        for upload in page.get("Uploads", []) or []:
            initiated = upload.get("Initiated")
            started = initiated.timestamp() if isinstance(initiated, datetime) else None
            key = upload["Key"]
            outcome = Outcome("multipart_upload", upload["UploadId"], FAILED, uri=f"s3://{bucket}/{key}")
            if started is None or started > cutoff:
                continue
            if settings.dry_run:
                outcome.status = WOULD_DELETE
            else:
                try:
                    with errors.translating(key):
                        call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload["UploadId"])
                    outcome.status = DELETED
                except FileNotFoundError:
                    outcome.status = DELETED  # finished or aborted by someone else meanwhile
                except OSError as exc:
                    outcome.reason = reason_of(exc)
            report.add(outcome)
        if not page.get("IsTruncated"):
            return
        request.update(KeyMarker=page.get("NextKeyMarker"), UploadIdMarker=page.get("NextUploadIdMarker"))


def _remove_temporaries(root: ArtifactRoot, cutoff: float, settings: Settings, report: Report) -> None:
    """Hidden ``.artifact.uploading.*`` files (local, FTP, SFTP writes; GCS multipart parts)."""
    fs = root.backend_fs
    for entry in _raw_walk(root):
        name = entry["name"].rstrip("/")
        if not posixpath.basename(name).startswith(RESERVED_PREFIX) or not roots.inside(root, name):
            continue
        modified = modified_seconds(entry)
        if modified is None or modified > cutoff:
            continue
        outcome = Outcome(
            "temporary_upload",
            posixpath.basename(name),
            FAILED,
            uri=name,
            objects=1,
            bytes=int(entry.get("size") or 0),
        )
        if settings.dry_run:
            outcome.status = WOULD_DELETE
        else:
            try:
                with errors.translating(name):
                    _raw_remove(fs, name)
                outcome.status = DELETED
            except FileNotFoundError:
                outcome.status = DELETED
            except OSError as exc:
                outcome.reason = reason_of(exc)
        report.add(outcome)


def _raw_walk(root: ArtifactRoot) -> Iterator[dict[str, Any]]:
    fs = root.backend_fs
    if not root.capabilities.empty_directories:
        with errors.translating(root.path):
            try:
                yield from fs.find(root.path, detail=True, withdirs=False).values()
            except FileNotFoundError:
                return
        return
    listing = roots.implementation(fs, "ls")
    pending = [root.path]
    while pending:
        path = pending.pop()
        try:
            with errors.translating(path):
                entries = listing(path, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if roots.same(entry["name"], path):
                continue
            yield entry
            if entry["type"] == "directory" and not roots.is_link(entry):
                pending.append(entry["name"])


def _raw_remove(fs: Any, path: str) -> None:
    roots.implementation(fs, "rm_file")(path)
