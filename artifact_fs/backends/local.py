"""Local paths and NFS mounts (a mounted path is local): fsspec's local filesystem with MLflow's guarantees.

MLflow's ``LocalArtifactRepository`` (3.x, PR #23794) never shows a half-written artifact: it writes
to a hidden ``.artifact.uploading.*`` file in the destination directory and ``os.replace``\\ s it
into place. :class:`ArtifactLocalFileSystem` gives every write path of fsspec's ``LocalFileSystem``
(``open(..., "wb")``, ``pipe_file``, ``put_file``, ``cp_file``, ``mv`` across devices) the same
guarantee, reserves and hides that prefix, and - when built with a ``root`` - refuses any path
that resolves (symlinks included) outside that root, so a ``DirFileSystem`` over it cannot be
escaped through a symlink.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

from fsspec import AbstractFileSystem
from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.implementations.local import LocalFileOpener, LocalFileSystem
from fsspec.utils import isfilelike

from artifact_fs import integrity
from artifact_fs.backends.atomic import WriteBeside, is_temporary
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.backends.local_digests import XattrDigests
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import InvalidArtifactPathError
from artifact_fs.integrity import Record
from artifact_fs.paths import RESERVED_PREFIX, Confinement
from artifact_fs.policy import TransferPolicy
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    empty_directories=True,
    atomic_write=True,
    exclusive_create=True,
    server_side_copy=True,
    local_copies=True,
    fork_safe=True,
)
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "9p", "afs"}
)
"""Mount types (``/proc/self/mounts``) whose file operations wait on a network; FUSE mounts
(``fuse``, ``fuse.*``: sshfs, gcsfuse, blobfuse, rclone, ...) count too."""
MOUNTS = "/proc/self/mounts"

DIGESTS = XattrDigests()
"""Digest records in each file's ``user.artifact_fs.digest`` attribute (invisible to MLflow's listings)."""

COPY_BUFFER_SIZE = 1024 * 1024
SENDFILE_SIZE = 64 * COPY_BUFFER_SIZE
_NO_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV})

# Filesystems without hard links (some FUSE and SMB mounts) answer os.link with one of these.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


class LocalOptions(TypedDict, total=False):
    auto_mkdir: bool
    """Create parent directories on write (MLflow does); default True."""
    root: str | None
    """Refuse paths that resolve outside this directory; defaults to the URI's own path."""


def options(
    uri: ArtifactURI, environ: Mapping[str, str], *, policy: TransferPolicy | None = None, **overrides: Any
) -> LocalOptions:
    """Storage options for a local URI: parents created on write, confined to the URI's path.

    ``policy`` is accepted like every backend's; local files have no timeouts or retries to set.
    """
    result: LocalOptions = {"auto_mkdir": True, "root": os.path.abspath(uri.local_path)}
    result.update(overrides)  # type: ignore[typeddict-item]
    return result


def capabilities_of(fs: AbstractFileSystem) -> Capabilities:
    """:data:`CAPABILITIES` for this filesystem's root: on a network mount (NFS, SMB, FUSE, ...)
    each file operation waits on a round trip, so a tree's small files go on the transfer pool
    there, not one by one in the calling thread (``local_copies``). Looked up once per filesystem."""
    known: Capabilities | None = getattr(fs, "_capabilities", None)
    if known is None:
        root = getattr(fs, "root", None)
        network = isinstance(root, str) and on_network_filesystem(root)
        known = CAPABILITIES.narrowed({"local_copies": False}) if network else CAPABILITIES
        with contextlib.suppress(AttributeError):
            fs._capabilities = known  # type: ignore[attr-defined]
    return known


def on_network_filesystem(path: str, mounts: str | None = None) -> bool:
    """Whether ``path`` lies on a network (or FUSE) mount: the type of the longest mount point
    holding it in ``mounts`` (the text of ``/proc/self/mounts``); ``False`` where that cannot be
    read (not Linux), as for a local disk."""
    if mounts is None:
        try:
            with open(MOUNTS, encoding="utf-8", errors="replace") as file:
                mounts = file.read()
        except OSError:
            return False
    resolved = os.path.realpath(path)
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), fields[1])
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind in NETWORK_FILESYSTEMS or kind == "fuse" or kind.startswith("fuse.")


