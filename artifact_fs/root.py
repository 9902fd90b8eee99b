"""The one artifact-root object: a backend filesystem, a prefix in it, and what the backend can do.

Every consumer takes its root from :func:`open_root`: the Python API (``ArtifactStore``), the
artifact server, ``runs:/`` resolution, the CLI and ``url_to_fs``. Paths below a root are
artifact-relative; joining them to the prefix is fsspec's ``DirFileSystem`` (with the one fix that a
root at the top of a filesystem stays ``""`` instead of becoming the string ``"None"``). Files are
always opened through the backend filesystem's own ``open``, so its file classes (atomic local and
SFTP writes, S3 multipart uploads, the proxied client's streaming reads) do the work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import IO, Any

from fsspec import AbstractFileSystem
from fsspec.implementations.dirfs import DirFileSystem

from artifact_fs import backends, integrity, uris
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import MultipartUnsupportedError
from artifact_fs.policy import TransferPolicy

MULTIPART_HOOKS = ("create_multipart_upload", "complete_multipart_upload", "abort_multipart_upload")
DOWNLOAD_HOOK = "presigned_download_url"


class RootFileSystem(DirFileSystem):
    """``DirFileSystem`` whose prefix may be the filesystem's top (``""``).

    fsspec's constructor turns an empty prefix into ``None`` and hands it to the wrapped
    filesystem's ``_strip_protocol``, which for some filesystems gives the literal ``"None"`` (every
    write then landed under ``None/``).
    """

    def __init__(self, path: str, fs: AbstractFileSystem, **kwargs: Any) -> None:
        super().__init__(path=path or "/", fs=fs, skip_instance_cache=True, **kwargs)
        self.path = fs._strip_protocol(path).rstrip("/") if path else ""
        if path.startswith("/") and not self.path:
            self.path = "/"  # a local or SFTP root at "/" stays absolute

    def _join(self, path: Any) -> Any:
        if isinstance(path, str) and self.path == "/":
            return "/" + self._strip_protocol(path).lstrip("/") if path else "/"
        return super()._join(path)

    def _relpath(self, path: Any) -> Any:
        if isinstance(path, str) and self.path == "/":
            return path.lstrip("/")
        return super()._relpath(path)


@dataclass(frozen=True)
class ArtifactRoot:
    """An artifact root opened once: ``fs`` is the artifact-relative view over ``backend_fs``."""

    uri: uris.ArtifactURI
    backend: ModuleType
    backend_fs: AbstractFileSystem
    path: str
    """The root's path inside ``backend_fs`` (``""`` for the top of the filesystem)."""
    environ: Mapping[str, str]
    policy: TransferPolicy
    fs: RootFileSystem = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fs", RootFileSystem(self.path, self.backend_fs))

    @property
    def capabilities(self) -> Capabilities:
        """The backend's, as its ``capabilities_of(fs)`` narrows them for this root's filesystem
        where it has one (a local root on a network mount)."""
        narrowed = getattr(self.backend, "capabilities_of", None)
        if narrowed is not None:
            return narrowed(self.backend_fs)  # type: ignore[no-any-return]
        return self.backend.CAPABILITIES  # type: ignore[no-any-return]

    def backend_path(self, relative: str) -> str:
        """The path inside ``backend_fs`` of an (already validated) artifact-relative path."""
        if not relative:
            return self.path
        return str(self.fs._join(relative))

    def relative(self, backend_path: str) -> str | None:
        """The artifact-relative path of a path the backend listed; ``None`` if it is not under the root."""
        name = backend_path.rstrip("/")
        root = self.path.rstrip("/")
        candidates = {root, root.lstrip("/")} if root else {""}
        for base in candidates:
            if name == base:
                return ""
            prefix = base + "/" if base else ""
            if name.startswith(prefix):
                return name[len(prefix) :]
        return None

    def open(self, relative: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """The backend's own file object for an artifact-relative path.

        A write records the digest of what it wrote once committed (:mod:`artifact_fs.integrity`);
        ``expected_digests`` (a client's ``Content-Digest``) are checked before anything is committed.
        """
        expected = kwargs.pop("expected_digests", ())
        file = self.backend_fs.open(self.backend_path(relative), mode, **kwargs)
        writing = any(flag in mode for flag in "wax")
        if not writing or isinstance(file, integrity.RecordingWriter):  # a runs:/ root's inner root records
            return file  # type: ignore[no-any-return]
        if not (self.digests_enabled or expected):
            return file  # type: ignore[no-any-return]
        return integrity.RecordingWriter(  # type: ignore[return-value]
            file,
            path=relative,
            expected=expected,
            on_commit=lambda digest: self.record_digest(relative, digest),
        )

    # -- digests (artifact_fs.integrity) ------------------------------------------------------------
    @property
    def digests_enabled(self) -> bool:
        return integrity.enabled(self.environ)

    def record_digest(self, relative: str, digest: integrity.Record) -> None:
        if self.digests_enabled:
            integrity.record(self.backend, self.backend_fs, self.backend_path(relative), digest)

    def recorded_digest(
        self, relative: str, info: Mapping[str, Any] | None = None
    ) -> integrity.Record | None:
        """The digest a whole read of ``relative`` is checked against (``None``: none known, or off)."""
        if not self.digests_enabled:
            return None
        return integrity.recorded(self.backend, self.backend_fs, self.backend_path(relative), info)

    async def arecorded_under(self, relative: str) -> frozenset[str] | None:
        """The artifact-relative paths under the directory ``relative`` that have a record, from one
        listing (:func:`integrity.arecorded_under`); ``None``: unknown, look each up (or digests off)."""
        if not self.digests_enabled:
            return None
        found = await integrity.arecorded_under(self.backend, self.backend_fs, self.backend_path(relative))
        if found is None:
            return None
        return frozenset(path for path in map(self.relative, found) if path)

    async def arecord_digest(self, relative: str, digest: integrity.Record) -> None:
        """:meth:`record_digest` on an async backend's loop."""
        if self.digests_enabled:
            await integrity.arecord(self.backend, self.backend_fs, self.backend_path(relative), digest)

    async def arecorded_digest(self, relative: str) -> integrity.Record | None:
        """:meth:`recorded_digest` on an async backend's loop."""
        if not self.digests_enabled:
            return None
        return await integrity.arecorded(self.backend, self.backend_fs, self.backend_path(relative))

    def forget_digest(self, relative: str, *, tree: bool = False) -> None:
        """Drop the record of a deleted file, or (``tree``) of a deleted directory's files."""
        integrity.forget(self.backend, self.backend_fs, self.backend_path(relative), tree=tree)

    # -- presign hooks (S3, GCS, Azure) -----------------------------------------------------------
    @property
    def supports_multipart_upload(self) -> bool:
        return all(callable(getattr(self.backend, hook, None)) for hook in MULTIPART_HOOKS)

    @property
    def supports_presigned_download(self) -> bool:
        return callable(getattr(self.backend, DOWNLOAD_HOOK, None))

    def call_hook(self, name: str, relative: str, *args: Any) -> Any:
        """Call a backend presign hook on an artifact path; 501 when the backend has none."""
        hook = getattr(self.backend, name, None)
        if not callable(hook):
            reason = getattr(self.backend, "PRESIGN_UNSUPPORTED", "its backend has no presign hooks")
            raise MultipartUnsupportedError(f"the {self.uri.backend!r} store cannot presign: {reason}")
        return hook(self.backend_fs, self.backend_path(relative), *args, self.environ)


def open_root(
    uri: str | uris.ArtifactURI,
    *,
    environ: Mapping[str, str] | None = None,
    policy: TransferPolicy | None = None,
    filesystem: AbstractFileSystem | None = None,
    **options: Any,
) -> ArtifactRoot:
    """Build the artifact root for ``uri``: the one place a URI becomes a filesystem and a prefix.

    MLflow's variables (read from ``environ``, default ``os.environ``) configure the backend;
    keyword ``options`` win. ``filesystem`` supplies an already configured backend filesystem.
    """
    parsed = uris.parse(uri)
    backend = backends.load(parsed.backend)
    env = os.environ if environ is None else environ
    policy = policy or TransferPolicy.from_environ(env)
    backend_options = backend.options(parsed, env, policy=policy, **options)
    backend_fs = filesystem if filesystem is not None else backend.filesystem(backend_options)
    path = str(backend.fs_path(parsed, backend_options))
    if path not in {"", "/"}:
        path = path.rstrip("/")
    check_root = getattr(backend, "check_root", None)
    if callable(check_root):  # e.g. runs:/ — an unknown run is FileNotFoundError, never an empty root
        check_root(backend_fs, path)
    return ArtifactRoot(parsed, backend, backend_fs, path, env, policy)


__all__ = ["ArtifactRoot", "RootFileSystem", "open_root"]
