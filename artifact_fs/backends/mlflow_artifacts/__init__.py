"""Proxied artifact access: ``mlflow-artifacts:/`` and ``http(s)://.../api/2.0/mlflow-artifacts/artifacts/...``.

The client of MLflow's artifact server (``mlflow server --serve-artifacts``) and of artifact_fs's own
server, as an fsspec filesystem (:class:`MlflowArtifactsFileSystem`). The backend functions below
turn a parsed URI and MLflow's variables into that filesystem and a path inside it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict

from artifact_fs import integrity
from artifact_fs.backends.mlflow_artifacts.filesystem import (
    MlflowArtifactFile,
    MlflowArtifactsFileSystem,
    MlflowArtifactStreamFile,
    MlflowArtifactWriter,
)
from artifact_fs.backends.mlflow_artifacts.resolve import artifact_path_of, service_url
from artifact_fs.capabilities import Capabilities
from artifact_fs.policy import TransferPolicy
from artifact_fs.uris import ArtifactURI

__all__ = [
    "CAPABILITIES",
    "MlflowArtifactFile",
    "MlflowArtifactStreamFile",
    "MlflowArtifactWriter",
    "MlflowArtifactsFileSystem",
    "MlflowArtifactsOptions",
    "filesystem",
    "fs_path",
    "options",
]

DIGESTS = integrity.TRANSPORT
"""The server records digests; this client checks its ``Repr-Digest`` on whole reads (reads.py)."""
CAPABILITIES = Capabilities(
    empty_directories=False,  # the server keeps files only (MLflow's HTTP repo skips empty dirs)
    atomic_write=True,  # spooled locally, sent as one PUT or one completed multipart upload
    exclusive_create=False,
    server_side_copy=False,
    range_read=True,
    multipart_upload=True,
    presign=False,  # the client uses the server's presigned URLs; it cannot mint them
    delete=True,
    rename=True,  # copy then delete: not atomic
    modified_time=False,  # the listing has no timestamps
)


class MlflowArtifactsOptions(TypedDict, total=False):
    service_url: str
    tracking_uri: str
    environ: Mapping[str, str]
    policy: TransferPolicy
    enable_multipart_upload: bool
    enable_multipart_download: bool
    multipart_upload_minimum_size: int
    multipart_upload_chunk_size: int
    multipart_download_chunk_size: int
    max_workers: int
    block_size: int
    http_options: dict[str, Any]


def options(
    uri: ArtifactURI, environ: Mapping[str, str], *, policy: TransferPolicy | None = None, **overrides: Any
) -> MlflowArtifactsOptions:
    """Resolve the server now (so a bad tracking URI fails here); explicit options win.

    Without ``policy`` the filesystem reads the transfer policy from ``environ`` itself.
    """
    tracking_uri = overrides.get("tracking_uri")
    result: MlflowArtifactsOptions = {
        "service_url": overrides.pop("service_url", None) or service_url(uri, tracking_uri, environ),
    }
    if environ is not os.environ:  # os.environ is read again where the filesystem is unpickled
        result["environ"] = dict(environ)
    if policy is not None:
        result["policy"] = policy
    result.update(overrides)  # type: ignore[typeddict-item]
    return result


def filesystem(options: MlflowArtifactsOptions) -> MlflowArtifactsFileSystem:
    return MlflowArtifactsFileSystem(**options)


def fs_path(uri: ArtifactURI, options: MlflowArtifactsOptions) -> str:
    return artifact_path_of(uri.to_string(reveal=True).split("?", 1)[0])