def filesystem(options: LocalOptions) -> ArtifactLocalFileSystem:
    return ArtifactLocalFileSystem(**options)


def fs_path(uri: ArtifactURI, options: LocalOptions) -> str:
    """The absolute path; a relative one resolves against the current directory, as in MLflow."""
    return LocalFileSystem._strip_protocol(os.path.abspath(uri.local_path))  # type: ignore[no-any-return]


def is_reserved_name(path: str) -> bool:
    """True for names MLflow reserves for uploads in progress."""
    return is_temporary(path)


def _refuse_reserved(path: str) -> None:
    if is_reserved_name(path):
        raise InvalidArtifactPathError(
            path, f"names starting with {RESERVED_PREFIX!r} are reserved for uploads in progress; rename it"
        )


def _create_descriptor(temporary: str, *, make_parent: bool = False) -> int:
    """Create the temporary file, never an existing one, with the mode (umask applied) a new file
    gets; ``make_parent`` creates a missing parent directory when the create finds none (no look
    before every file of a tree whose directories exist)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        return os.open(temporary, flags, 0o666)
    except FileNotFoundError:
        if not make_parent:
            raise
    os.makedirs(os.path.dirname(temporary), exist_ok=True)
    return os.open(temporary, flags, 0o666)


def _rename_into_place(temporary: str, destination: str, *, exclusive: bool) -> None:
    """Move a finished temporary file onto ``destination`` in one step.

    ``exclusive`` publishes with ``os.link`` (fails if ``destination`` exists, atomically); on a
    filesystem without hard links it first claims the name with ``O_EXCL``, then replaces it.
    """
    if not exclusive:
        os.replace(temporary, destination)
        return
    try:
        os.link(temporary, destination)
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        os.close(os.open(destination, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        os.replace(temporary, destination)
        return
    os.unlink(temporary)


def write_beside(destination: str, *, exclusive: bool = False) -> WriteBeside:
    """An atomic write of ``destination`` (see :mod:`artifact_fs.backends.atomic`)."""
    return WriteBeside(
        destination, rename=functools.partial(_rename_into_place, exclusive=exclusive), remove=os.unlink
    )


def atomic_copy(
    source: str,
    destination: str,
    *,
    exclusive: bool = False,
    make_parent: bool = False,
    prepare: Callable[[int], object] | None = None,
) -> int:
    """Copy a file so ``destination`` shows either its old content or the whole new one; the
    number of bytes copied. ``make_parent`` creates the destination's directory if missing;
    ``prepare`` gets the new file's descriptor once it is written, before it appears.

    Descriptors only, no file objects: a tree of small files spends its time in the kernel's file
    creation, and each file object costs a few more system calls and allocations per file."""
    reader = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        return _write_atomically(
            destination,
            lambda writer: _copy_contents(reader, writer),
            exclusive=exclusive,
            make_parent=make_parent,
            prepare=prepare,
        )
    finally:
        os.close(reader)


def _write_atomically(
    destination: str,
    fill: Callable[[int], int],
    *,
    exclusive: bool,
    make_parent: bool,
    prepare: Callable[[int], object] | None,
) -> int:
    with write_beside(destination, exclusive=exclusive) as temporary:
        writer = _create_descriptor(temporary, make_parent=make_parent)
        try:
            written = fill(writer)
            if prepare is not None:
                prepare(writer)
            return written
        finally:
            os.close(writer)


def _write_all(writer: int, data: bytes | memoryview) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(writer, view) :]
    return len(data)


def _copy_contents(reader: int, writer: int) -> int:
    """Copy in the kernel (``sendfile``, as ``shutil.copyfile`` and ``cp`` do), else through a
    buffer; the number of bytes copied."""
    offset = 0
    try:
        while sent := os.sendfile(writer, reader, offset, SENDFILE_SIZE):
            offset += sent
        return offset
    except (OSError, AttributeError) as exc:  # no sendfile here, or not between these files
        if offset or getattr(exc, "errno", errno.ENOSYS) not in _NO_SENDFILE:
            raise
    while chunk := os.read(reader, COPY_BUFFER_SIZE):
        offset += _write_all(writer, chunk)
    return offset


class AtomicLocalFile(DiscardOnError, LocalFileOpener):  # type: ignore[misc]
    """A local file opened for writing that appears at its path only when closed successfully.

    The bytes go to a hidden temporary file in the destination directory. ``close()`` publishes it
    with ``os.replace`` (``"x"`` modes: ``os.link``, so an existing file is never replaced);
    leaving a ``with`` block through an exception, ``discard()``, or dropping the object unclosed
    removes it. Inside an fsspec transaction ``close()`` only closes and the transaction decides.
    """

    temp: str
    f: Any
    _raw: Any = None
    beside: WriteBeside | None = None
    discard_when_dropped = True

    @property
    def _done(self) -> bool:
        return self.beside is None or self.beside.finished

    def _open(self) -> None:
        if self.f is not None and not self.f.closed:
            return
        if "x" in self.mode and os.path.lexists(self.path):
            raise FileExistsError(errno.EEXIST, "File exists", self.path)
        self.beside = write_beside(self.path, exclusive="x" in self.mode)
        self.temp = self.beside.temporary
        created = _create_descriptor(self.temp, make_parent=getattr(self.fs, "auto_mkdir", False))
        self.f = self._raw = os.fdopen(created, self.mode.replace("x", "w"))
        if self.compression:
            from fsspec.compression import compr

            self.f = compr[self.compression](self._raw, mode=self.mode.replace("x", "w"))

    def close(self) -> None:
        if self._done or self.f is None:
            return
        if self.autocommit:
            self.commit()
        else:
            self.f.close()
            self._raw.close()

    def commit(self) -> None:
        if self._done:
            return
        try:
            self.f.close()
            self._raw.close()  # a compression wrapper leaves the file it wraps open
        except BaseException:
            self.discard()
            raise
        assert self.beside is not None
        self.beside.publish()

    def discard(self) -> None:
        if self._done:
            return
        with contextlib.suppress(OSError):
            self.f.close()
            self._raw.close()
        assert self.beside is not None
        self.beside.discard()

    @property
    def closed(self) -> bool:
        return self._done or self.f is None or self.f.closed


class ArtifactLocalFileSystem(LocalFileSystem):  # type: ignore[misc]
    """fsspec's ``LocalFileSystem`` with atomic writes, MLflow's reserved names and an optional root.

    Parameters
    ----------
    auto_mkdir
        Create parent directories on write.
    root
        When set, every path must resolve (following symlinks) inside this directory, otherwise
        :class:`~artifact_fs.errors.InvalidArtifactPathError` (a ``PermissionError`` and a
        ``ValueError``) is raised. Local paths given to ``put``/``get`` as the *other* side of a
        transfer are not restricted.
    """

    cachable = False  # one instance per root: the cache would keep every run's root alive

    def __init__(self, auto_mkdir: bool = True, root: str | None = None, **kwargs: Any) -> None:
        super().__init__(auto_mkdir=auto_mkdir, **kwargs)
        self.root = None if root is None else self._strip_protocol(os.path.abspath(root))
        self._confinement = None if self.root is None else Confinement(self.root)
        self._capabilities: Capabilities | None = None
        """Set by :func:`capabilities_of`."""

    # -- path checks ----------------------------------------------------------------------------
    def _inside(self, path: Any) -> str:
        """``path`` stripped and made absolute, after checking it stays inside ``root``."""
        stripped: str = self._strip_protocol(path)
        if self._confinement is not None:
            self._confinement.inside(stripped)
        return stripped

    def _writable(self, path: Any) -> str:
        stripped = self._inside(path)
        _refuse_reserved(stripped)
        return stripped

    def _make_parent(self, path: str) -> None:
        if self.auto_mkdir:
            os.makedirs(self._parent(path), exist_ok=True)

    # -- reading and listing ----------------------------------------------------------------------
    def info(self, path: Any, **kwargs: Any) -> dict[str, Any]:
        if isinstance(path, os.DirEntry):  # an entry of a directory already checked by ls
            return super().info(path, **kwargs)  # type: ignore[no-any-return]
        stripped = self._inside(path)
        if is_reserved_name(stripped):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", stripped)
        return super().info(stripped, **kwargs)  # type: ignore[no-any-return]

    def ls(self, path: Any, detail: bool = False, **kwargs: Any) -> list[Any]:
        entries = super().ls(self._inside(path), detail=detail, **kwargs)
        return [e for e in entries if not is_reserved_name(e["name"] if detail else e)]

    def isfile(self, path: Any) -> bool:
        return self._exists_as(path, os.path.isfile)

    def isdir(self, path: Any) -> bool:
        return self._exists_as(path, os.path.isdir)

    def lexists(self, path: Any, **kwargs: Any) -> bool:
        return self._exists_as(path, os.path.lexists)

    def _exists_as(self, path: Any, predicate: Any) -> bool:
        try:
            stripped = self._inside(path)
        except InvalidArtifactPathError:
            return False
        return not is_reserved_name(stripped) and bool(predicate(stripped))

    def islink(self, path: Any) -> bool:
        return os.path.islink(self._inside(path))

    def open(
        self,
        path: Any,
        mode: str = "rb",
        block_size: Any = None,
        cache_options: Any = None,
        compression: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """As fsspec's ``open``; a compressed write is compressed *inside* the atomic file, so
        closing the compressor publishes the file (fsspec's own wrapper would leave it unclosed)."""
        if compression is not None and "b" in mode and "r" not in mode:
            kwargs["inner_compression"], compression = compression, None
        return super().open(path, mode, block_size, cache_options, compression=compression, **kwargs)

    def _open(self, path: Any, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> Any:
        if "r" in mode and "+" not in mode:
            stripped = self._inside(path)
            if is_reserved_name(stripped):
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", stripped)
            return LocalFileOpener(stripped, mode, fs=self, **kwargs)
        stripped = self._writable(path)
        compression = kwargs.pop("inner_compression", None)
        if "+" in mode or "a" in mode:  # in-place updates cannot be atomic; MLflow never makes them
            self._make_parent(stripped)
            return LocalFileOpener(stripped, mode, fs=self, compression=compression, **kwargs)
        return AtomicLocalFile(stripped, mode, fs=self, compression=compression, **kwargs)

    # -- writing ----------------------------------------------------------------------------------
    def pipe_file(
        self, path: Any, value: bytes, mode: str = "overwrite", digest: Record | None = None, **kwargs: Any
    ) -> None:
        """Write ``value``; ``mode="create"`` refuses an existing file atomically (``FileExistsError``).
        ``digest``: the bytes' record, kept with the file before it appears (:meth:`_recorded_as`)."""
        if kwargs:  # compression and other options of open()
            with self.open(path, "xb" if mode == "create" else "wb", **kwargs) as f:
                f.write(value)
            if digest is not None:
                integrity.record_in(DIGESTS, self, self._strip_protocol(path), digest)
            return
        destination = self._writable(path)
        if mode == "create" and os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, "File exists", destination)
        with self._recorded_as(destination, digest) as prepare:
            _write_atomically(
                destination,
                lambda writer: _write_all(writer, value),
                exclusive=mode == "create",
                make_parent=self.auto_mkdir,
                prepare=prepare,
            )

    @contextlib.contextmanager
    def _recorded_as(self, path: str, digest: Record | None) -> Iterator[Callable[[int], object] | None]:
        """A write's ``prepare`` that sets ``digest`` as the new file's attribute before it appears
        (``DIGESTS.kept_by_writes``); where that fails, the record is kept by path once the write
        succeeded (an attribute, or a sidecar where the filesystem keeps none)."""
        if digest is None:
            yield None
            return
        kept = False

        def prepare(descriptor: int) -> None:
            nonlocal kept
            kept = DIGESTS.record_open(descriptor, digest)

        yield prepare
        if not kept:
            integrity.record_in(DIGESTS, self, path, digest)

    def cp_file(self, path1: Any, path2: Any, **kwargs: Any) -> None:
        self._copy_in(self._inside(path1), self._writable(path2))

    def put_file(
        self,
        lpath: Any,
        rpath: Any,
        callback: Callback = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        digest: Record | None = None,
        **kwargs: Any,
    ) -> None:
        """``digest``: the file's record, kept with it before it appears (:meth:`_recorded_as`)."""
        source = self._strip_protocol(lpath)
        destination = self._writable(rpath)
        self._copy_in(source, destination, exclusive=mode == "create", callback=callback, digest=digest)

    def _copy_in(
        self,
        source: str,
        destination: str,
        *,
        exclusive: bool = False,
        callback: Callback = DEFAULT_CALLBACK,
        digest: Record | None = None,
    ) -> None:
        """One ``stat`` of ``source`` decides: a file is copied atomically (its directory made if
        missing), a directory is made."""
        try:
            status = os.stat(source)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", source) from exc
        if stat.S_ISDIR(status.st_mode):
            os.makedirs(destination, exist_ok=True)
        elif stat.S_ISREG(status.st_mode):
            callback.set_size(status.st_size)
            with self._recorded_as(destination, digest) as prepare:
                copied = atomic_copy(
                    source, destination, exclusive=exclusive, make_parent=self.auto_mkdir, prepare=prepare
                )
            callback.relative_update(copied)
        else:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", source)

    def get_file(self, rpath: Any, lpath: Any, callback: Callback = DEFAULT_CALLBACK, **kwargs: Any) -> None:
        source = self._inside(rpath)
        if is_reserved_name(source):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", source)
        if isfilelike(lpath):
            with open(source, "rb") as reader:
                shutil.copyfileobj(reader, lpath)  # type: ignore[misc]
            return
        destination = self._strip_protocol(lpath)
        status = os.stat(source)
        if stat.S_ISDIR(status.st_mode):
            os.makedirs(destination, exist_ok=True)
            return
        callback.set_size(status.st_size)
        callback.relative_update(atomic_copy(source, destination, make_parent=True))

    def mv(self, path1: Any, path2: Any, recursive: bool = True, maxdepth: Any = None, **kwargs: Any) -> None:
        source, destination = self._inside(path1), self._writable(path2)
        self._make_parent(destination)
        # os.rename is atomic; across devices shutil falls back to our copy-then-replace.
        shutil.move(source, destination, copy_function=atomic_copy)

    def touch(self, path: Any, truncate: bool = True, **kwargs: Any) -> None:
        super().touch(self._writable(path), truncate=truncate, **kwargs)

    def mkdir(self, path: Any, create_parents: bool = True, **kwargs: Any) -> None:
        super().mkdir(self._writable(path), create_parents=create_parents, **kwargs)

    def makedirs(self, path: Any, exist_ok: bool = False) -> None:
        super().makedirs(self._writable(path), exist_ok=exist_ok)

    def link(self, src: Any, dst: Any, **kwargs: Any) -> None:
        super().link(self._inside(src), self._writable(dst), **kwargs)

    def symlink(self, src: Any, dst: Any, **kwargs: Any) -> None:
        super().symlink(self._inside(src), self._writable(dst), **kwargs)

    def chmod(self, path: Any, mode: int) -> None:
        os.chmod(self._inside(path), mode)

    # -- deleting ---------------------------------------------------------------------------------
    def rm_file(self, path: Any) -> None:
        os.remove(self._inside(path))

    def rmdir(self, path: Any) -> None:
        os.rmdir(self._inside(path))

    def rm(self, path: Any, recursive: bool = False, maxdepth: Any = None) -> None:
        paths = path if isinstance(path, list) else [path]
        super().rm([self._inside(p) for p in paths], recursive=recursive, maxdepth=maxdepth)
