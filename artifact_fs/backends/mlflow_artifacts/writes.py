"""Writes and deletes through MLflow's proxied artifact API.

A write is spooled to a temporary file (hashed on the way, so the PUT carries its
``Content-Digest``) and sent as one streamed PUT, or as a presigned multipart
upload above ``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE`` when enabled (:mod:`.multipart`). A file
that fails inside ``with`` is discarded (:class:`~artifact_fs.backends.buffered.DiscardOnError`),
so no partial artifact appears.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import posixpath
import tempfile
from collections.abc import Callable
from typing import IO, Any

from fsspec.spec import AbstractBufferedFile

from artifact_fs import errors, integrity
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.backends.mlflow_artifacts import multipart
from artifact_fs.backends.mlflow_artifacts.batch import BatchTransfers
from artifact_fs.backends.mlflow_artifacts.core import SPOOL_IN_MEMORY
from artifact_fs.content_headers import guess_mime_type

UPLOAD_ALGORITHM = "crc32c"
"""What a PUT's ``Content-Digest`` carries: the quickest digest the server records too; it catches a
body damaged on the way at a fraction of SHA-256's cost."""


class _Body(io.RawIOBase):
    """``length`` bytes of ``source`` from its current position, with a length requests can see.

    ``__len__`` makes requests send ``Content-Length`` (never chunked); ``tell``/``seek`` let urllib3
    rewind the body when it retries.
    """

    def __init__(self, source: IO[bytes], length: int) -> None:
        super().__init__()
        self.source, self.start, self.length, self.position = source, source.tell(), length, 0

    def __len__(self) -> int:
        return self.length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, min(self.length, base + offset))
        self.source.seek(self.start + self.position)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        remaining = self.length - self.position
        size = remaining if size is None or size < 0 else min(size, remaining)
        data = self.source.read(size) if size else b""
        self.position += len(data)
        return data


