"""Digest records of local (and NFS) artifacts: an extended attribute of the file itself.

A sidecar file would show up in MLflow's own ``LocalArtifactRepository``, which lists directories
directly; an extended attribute (``user.artifact_fs.digest``) is invisible to it, costs no request
to look up (listings may carry digests) and goes with the file: deleting or renaming the file takes
its record along. A file replaced by another one (MLflow's own writes ``os.replace`` a new inode into
place) has no record, so it is read unchecked instead of failing against a stale digest; a change in
place keeps the record, so it is detected. Where the filesystem keeps no user extended attributes
(some NFS, FUSE and SMB mounts, macOS), the record falls back to a sidecar for that file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Mapping
from typing import Any

from fsspec import AbstractFileSystem

from artifact_fs.integrity import SIDECAR_LIMIT, Record, SidecarDigests

ATTRIBUTE = "user.artifact_fs.digest"
NO_XATTRS = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
"""What a filesystem without user extended attributes answers (ENOTSUP and EOPNOTSUPP are one on Linux)."""
NO_ATTRIBUTE = frozenset({getattr(errno, "ENODATA", errno.ENOENT), getattr(errno, "ENOATTR", errno.ENOENT)})
HAS_XATTRS = all(hasattr(os, name) for name in ("getxattr", "setxattr"))


SIDECARS = SidecarDigests(apart=False)
"""The fallback: a local filesystem is confined to its root (a run's ``…/artifacts``), so a record
kept apart from the root (``<id>/.artifact.digests``) could be neither written nor read there."""


class XattrDigests:
    """:class:`~artifact_fs.integrity.DigestStore` in the ``user.artifact_fs.digest`` attribute.

    ``kept_by_writes``: the local filesystem's ``put_file`` and ``pipe_file`` take ``digest=`` and set
    the attribute on the temporary file before it is renamed into place (:meth:`record_open`), so a
    file never appears without its record, and the store records nothing after the write."""

    cheap_lookup = True
    kept_by_writes = True

    def location(self, path: str) -> str:
        return path  # an attribute of the file itself (or its sidecar where there are no xattrs)

    def record(self, fs: AbstractFileSystem, path: str, digest: Record) -> None:
        local = fs._strip_protocol(path)
        if HAS_XATTRS:
            try:
                os.setxattr(local, ATTRIBUTE, digest.header().encode("ascii"))
                return
            except OSError as exc:
                if exc.errno not in NO_XATTRS:
                    raise
        SIDECARS.record(fs, path, digest)

    @staticmethod
    def record_open(descriptor: int, digest: Record) -> bool:
        """Set the attribute on a file still being written, before it appears at its name; ``False``
        where it could not be set (no user attributes here, or refused): the writer then records
        by path once the file is in place (:meth:`record`, which falls back to a sidecar)."""
        if not HAS_XATTRS:
            return False
        try:
            os.setxattr(descriptor, ATTRIBUTE, digest.header().encode("ascii"))
        except OSError:
            return False
        return True

    def lookup(self, fs: AbstractFileSystem, path: str, info: Mapping[str, Any] | None) -> Record | None:
        local = fs._strip_protocol(path)
        if HAS_XATTRS:
            try:
                raw = os.getxattr(local, ATTRIBUTE)
            except (FileNotFoundError, NotADirectoryError):
                return None  # the read itself reports the missing file
            except OSError as exc:
                if exc.errno in NO_ATTRIBUTE:
                    return None
                if exc.errno not in NO_XATTRS:
                    raise
            else:
                if len(raw) > SIDECAR_LIMIT:
                    raise ValueError(f"the {ATTRIBUTE} attribute of {local!r} is not a digest record")
                return Record.parse(raw.decode("ascii", errors="replace"))
        return SIDECARS.lookup(fs, path, info)

    def remove(self, fs: AbstractFileSystem, path: str) -> None:
        """The attribute went with the file; a fallback sidecar (if any) goes now."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            SIDECARS.remove(fs, path)


__all__ = ["ATTRIBUTE", "XattrDigests"]
