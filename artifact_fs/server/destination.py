"""The server's one artifact destination: a root filesystem plus the backend's optional presign hooks.

The server is a client of the store: it reaches storage only through the fsspec interface of a
``DirFileSystem`` rooted at the destination (so request paths are artifact-relative and cannot leave
it) and through the generic hooks a backend module may expose (``create_multipart_upload``,
``complete_multipart_upload``, ``abort_multipart_upload``, ``presigned_download_url``). It never
asks which backend it talks to.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.implementations.dirfs import DirFileSystem

from artifact_fs import backends, qualify, uris
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import MultipartUnsupportedError

MULTIPART_HOOKS = ("create_multipart_upload", "complete_multipart_upload", "abort_multipart_upload")
DOWNLOAD_HOOK = "presigned_download_url"


@dataclass(frozen=True)
class Destination:
    """Where proxied artifacts live, opened once per worker process."""

    uri: uris.ArtifactURI
    backend: ModuleType
    backend_fs: AbstractFileSystem
    root_path: str
    fs: AbstractFileSystem
    """Artifact-relative view (``DirFileSystem`` over ``backend_fs`` at ``root_path``)."""
    environ: Mapping[str, str]

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.CAPABILITIES  # type: ignore[no-any-return]

    @property
    def supports_multipart_upload(self) -> bool:
        return all(callable(getattr(self.backend, hook, None)) for hook in MULTIPART_HOOKS)

    @property
    def supports_presigned_download(self) -> bool:
        return callable(getattr(self.backend, DOWNLOAD_HOOK, None))

    def backend_path(self, artifact_path: str) -> str:
        """The path inside ``backend_fs`` for an (already validated) artifact path."""
        return posixpath.join(self.root_path, artifact_path) if artifact_path else self.root_path

    def call_hook(self, name: str, artifact_path: str, *args: Any) -> Any:
        """Call a backend presign hook on ``artifact_path``; 501 when the backend has none."""
        hook = getattr(self.backend, name, None)
        if not callable(hook):
            reason = getattr(self.backend, "PRESIGN_UNSUPPORTED", "its backend has no presign hooks")
            raise MultipartUnsupportedError(f"the {self.uri.backend!r} destination cannot presign: {reason}")
        return hook(self.backend_fs, self.backend_path(artifact_path), *args, self.environ)


def open_destination(uri: str, environ: Mapping[str, str]) -> Destination:
    """Open ``uri`` (a relative local path becomes absolute, as MLflow's server does)."""
    parsed = uris.parse(qualify.resolve_uri_if_local(uri))
    backend = backends.load(parsed.backend)
    options = backend.options(parsed, environ)
    backend_fs = backend.filesystem(options)
    root_path = backend.fs_path(parsed, options).rstrip("/") or "/"
    if backend.CAPABILITIES.empty_directories:
        backend_fs.makedirs(root_path, exist_ok=True)
    return Destination(
        uri=parsed,
        backend=backend,
        backend_fs=backend_fs,
        root_path=root_path,
        fs=DirFileSystem(path=root_path, fs=backend_fs),
        environ=environ,
    )