class ArtifactsWrites(BatchTransfers):
    """Uploads, copies and deletes."""

    def upload(
        self,
        path: str,
        source: IO[bytes],
        size: int,
        callback: Any = None,
        digest: integrity.Digest | Callable[[], integrity.Digest] | None = None,
    ) -> None:
        """Upload ``size`` bytes from ``source`` (positioned at 0): multipart when due, else one PUT.

        ``digest`` (of the whole body, or a function computing it, called only for a PUT) goes with
        a PUT as ``Content-Digest``: a server that checks it (``artifact-fs serve``) refuses a body
        damaged on the way and stores nothing; MLflow's ignores it. Presigned multipart parts go
        straight to the store and carry none.
        """
        path = self._checked(path)
        if not posixpath.basename(path):
            raise ValueError(f"Artifact path {path!r} must include a file name")
        self.invalidate_cache(path)  # listings, and a presigned answer with the old digest
        directory = posixpath.dirname(path)
        presigned_only = self.presigned_only
        wanted = presigned_only or (
            self.multipart_upload_enabled() and size >= self.multipart_upload_minimum_size
        )
        if wanted and directory:
            upload = multipart.MultipartUpload(
                self.service_url,
                self.session,
                self.presigned_session,
                path,
                self.multipart_upload_chunk_size,
                self.max_workers,
                digests=self.digests_enabled,
            )
            on_part = callback.relative_update if callback is not None else None
            try:
                upload.run(source, size, on_part)
                return
            except errors.MultipartUnsupportedError:
                if presigned_only:
                    raise
                source.seek(0)
        elif presigned_only:
            raise PermissionError(
                f"the server at {self.service_url} is presigned-only and cannot take {path!r}: "
                "MLflow's multipart routes need the file inside a directory"
            )
        url = self._artifact_url(path)
        body: Any = _Body(source, size) if size else b""
        headers = {"Content-Type": guess_mime_type(path)}
        if callable(digest):
            digest = digest()
        if digest is not None:
            headers["Content-Digest"] = digest.header()
        self._request("PUT", url, path, data=body, headers=headers)
        if callback is not None:
            callback.relative_update(size)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """``mode="create"`` refuses an existing file; checked first, so not atomic (MLflow has no
        conditional PUT)."""
        if mode == "create" and self.exists(path):
            raise FileExistsError(errno.EEXIST, f"{self._strip_protocol(path)!r} already exists", path)
        digest = integrity.digest_of(value, UPLOAD_ALGORITHM) if self.digests_enabled else None
        self.upload(path, io.BytesIO(value), len(value), digest=digest)

    def put_file(
        self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        if os.path.isdir(lpath):
            return  # object semantics: directories exist through their files
        size = os.path.getsize(lpath)
        if callback is not None:
            callback.set_size(size)
        # hashed before a PUT (CRC32C: 14 GB/s), so the PUT carries it and the server checks the body
        digest = (
            functools.partial(integrity.file_digest, lpath, UPLOAD_ALGORITHM)
            if self.digests_enabled
            else None
        )
        with open(lpath, "rb") as source:
            self.upload(rpath, source, size, callback, digest=digest)

    def copy(self, path1: Any, path2: Any, recursive: bool = False, **kwargs: Any) -> None:
        """fsspec's ``copy`` with the source tree listed once (one listing per directory)."""
        with self.listing_snapshot():
            super().copy(path1, path2, recursive=recursive, **kwargs)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """No server-side copy in MLflow's API: stream through a ranged reader into the upload.

        fsspec's ``copy`` passes directories too; they exist through their files, so they are skipped.
        """
        known = self.listed_entry(self._checked(path1))
        if known is not None and known["type"] == "directory":
            return
        try:
            source = self.open(path1, "rb", **({"size": known["size"]} if known else {}))
        except IsADirectoryError:
            return
        with source:
            self.upload(path2, source, source.size)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self._checked(path)  # directories exist only through the files in them

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self._checked(path)

    def rmdir(self, path: str) -> None:
        self._checked(path)

    # -- deletes ------------------------------------------------------------------------------------
    def rm_file(self, path: str) -> None:
        """MLflow's DELETE of a missing path succeeds silently; fsspec's contract is FileNotFoundError."""
        path = self._checked(path)
        if path and not self.exists(path):
            raise FileNotFoundError(errno.ENOENT, f"no artifact at {path!r}", path)
        self._delete(path)

    def _delete(self, path: str) -> None:
        self.forget_listings(path)
        url = self._artifact_url(path) if path else f"{self.service_url}/mlflow-artifacts/artifacts/"
        self._request("DELETE", url, path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Files one DELETE each; a directory (with ``recursive``) one server-side recursive DELETE."""
        targets = path if isinstance(path, list) else [path]
        for target in targets:
            name = self._checked(target)
            if self.isdir(name):
                if not recursive:
                    raise IsADirectoryError(f"{name!r} is a directory; pass recursive=True to delete it")
                if maxdepth is not None:
                    super().rm(name, recursive=True, maxdepth=maxdepth)
                    continue
            elif not self.exists(name):
                raise FileNotFoundError(errno.ENOENT, f"no artifact at {name!r}", name)
            self._delete(name)


class MlflowArtifactWriter(DiscardOnError, AbstractBufferedFile):
    """A write spooled to a temporary file and uploaded once at ``close``."""

    fs: ArtifactsWrites

    def __init__(self, fs: ArtifactsWrites, path: str, mode: str = "wb", **kwargs: Any) -> None:
        if mode != "wb":
            raise ValueError(f"{type(self).__name__} only writes; mode {mode!r}")
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._hasher: integrity.Hasher | None = None
        super().__init__(fs, path, mode, **kwargs)

    def _initiate_upload(self) -> None:
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed in _upload_chunk/discard
        self._hasher = integrity.Hasher(UPLOAD_ALGORITHM) if self.fs.digests_enabled else None

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._spool is None:
            self._initiate_upload()
        assert self._spool is not None
        data = self.buffer.getbuffer()
        self._spool.write(data)
        if self._hasher is not None:
            self._hasher.update(data)
        del data  # a live view would stop fsspec from replacing the buffer
        if final:
            size = self._spool.tell()
            self._spool.seek(0)
            digest = self._hasher.digest() if self._hasher is not None else None
            try:
                self.fs.upload(self.path, self._spool, size, digest=digest)
            finally:
                self._spool.close()
                self._spool = None
        return True

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self.buffer = io.BytesIO()
