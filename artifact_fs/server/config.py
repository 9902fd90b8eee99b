"""The server's configuration, read from MLflow's variables so ``mlflow server`` deployments carry over.

Every worker process builds its app from the environment (``app_from_environment``), which is how
``--workers N`` share one configuration without any shared state.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from artifact_fs import settings
from artifact_fs.server import transfer

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter for the size from which allocations get their own mapping."""
MMAP_THRESHOLD = 128 * settings.KIB
"""glibc's initial threshold, kept fixed: buffers of a part or a chunk go back to the system when freed."""


@dataclass(frozen=True)
class ServerConfig:
    destination: str = "./mlartifacts"
    """Where artifacts live: any artifact_fs URI (``MLFLOW_ARTIFACTS_DESTINATION``)."""
    presigned_only: bool = False
    """Refuse proxied bytes; clients must use presigned URLs (``MLFLOW_ARTIFACTS_PRESIGNED_ONLY``)."""
    proxy_multipart_upload: bool = False
    """Advertise presigned multipart uploads (``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD``)."""
    proxy_multipart_download: bool = False
    """Advertise presigned downloads (``MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD``)."""
    presigned_url_ttl: int = 300
    """Lifetime of presigned GET URLs (``MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS``)."""
    upload_batch_size: int = transfer.UPLOAD_BATCH_SIZE
    download_chunk_size: int = transfer.DOWNLOAD_CHUNK_SIZE

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **explicit: object) -> ServerConfig:
        """MLflow's variables, with explicit (non-None) keyword arguments winning."""
        values: dict[str, object] = {
            "destination": settings.MLFLOW_ARTIFACTS_DESTINATION.get(environ) or "./mlartifacts",
            "presigned_only": settings.MLFLOW_ARTIFACTS_PRESIGNED_ONLY.get(environ),
            "proxy_multipart_upload": settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD.get(environ),
            "proxy_multipart_download": settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD.get(environ),
            "presigned_url_ttl": settings.MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS.get(environ),
        }
        values.update({k: v for k, v in explicit.items() if v is not None})
        return_freed_buffers()
        return cls(**values)  # type: ignore[arg-type]


@functools.cache
def return_freed_buffers() -> bool:
    """Keep glibc's mmap threshold at 128 KiB so the server's multi-MiB buffers are unmapped when freed.

    glibc raises the threshold each time it frees a mapped block (up to 32 MiB), so after the first
    large transfer every part and chunk buffer comes from heap arenas that are never given back: a
    server with an S3 destination rested at ~220 MiB after moving 128 MiB, ~84 MiB with the
    threshold fixed (the ``MALLOC_MMAP_THRESHOLD_`` variable does the same). Called once per worker
    process when it reads its configuration; a no-op (``False``) off glibc.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return False
