"""An fsspec filesystem over MLflow's proxied artifact REST API (``/api/2.0/mlflow-artifacts/...``).

The filesystem is assembled from one module per concern: :mod:`.core` (server, sessions, paths),
:mod:`.listing` (``ls``/``info``/``find``), :mod:`.reads` (ranged and streamed reads, downloads) and
:mod:`.writes` (spooled uploads, multipart, deletes). This module picks the file class for ``open``.
"""

from __future__ import annotations

import os
from typing import Any

from fsspec.spec import AbstractBufferedFile

from artifact_fs.backends import read_cache
from artifact_fs.backends.mlflow_artifacts.files import MlflowArtifactFile, MlflowArtifactStreamFile
from artifact_fs.backends.mlflow_artifacts.resolve import service_url
from artifact_fs.backends.mlflow_artifacts.writes import ArtifactsWrites, MlflowArtifactWriter

__all__ = [
    "MlflowArtifactFile",
    "MlflowArtifactStreamFile",
    "MlflowArtifactWriter",
    "MlflowArtifactsFileSystem",
]


class MlflowArtifactsFileSystem(ArtifactsWrites):
    """Artifacts behind an MLflow tracking server (``mlflow server --serve-artifacts``) or artifact_fs's.

    The constructor's parameters are :class:`~artifact_fs.backends.mlflow_artifacts.core.ArtifactsClient`'s.
    """

    protocol = ("mlflow-artifacts",)
    root_marker = ""

    def unstrip_protocol(self, name: str) -> str:
        """``mlflow-artifacts:///<path>`` when the tracking URI names this server, else its http(s) URL.

        The scheme must stay ours: DuckDB's ``register_filesystem`` re-opens what ``glob`` returns
        through this name, and hands an ``http://`` one to its httpfs extension instead of back to us.
        A server the tracking URI does not name (an ``http(s)://`` artifact URL) keeps its full URL, so
        the name still says where it lives.
        """
        path = self._strip_protocol(name)
        if self._named_by_tracking_uri():
            return f"mlflow-artifacts:///{path}"
        return super().unstrip_protocol(path)

    def _named_by_tracking_uri(self) -> bool:
        options = self.storage_options
        environ = options.get("environ") or os.environ
        try:
            return service_url(None, options.get("tracking_uri"), environ) == self.service_url
        except ValueError:  # no http(s) tracking URI: only the full URL says where this server is
            return False

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AbstractBufferedFile:
        """``rb``: ranged reads (``block_size=0``: one forward-only stream); ``wb``: a spooled upload."""
        if mode not in {"rb", "wb"}:
            raise ValueError(f"mode {mode!r} is not supported by MLflow's artifact API; use 'rb' or 'wb'")
        path = self._checked(path)
        if mode == "wb":
            return MlflowArtifactWriter(
                self,
                path,
                mode,
                block_size=block_size or self.blocksize,
                cache_options=cache_options,
                **kwargs,
            )
        if block_size == 0:
            return MlflowArtifactStreamFile(self, path, mode, **kwargs)
        if "size" not in kwargs:
            kwargs["size"] = self._refuse_non_file(path)["size"]
        return MlflowArtifactFile(
            self,
            path,
            mode,
            block_size=block_size or self.blocksize,
            cache_type=kwargs.pop("cache_type", read_cache.NAME),
            cache_options=cache_options,
            **kwargs,
        )

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget presigned URLs (and this thread's snapshot listings) of ``path``, or all."""
        stripped = None if path is None else self._strip_protocol(path)
        with self._lock:
            if stripped is None:
                self._presigned.clear()
            else:
                self._presigned.pop(stripped, None)
        self.forget_listings(stripped)
