"""What a backend can do, as data: the conformance suite, the store and the server read it.

Modelled on OpenDAL's flat capability table: one frozen dataclass per backend, narrowed per
deployment (a server that lacks a feature) with :meth:`Capabilities.narrowed`, never by code paths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """Features of one backend. Every flag defaults to the conservative answer."""

    empty_directories: bool = False
    """Directories exist without files in them (local, FTP, SFTP, HDFS); object stores say False."""
    atomic_write: bool = False
    """A failed or killed upload never leaves a partial object visible."""
    exclusive_create: bool = False
    """``open(path, "xb")`` / ``pipe_file(mode="create")`` refuses an existing path."""
    server_side_copy: bool = False
    range_read: bool = True
    """``cat_file(path, start, end)`` fetches only the requested bytes."""
    multipart_upload: bool = False
    """Large writes are split into parts sent concurrently, and the server offers presigned multipart
    uploads (the backend has the hooks)."""
    presign: bool = False
    """The store can mint presigned URLs (used by the server's MPU and presigned routes)."""
    delete: bool = True
    rename: bool = True
    modified_time: bool = True
    """``fs.modified(path)`` answers for files."""
    write_parts_min_size: int = 0
    """Smallest part a multipart upload may use (S3: 5 MiB); 0 when parts are not used."""
    recursive_list: bool = False
    """``find`` is one flat, paginated listing of a prefix (object stores), not a directory walk: a tree
    is listed in about one request per thousand objects, and no listing can make it loop."""
    local_copies: bool = False
    """Transfers are copies this machine's kernel makes on a local disk: a small file's copy is a
    few system calls, cheaper than handing it to a thread, so a tree's small files are copied in
    the calling thread and only larger ones on the transfer pool. A local root on a network mount
    (NFS, SMB, FUSE) says False: each operation there waits on a round trip, which threads overlap."""
    fork_safe: bool = False
    """The *same* filesystem object keeps working in a child after ``os.fork()``. fsspec's async
    filesystems refuse this ("not fork-safe") until a backend resets its loop and sessions in the
    child; any backend works in a child that re-creates or unpickles its filesystem."""

    def narrowed(self, overrides: Mapping[str, bool | int]) -> Capabilities:
        """A copy with some flags replaced: how one deployment states what its server lacks."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown capability name(s): {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)  # type: ignore[arg-type]

    @classmethod
    def parse_overrides(cls, text: str) -> dict[str, bool | int]:
        """Parse ``"presign=false,range_read=true"`` (the ``ARTIFACT_FS_TEST_CAPABILITY_OVERRIDES`` form)."""
        result: dict[str, bool | int] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"capability override {item!r} is not of the form name=value")
            lowered = value.strip().lower()
            if lowered in {"true", "1"}:
                result[name.strip()] = True
            elif lowered in {"false", "0"}:
                result[name.strip()] = False
            else:
                result[name.strip()] = int(lowered)
        return result
