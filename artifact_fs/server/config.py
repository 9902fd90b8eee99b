"""The server's configuration, read from MLflow's variables so ``mlflow server`` deployments carry over.

Every worker process builds its app from the environment (``app_from_environment``), which is how
``--workers N`` share one configuration without any shared state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from artifact_fs import settings
from artifact_fs.server import transfer


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
        return cls(**values)  # type: ignore[arg-type]
