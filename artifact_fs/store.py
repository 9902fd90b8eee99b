"""MLflow's artifact-repository API (log / list / download / delete) over any backend filesystem.

:class:`ArtifactStore` follows the contracts of MLflow's ``ArtifactRepository`` and
``LocalArtifactRepository`` (reference §2.0, §2.3, §2.16): the same argument names, the same return
values, the same edge cases (a listed file gives ``[]``, an empty root downloads to the destination,
sibling prefixes survive a delete). It works on the root through ``fsspec``'s ``DirFileSystem``, so
every path is artifact-relative, and every path it is given or listed is checked with
:mod:`artifact_fs.paths` before it reaches a filesystem.

Parity choices (where MLflow's repositories disagree with each other):

* deleting a missing path is a no-op on every backend (Local, S3, GCS, SFTP; Azure Blob raises);
* deleting the root removes the root directory itself where directories exist (Local, SFTP) and
  every object under the prefix elsewhere;
* an empty directory downloads as a directory where the backend has real directories
  (``capabilities.empty_directories``), as MLflow's Local/FTP/SFTP/HDFS repositories do.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import posixpath
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import IO, Any

from fsspec import AbstractFileSystem
from fsspec.asyn import sync
from fsspec.callbacks import Callback
from fsspec.implementations.local import LocalFileSystem

from artifact_fs import errors, integrity, paths, qualify, uris
from artifact_fs.capabilities import Capabilities
from artifact_fs.policy import TransferPolicy
from artifact_fs.progress import FileProgress, TransferProgress
from artifact_fs.root import ArtifactRoot, RootFileSystem, open_root

ERROR_MESSAGE_LIMIT = 10_000
"""MLflow truncates aggregated transfer errors to this many characters (head and tail kept)."""


def default_max_workers() -> int:
    """MLflow's pool size for synchronous backends: two threads per CPU, at most 20 (the policy's)."""
    return TransferPolicy().thread_workers


Transfer = tuple[str, str, FileProgress]
"""One file to move: ``(source, destination, progress)``, artifact-relative on the remote side."""


@dataclass(frozen=True)
class FileInfo:
    """One listed artifact, as MLflow's ``FileInfo``: the path includes the listed prefix."""

    path: str
    is_dir: bool
    file_size: int | None
    digest: str | None = field(default=None, compare=False)
    """The artifact's recorded digest (RFC 9530 ``sha-256=:…:``), when known; not compared."""

    def to_dict(self) -> dict[str, Any]:
        """MLflow's keys, and ``digest`` when there is one."""
        result = asdict(self)
        if self.digest is None:
            del result["digest"]
        return result


class TreeRecords:
    """Which files of a tree being downloaded have a digest record: the tree's records listed once
    (:meth:`ArtifactRoot.arecorded_under`), when the first file that needs one asks. A tree MLflow or
    another tool wrote has none, and its N files are then N GETs and a listing, not 2N requests; a
    tree whose objects carry their records never asks."""

    def __init__(self, root: ArtifactRoot, relative: str) -> None:
        self.root = root
        self.relative = relative
        self._listing: asyncio.Future[frozenset[str] | None] | None = None

    async def has(self, remote: str) -> bool:
        """Whether ``remote`` may have a record (``True`` when the store cannot list them)."""
        if self._listing is None:  # the first to ask lists; the others wait for the same answer
            self._listing = asyncio.ensure_future(self.root.arecorded_under(self.relative))
        known = await asyncio.shield(self._listing)
        return known is None or remote in known


class ArtifactStore:
    """An artifact root (``<artifact_location>/<run_id>/artifacts`` or any artifact URI).

    Parameters
    ----------
    uri:
        Any artifact URI MLflow accepts (``s3://bucket/prefix``, ``./mlruns/0/abc/artifacts``, ...).
    environ:
        Where MLflow's variables are read (default ``os.environ``).
    max_workers:
        Threads for concurrent transfers on synchronous backends (default: MLflow's
        ``min(2 * cpus, 20)``). Async backends (S3, GCS, Azure, ...) run every transfer on their
        event loop instead, at most the policy's ``async_concurrency`` at once.
    filesystem:
        An already configured backend filesystem to use instead of building one from ``uri``.
    **options:
        Storage options for the backend; they win over MLflow's environment variables.
    """

    def __init__(
        self,
        uri: str | uris.ArtifactURI | None = None,
        *,
        root: ArtifactRoot | None = None,
        environ: Mapping[str, str] | None = None,
        max_workers: int | None = None,
        filesystem: AbstractFileSystem | None = None,
        policy: TransferPolicy | None = None,
        **options: Any,
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers={max_workers!r} must be at least 1")
        if root is None:
            if uri is None:
                raise TypeError("ArtifactStore needs an artifact URI (or an opened root=)")
            root = open_root(uri, environ=environ, policy=policy, filesystem=filesystem, **options)
        self.root: ArtifactRoot = root
        self.uri: uris.ArtifactURI = root.uri
        self.backend: ModuleType = root.backend
        self.environ: Mapping[str, str] = root.environ
        self.backend_fs: AbstractFileSystem = root.backend_fs
        self.root_path: str = root.path
        self.fs: RootFileSystem = root.fs
        self.capabilities: Capabilities = root.capabilities
        self.max_workers = max_workers or root.policy.thread_workers
        self.async_concurrency = root.policy.async_concurrency

    @classmethod
    def for_run(cls, artifact_location: str, run_id: str, **kwargs: Any) -> ArtifactStore:
        """The store of one run: ``<artifact_location>/<run_id>/artifacts``, as MLflow lays it out."""
        return cls(qualify.run_artifact_root(artifact_location, run_id), **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.uri)!r})"

    # -- paths ----------------------------------------------------------------------------------
    def _relative(self, path: str | None) -> str:
        """A caller's artifact path, checked and normalised; ``""`` is the root.

        The path is checked in its URL-decoded form (so no decoding layer can later turn it into a
        traversal) but used as written: artifact paths are names, not URLs.
        """
        if path is None or path == "":
            return ""
        paths.validate_path_is_safe(path)
        normalised = posixpath.normpath(path)
        if any(paths.is_hidden(part) for part in normalised.split("/")):
            raise errors.InvalidArtifactPathError(
                path, "names of uploads in progress and digest records are reserved"
            )
        return "" if normalised == "." else normalised

    def _full(self, relative: str) -> str:
        """The backend filesystem's path for an artifact-relative path."""
        return self.root.backend_path(relative)

    def _local_root(self) -> str | None:
        """The root as a local directory, when the backend is the local filesystem."""
        return self.root_path if isinstance(self.backend_fs, LocalFileSystem) else None

    def _child_name(self, listed: str, directory: str) -> str | None:
        """The basename of a listed entry of ``directory``; ``None`` for what is not an artifact.

        A listing is input from a server: anything that is not a safe direct child is refused. The
        directory itself, ``.`` and uploads in progress (:data:`paths.RESERVED_PREFIX`) are
        not artifacts.
        """
        relative = self.root.relative(listed)
        if relative is None:
            raise errors.InvalidArtifactPathError(
                listed,
                f"the backend listed it for {directory!r}, but it is not inside that directory nor the root",
            )
        prefix = directory + "/" if directory else ""
        if relative.rstrip("/") == directory:
            return None
        if not relative.startswith(prefix):
            raise errors.InvalidArtifactPathError(
                listed, f"the backend listed it for {directory!r}, but it is not inside that directory"
            )
        child = relative[len(prefix) :]
        if child in {"", "."} or paths.is_hidden(child):
            return None
        paths.validate_path_is_safe(child)
        if "/" in child:
            raise errors.InvalidArtifactPathError(
                listed, f"the backend listed it as a direct child of {directory!r}, but it is nested"
            )
        return child

    # -- listing --------------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None, *, digests: bool = False) -> list[FileInfo]:
        """Entries directly under ``path``, sorted; ``[]`` for a file or a missing path.

        Each ``FileInfo.path`` includes ``path``; directories have ``file_size=None``. With
        ``digests``, each file's recorded digest too (a lookup per file where the store keeps them
        apart from its listing); without, only what the listing itself carries.
        """
        return self._list_children(self._relative(path), digests=digests)

    def _list_children(self, relative: str, *, digests: bool = False) -> list[FileInfo]:
        full = self._full(relative)
        self.backend_fs.invalidate_cache(full)
        try:
            with errors.translating(full):
                listing = self.backend_fs.ls(full, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        result = []
        for entry in listing:
            child = self._child_name(entry["name"], relative)
            if child is None:
                continue
            is_dir = entry.get("type") == "directory"
            size = entry.get("size")
            file_size = None if is_dir or size is None else int(size)
            child_path = posixpath.join(relative, child)
            digest = None if is_dir else self._listed_digest(child_path, entry, digests)
            result.append(FileInfo(child_path, is_dir, file_size, digest))
        return sorted(result, key=lambda info: info.path)

    def _listed_digest(self, relative: str, entry: Mapping[str, Any], lookup: bool) -> str | None:
        """A listed file's digest: from the listing itself, or (``lookup``) from where it is recorded."""
        if not self.root.digests_enabled:
            return None
        if lookup or integrity.digest_store(self.backend).cheap_lookup:
            record = self.root.recorded_digest(relative, entry)
        else:
            record = integrity.Record.of(integrity.preferred(integrity.native_digests(entry)))
        return None if record is None else record.identity.header()

    def walk(self, path: str | None = None) -> Iterator[FileInfo]:
        """Every file under ``path`` and every empty directory, as ``download_artifacts`` sees them.

        One paginated listing where the backend lists a whole prefix at once (S3, GCS, Azure), one
        listing per directory elsewhere. A ``path`` naming a file yields nothing (it has no children).
        """
        return self._walk(self._relative(path))

    def _walk(self, relative: str, children: list[FileInfo] | None = None) -> Iterator[FileInfo]:
        """Files under ``relative`` plus every empty directory (MLflow's recursion).

        Where the backend lists a whole prefix in one paginated call (``recursive_list``: S3, GCS,
        Azure), that one listing; elsewhere one listing per directory, walked here with MLflow's
        guard against a listing that names a directory inside itself. ``children`` is the listing of
        ``relative`` when the caller has it already.
        """
        if self.capabilities.recursive_list:
            yield from self._walk_prefix(relative)
            return
        pending: list[tuple[str, list[FileInfo] | None]] = [(relative, children)]
        while pending:
            directory, listed = pending.pop()
            if listed is None:
                listed = self._list_children(directory)
            entries = [c for c in listed if c.path not in {".", directory}]
            if not entries:
                if directory:
                    yield FileInfo(directory, True, None)
                continue
            for child in entries:
                if child.is_dir:
                    pending.append((child.path, None))
                else:
                    yield child

    def _walk_prefix(self, relative: str) -> Iterator[FileInfo]:
        """:meth:`_walk` from one flat ``find`` of the prefix; every name is checked as a listing is."""
        full = self._full(relative)
        self.backend_fs.invalidate_cache(full)
        with errors.translating(full):
            found = self.backend_fs.find(full, withdirs=True, detail=True)
        prefix = relative + "/" if relative else ""
        directories: set[str] = set()
        parents: set[str] = set()
        files: list[FileInfo] = []
        for name, entry in found.items():
            path = self._descendant(str(entry.get("name") or name), relative, prefix)
            if path is None:
                continue
            parents.add(posixpath.dirname(path))
            if entry.get("type") == "directory":
                directories.add(path)
            else:
                size = entry.get("size")
                files.append(FileInfo(path, False, None if size is None else int(size)))
        yield from sorted(files, key=lambda info: info.path)
        for directory in sorted(directories - parents):
            yield FileInfo(directory, True, None)

    def _descendant(self, listed: str, relative: str, prefix: str) -> str | None:
        """The artifact path of an entry ``find`` gave under ``relative``; ``None`` if not an artifact."""
        path = self.root.relative(listed)
        if path is None or (path.rstrip("/") != relative and not path.startswith(prefix)):
            raise errors.InvalidArtifactPathError(
                listed, f"the backend listed it under {relative!r}, but it is not inside that directory"
            )
        path = path.rstrip("/")
        if path == relative:
            return None
        if any(paths.is_hidden(part) for part in path[len(prefix) :].split("/")):
            return None
        paths.validate_path_is_safe(path[len(prefix) :])
        return path

    def _is_empty_directory(self, relative: str) -> bool:
        """Where directories are real, a directory without children still is one (MLflow's rule)."""
        if not relative or not self.capabilities.empty_directories:
            return False
        self.backend_fs.invalidate_cache(self._full(relative))
        with errors.translating(relative):
            return bool(self.fs.isdir(relative))

    # -- upload ---------------------------------------------------------------------------------
    def log_artifact(
        self,
        local_file: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        callback: Callback | None = None,
    ) -> None:
        """Upload one file to ``<root>/<artifact_path>/<basename(local_file)>``."""
        paths.verify_artifact_path(artifact_path)
        directory = self._relative(artifact_path)
        source = os.fspath(local_file)
        if os.path.isdir(source):
            raise IsADirectoryError(
                errno.EISDIR, f"{source!r} is a directory; use log_artifacts to upload its contents", source
            )
        name = os.path.basename(source)
        destination = posixpath.join(directory, name)
        local_root = self._local_root()
        if local_root is not None:
            target = os.path.join(local_root, destination)
            if os.path.exists(target) and os.path.samefile(source, target):
                return  # logging a file onto itself (MLflow: a no-op, never a truncation)
        size = os.path.getsize(source)
        if self.capabilities.empty_directories:
            self._makedirs(directory)
        progress = TransferProgress(callback, size)
        self._upload(source, destination, progress.for_file(size))

    def log_artifacts(
        self,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        callback: Callback | None = None,
    ) -> None:
        """Upload the contents of ``local_dir`` (not the directory itself) under ``artifact_path``.

        Files go up concurrently; empty directories are kept where the backend has directories.
        Symlinked directories are not followed (as ``os.walk``); symlinked files are uploaded.
        """
        paths.verify_artifact_path(artifact_path)
        base = self._relative(artifact_path)
        source = os.path.abspath(os.fspath(local_dir))
        if not os.path.exists(source):
            raise FileNotFoundError(errno.ENOENT, "no such local directory to log", source)
        if not os.path.isdir(source):
            raise NotADirectoryError(errno.ENOTDIR, "use log_artifact to upload a single file", source)
        directories = []
        uploads: list[tuple[str, str, int | None]] = []
        for dirpath, _dirnames, filenames in os.walk(source):
            relative = paths.to_artifact_path(os.path.relpath(dirpath, source))
            destination_dir = paths.join_artifact_path(base, relative)
            directories.append(destination_dir)
            for filename in sorted(filenames):
                local = os.path.join(dirpath, filename)
                uploads.append((local, posixpath.join(destination_dir, filename), _local_size(local)))
        if self.capabilities.empty_directories:
            for directory in directories:
                self._makedirs(directory)
        progress = TransferProgress(callback, sum(size or 0 for _, _, size in uploads))
        transfers = {remote: (local, remote, progress.for_file(size)) for local, remote, size in uploads}
        transfers = self._batched(transfers, "put_batched", 0)
        self._run_concurrently(transfers, self._upload, self._upload_async, "uploading", "to")

    def _batched(self, transfers: dict[str, Transfer], method: str, local_at: int) -> dict[str, Transfer]:
        """Small files as a few batches where the backend takes them (``artifact-fs serve``'s tar
        streams, :mod:`artifact_fs.backends.mlflow_artifacts.batch`); the transfers still to run.

        ``method`` is the backend's ``put_batched`` or ``get_batched``; ``local_at`` the local path's
        place in a transfer's arguments."""
        batched = getattr(self.backend_fs, method, None)
        if batched is None or len(transfers) < 2:
            return transfers
        by_full = {self._full(remote): remote for remote in transfers}
        delivered = batched(
            {
                full: (transfers[remote][local_at], transfers[remote][2].size, transfers[remote][2])
                for full, remote in by_full.items()
            }
        )
        done = {by_full[full] for full in delivered}
        for remote in done:
            transfers[remote][2].finish()
        return {remote: transfer for remote, transfer in transfers.items() if remote not in done}

    def _makedirs(self, relative: str) -> None:
        with errors.translating(self._full(relative)):
            self.fs.makedirs(relative, exist_ok=True)

    @property
    def _records_uploads(self) -> bool:
        """Whether uploads are hashed here (not where a server records what it receives)."""
        return self.root.digests_enabled and integrity.records_uploads(self.backend)

    def _upload(self, source: str, destination: str, progress: FileProgress) -> None:
        hashing = _hash_beside(source, progress.size) if self._records_uploads else None
        carried = self._carried(hashing, progress)
        with errors.translating(self._full(destination)):
            self.fs.put_file(source, destination, callback=progress, **carried)
        if hashing is not None and not (carried and integrity.kept_by_writes(self.backend)):
            self.root.record_digest(destination, hashing.result())
        progress.finish()

    async def _upload_async(self, source: str, destination: str, progress: FileProgress) -> None:
        hashing = _hash_beside(source, progress.size) if self._records_uploads else None
        carried = self._carried(hashing, progress)
        with errors.translating(self._full(destination)):
            await self.fs._put_file(source, destination, callback=progress, **carried)
        if hashing is not None and not (carried and integrity.kept_by_writes(self.backend)):
            await self.root.arecord_digest(destination, await asyncio.wrap_future(hashing))
        progress.finish()

    async def awrite_whole(
        self, path: str, data: bytes, expected: Iterable[integrity.Digest] = ()
    ) -> integrity.Record | None:
        """Store ``data`` as the artifact file ``path`` in one piece, on an async backend's loop (the
        server's batch uploads: no thread, no file object per file).

        ``data`` is checked against ``expected`` first: a mismatch is
        :class:`~artifact_fs.integrity.DigestMismatchError` and nothing is stored. The record rides
        in the object's metadata where the store carries one, and is kept as every upload's is.
        Returns it (``None`` with digests off)."""
        relative = self._relative(path)
        wanted = tuple(expected)
        computed = integrity.digests_of(data, [*integrity.RECORDED, *(digest.algorithm for digest in wanted)])
        for digest in wanted:
            integrity.check(path, digest, computed[digest.algorithm])
        record = integrity.recorded_of(computed) if self.root.digests_enabled else None
        full = self._full(relative)
        carried = {"digest": record} if record is not None and integrity.carried(self.backend) else {}
        with errors.translating(full):
            await self.backend_fs._pipe_file(full, data, **carried)
        if record is not None:
            await self.root.arecord_digest(relative, record)
        return record

    def _carried(self, hashing: Future[integrity.Record] | None, progress: FileProgress) -> dict[str, Any]:
        """``digest=``: a small file's record, to ride in its object's metadata where objects carry one,
        or to be kept by the write itself where the filesystem keeps records so (a local file's
        attribute, set before the file appears: :func:`integrity.kept_by_writes`)."""
        if hashing is None or not _hashed_first(progress.size):
            return {}
        if not (integrity.carried(self.backend) or integrity.kept_by_writes(self.backend)):
            return {}
        if hashing.exception() is not None:
            return {}  # an unreadable file: its upload reports why, as on every other store
        return {"digest": hashing.result()}

    # -- download -------------------------------------------------------------------------------
    def download_artifacts(
        self,
        artifact_path: str | None = None,
        dst_path: str | os.PathLike[str] | None = None,
        *,
        callback: Callback | None = None,
    ) -> str:
        """Download a file or a directory tree to ``dst_path``; return the local path.

        ``dst_path`` must be an existing directory. Without it, a new temporary directory is used,
        except on the local filesystem, where (as MLflow's local repository) the artifact's own
        absolute path is returned without copying. Returns ``dst_path/<normpath(artifact_path)>``,
        or ``dst_path`` for the root. Failed files are reported together in one ``OSError``.
        """
        relative = self._relative(artifact_path)
        if dst_path is None:
            local_root = self._local_root()
            if local_root is not None:
                return self._in_place(local_root, relative, artifact_path)
            destination = tempfile.mkdtemp(prefix="artifact-fs-")
        else:
            destination = os.path.abspath(os.fspath(dst_path))
            if not os.path.exists(destination):
                raise FileNotFoundError(
                    errno.ENOENT, "the destination path for downloaded artifacts does not exist", destination
                )
            if not os.path.isdir(destination):
                raise NotADirectoryError(
                    errno.ENOTDIR,
                    "the destination path for downloaded artifacts must be a directory",
                    destination,
                )

        if not relative:
            listed = list(self._walk(""))
            if not listed:
                return destination  # MLflow: "No artifacts found", not an error
        elif self.capabilities.recursive_list:
            # One flat listing says it all: nothing under the prefix means a file or a missing path.
            listed = list(self._walk_prefix(relative)) or [FileInfo(relative, False, None)]
        else:
            children = self._list_children(relative)
            if children or self._is_empty_directory(relative):
                listed = list(self._walk(relative, children))
            else:  # a file, or a missing path, which its download reports
                listed = [FileInfo(relative, False, None)]

        files = []
        within, made = paths.Confinement(destination), set[str]()
        for info in listed:
            local = _download_destination(within, info.path, made)
            if info.is_dir:
                os.makedirs(local, exist_ok=True)
            else:
                files.append((info, local))
        progress = TransferProgress(callback, sum(info.file_size or 0 for info, _ in files))
        transfers = {
            info.path: (info.path, local, progress.for_file(info.file_size)) for info, local in files
        }
        transfers = self._batched(transfers, "get_batched", 1)
        records = TreeRecords(self.root, relative) if len(files) > 1 and self.root.digests_enabled else None
        self._run_concurrently(
            transfers,
            self._download,
            functools.partial(self._download_async, records=records),
            "downloading",
            "from",
        )
        return os.path.join(destination, os.path.normpath(relative)) if relative else destination

    def _in_place(self, local_root: str, relative: str, shown: str | None) -> str:
        local = paths.validate_path_within_directory(local_root, relative) if relative else local_root
        if not os.path.exists(local):
            raise FileNotFoundError(errno.ENOENT, f"No such artifact: {shown or ''!r} in {self.uri}", local)
        return os.path.abspath(local)

    def _download(self, remote: str, local: str, progress: FileProgress) -> None:
        try:
            expected = None if integrity.checks_gets(self.backend) else self.root.recorded_digest(remote)
            with errors.translating(self._full(remote)):
                self.fs.get_file(remote, local, callback=progress)
            integrity.check_local_file(remote, local, expected)
        except BaseException:
            _remove_partial(local)
            raise
        progress.finish()

    async def _download_async(
        self, remote: str, local: str, progress: FileProgress, records: TreeRecords | None = None
    ) -> None:
        """``records``: which files of the tree being downloaded have a record."""
        try:
            received: integrity.Digest | None = None
            if self.root.digests_enabled and integrity.carried(self.backend):
                expected, received = await self._get_carried(remote, local, progress, records)
            else:
                expected = await self._get_beside_record(remote, local, progress, records)
            await self._check_downloaded(remote, local, progress, expected, received)
        except BaseException:
            _remove_partial(local)
            raise
        progress.finish()

    async def _get_beside_record(
        self, remote: str, local: str, progress: FileProgress, records: TreeRecords | None
    ) -> integrity.Record | None:
        """The bytes and the record side by side: one round trip of latency, not two."""
        failure: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:  # a failure of either cancels the other
                lookup = group.create_task(self._recorded(remote, records))
                group.create_task(self._get_async(remote, local, progress))
        except BaseExceptionGroup as failed:  # the caller sees the failure itself, cause kept
            failure = failed.exceptions[0]
        if failure is not None:
            raise failure
        return lookup.result()

    async def _get_carried(
        self, remote: str, local: str, progress: FileProgress, records: TreeRecords | None
    ) -> tuple[integrity.Record | None, integrity.Digest | None]:
        """The object's GET answer carries its record (one request, not two); the hidden record is
        asked only when it carries none (a large file, or one written by another tool). Also the
        digest of the bytes received, where the filesystem hashes them as they arrive."""
        sink: dict[str, Any] = {}
        await self._get_async(remote, local, progress, digest_sink=sink)
        carried = integrity.carried_record(sink.get("digest"))
        expected = carried if carried is not None else await self._recorded(remote, records)
        return expected, sink.get("received")

    async def _recorded(self, remote: str, records: TreeRecords | None) -> integrity.Record | None:
        """The file's record; in a tree, asked only if the tree's listing of records has one."""
        if records is not None and not await records.has(remote):
            return None
        return await self.root.arecorded_digest(remote)

    async def _check_downloaded(
        self,
        remote: str,
        local: str,
        progress: FileProgress,
        expected: integrity.Record | None,
        received: integrity.Digest | None = None,
    ) -> None:
        """Check the downloaded file against its record: ``received``, the digest of the bytes as they
        arrived, when it is the record's quickest; else the file as written, read back."""
        if expected is None:
            return
        if received is not None and received.algorithm == expected.quick.algorithm:
            integrity.check(remote, expected.quick, received)  # the caller removes the file
        elif _hashed_first(progress.size):
            integrity.check_local_file(remote, local, expected)  # microseconds: no hand-off
        else:  # CRC-32C from the page cache: 256 MiB in ~0.03 s (integrity.md)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(_HASHING, integrity.check_local_file, remote, local, expected)

    async def _get_async(self, remote: str, local: str, progress: FileProgress, **options: Any) -> None:
        with errors.translating(self._full(remote)):
            await self.fs._get_file(remote, local, callback=progress, **options)

    # -- delete ---------------------------------------------------------------------------------
    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Delete a file, a directory (recursively) or, with no path, the whole root.

        A missing path is a no-op on every backend (MLflow's Local, S3 and GCS behaviour).
        """
        relative = self._relative(artifact_path)
        full = self._full(relative)
        self.backend_fs.invalidate_cache(full)
        with errors.translating(full), contextlib.suppress(FileNotFoundError):
            if relative:
                if self.fs.exists(relative):
                    is_file = not self.fs.isdir(relative)
                    self.fs.rm(relative, recursive=True)
                    self.root.forget_digest(relative, tree=not is_file)
            else:
                if self.capabilities.empty_directories:
                    if self.backend_fs.exists(full):
                        self.backend_fs.rm(full, recursive=True)
                else:
                    # Object stores: delete what is under the prefix, never the prefix "itself"
                    # (which for a bucket-root store would be the bucket).
                    children = [info.path for info in self._list_children("")]
                    if children:
                        self.fs.rm(children, recursive=True)
                self.root.forget_digest("", tree=True)  # records kept apart from the root
        self.backend_fs.invalidate_cache(full)

    # -- one file ---------------------------------------------------------------------------------
    def file_info(self, path: str) -> dict[str, Any]:
        """The store's fresh ``info`` of one artifact file (another process may have changed it).

        ``FileNotFoundError`` when it does not exist, ``IsADirectoryError`` for a directory.
        """
        relative, full = self._fresh_file_path(path)
        try:
            with errors.translating(full):
                info: dict[str, Any] = self.fs.info(relative)
        except FileNotFoundError as exc:
            raise _no_such_artifact(path) from exc
        if info.get("type") == "directory":
            raise _not_a_file(path)
        return info

    def _fresh_file_path(self, path: str) -> tuple[str, str]:
        """The artifact-relative and backend paths of a file, its cached listings dropped."""
        relative = self._relative(path)
        if not relative:
            raise IsADirectoryError(errno.EISDIR, "the artifact root is a directory", str(self.uri))
        full = self._full(relative)
        self.backend_fs.invalidate_cache(full)
        return relative, full

    # -- streams --------------------------------------------------------------------------------
    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """A file object for one artifact (``"rb"``, ``"wb"``...), through the backend filesystem."""
        relative = self._relative(path)
        if not relative:
            raise IsADirectoryError(errno.EISDIR, "the artifact root is a directory", str(self.uri))
        writing = any(flag in mode for flag in "wax")
        if writing and self.capabilities.empty_directories:
            self._makedirs(posixpath.dirname(relative))
        with errors.translating(self._full(relative)):
            return self.root.open(relative, mode, **kwargs)

    def open_version(self, path: str, **kwargs: Any) -> tuple[IO[bytes], dict[str, Any]]:
        """Open one artifact file for reading, with the ``info`` of the version that handle reads.

        Size and ETag come from the opened handle, never from a second look by path, so a response
        built from them serves one version: a local descriptor keeps the inode it opened (writes
        replace files by rename), s3fs pins its ranged reads to the ETag it opened (``If-Match``).
        Backends whose handles describe nothing (SFTP) fall back to ``info`` by path.
        ``FileNotFoundError`` when it does not exist, ``IsADirectoryError`` for a directory.
        """
        relative, full = self._fresh_file_path(path)
        directory = _not_a_file(path)
        try:
            with errors.translating(full):
                handle: IO[bytes] = self.fs.open(relative, "rb", **kwargs)
        except FileNotFoundError as exc:
            raise _no_such_artifact(path) from exc
        except IsADirectoryError as exc:
            raise directory from exc
        try:
            info = self._opened_info(handle, relative)
        except BaseException:
            handle.close()
            raise
        if info.get("type") == "directory":
            handle.close()
            raise directory
        try:
            digest = self.root.recorded_digest(relative, info)
        except BaseException:
            handle.close()
            raise
        if digest is not None:
            info["digest"] = digest.header()
        return handle, info

    @property
    def backend_loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop an async backend runs its coroutines on (its own thread, fsspec's);
        ``None`` for a synchronous backend, or one driven by its caller's loop (``asynchronous``)."""
        fs = self.backend_fs
        if getattr(fs, "async_impl", False) and not getattr(fs, "asynchronous", False):
            loop: asyncio.AbstractEventLoop = fs.loop
            return loop
        return None

    @property
    def reads_small_on_loop(self) -> bool:
        """Whether :meth:`aread_small` runs here: an async object store that reads a small file in
        one GET (S3)."""
        return self.backend_loop is not None and callable(getattr(self.backend_fs, "_read_small", None))

    async def aread_small(self, path: str, limit: int) -> tuple[bytes, dict[str, Any]] | None:
        """On the backend's loop (:attr:`reads_small_on_loop`): the artifact file ``path``'s whole
        bytes if it has at most ``limit``, and the ``info`` of that version (as
        :meth:`open_version` gives, its record in ``info["digest"]``), in one GET; ``None`` when it
        is larger. The bytes are checked against the record first: a mismatch is
        :class:`~artifact_fs.integrity.DigestMismatchError`. The server's batch downloads."""
        relative = self._relative(path)
        if not relative:
            raise IsADirectoryError(errno.EISDIR, "the artifact root is a directory", str(self.uri))
        full = self._full(relative)
        try:
            with errors.translating(full):
                read = await self.backend_fs._read_small(full, limit)
        except FileNotFoundError as exc:
            raise _no_such_artifact(path) from exc
        if read is None:
            return None
        data, info = read
        record = (
            await integrity.arecorded(self.backend, self.backend_fs, full, info)
            if self.root.digests_enabled
            else None
        )
        if record is not None:
            info["digest"] = record.header()
            quick = integrity.quick_digest(info["digest"])
            if quick is not None:
                integrity.check(path, quick, integrity.digest_of(data, quick.algorithm))
        return data, info

    def version_stream(
        self, path: str, info: Mapping[str, Any], start: int, length: int, batch_size: int
    ) -> tuple[AsyncIterator[list[bytes]], asyncio.AbstractEventLoop] | None:
        """``length`` bytes from ``start`` of the version :meth:`open_version` described in ``info``,
        as one GET pinned to that version, in batches of pieces of at least ``batch_size`` bytes,
        and the event loop the stream runs on (the backend's);
        ``None`` where the backend cannot (not an async object store, or no version to pin), and the
        open handle is read instead. The server's streamed answers: one request to the store per
        answer, read as it arrives, where the handle makes one request per chunk it is asked for."""
        loop = self.backend_loop
        streamer = getattr(self.backend_fs, "version_stream", None)
        if loop is None or streamer is None or length <= 0:
            return None
        stream = streamer(self._full(self._relative(path)), info, (start, start + length - 1), batch_size)
        return None if stream is None else (stream, loop)

    def _opened_info(self, handle: IO[bytes], relative: str) -> dict[str, Any]:
        """What an open handle knows of the version it reads (fsspec's ``details``, or ``fstat``)."""
        details = getattr(handle, "details", None)
        if isinstance(details, Mapping) and details:
            info = dict(details)
            info["size"] = getattr(handle, "size", None) or info.get("size") or 0
            return info
        try:
            stat = os.fstat(handle.fileno())
        except (AttributeError, OSError, ValueError):
            with errors.translating(self._full(relative)):
                return dict(self.fs.info(relative))
        # the inode tells two versions of the same size and mtime apart (a rename replaced the file)
        return {"type": "file", "size": stat.st_size, "mtime": stat.st_mtime_ns, "ino": stat.st_ino}

    # -- concurrency ----------------------------------------------------------------------------
    def _run_concurrently(
        self,
        transfers: Mapping[str, Transfer],
        blocking: Callable[[str, str, FileProgress], None],
        asynchronous: Callable[[str, str, FileProgress], Awaitable[None]],
        action: str,
        preposition: str,
    ) -> None:
        """Run one transfer per artifact; raise one error listing every failure.

        An async backend (s3fs, gcsfs, adlfs, ...) runs them all as coroutines on its own event
        loop, at most ``async_concurrency`` in flight, as fsspec's batched ``get``/``put`` do (a
        thread per transfer would cap a 1,000-file tree at MLflow's 4-20 threads); a synchronous
        backend on a pool of ``max_workers`` threads.
        """
        if not transfers:
            return
        loop = self.backend_loop
        if loop is not None:
            failures = sync(loop, self._gather, transfers, asynchronous)
        else:
            failures = self._in_threads(transfers, blocking)
        if failures:
            raise transfer_error(failures, action, preposition, str(self.uri)) from failures[min(failures)]

    async def _gather(
        self,
        transfers: Mapping[str, Transfer],
        transfer: Callable[[str, str, FileProgress], Awaitable[None]],
    ) -> dict[str, BaseException]:
        slots = asyncio.Semaphore(self.async_concurrency)

        async def one(arguments: Transfer) -> None:
            async with slots:
                await transfer(*arguments)

        results = await asyncio.gather(
            *(one(arguments) for arguments in transfers.values()), return_exceptions=True
        )
        return {
            path: result
            for path, result in zip(transfers, results, strict=True)
            if isinstance(result, BaseException)
        }

    def _in_threads(
        self, transfers: Mapping[str, Transfer], transfer: Callable[[str, str, FileProgress], None]
    ) -> dict[str, BaseException]:
        """On a pool of ``max_workers`` threads; where transfers are local copies
        (``capabilities.local_copies``), small files in this thread meanwhile: a hand-off (a future,
        a thread woken, the GIL passed back and forth) costs more than their copy, and made a local
        tree of 1,000 small files 1.4x slower than copying it in one thread."""
        failures: dict[str, BaseException] = {}
        here = {
            path: arguments
            for path, arguments in transfers.items()
            if self.capabilities.local_copies and _hashed_first(arguments[2].size)
        }
        pooled = {path: arguments for path, arguments in transfers.items() if path not in here}
        workers = max(1, min(self.max_workers, len(pooled)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ArtifactStore") as pool:
            futures = {pool.submit(transfer, *arguments): path for path, arguments in pooled.items()}
            for path, arguments in here.items():
                try:
                    transfer(*arguments)
                except Exception as exc:  # noqa: BLE001 - reported with the pool's failures
                    failures[path] = exc
            for future in as_completed(futures):
                exception = future.exception()
                if exception is not None:
                    failures[futures[future]] = exception
        return failures


_HASHING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="artifact-fs-digest")
"""Hashing and digest records beside transfers: hashlib releases the GIL, so a file is hashed while
its upload runs (from the page cache the upload just filled) instead of after it."""


INLINE_HASH_LIMIT = 256 * 1024
"""Files up to this size are hashed where they are uploaded: a hand-off to the hashing pool (a
future, a thread woken, the GIL passed back and forth) costs far more than the hashing (about
0.15 ms for 256 KiB), and made a local tree of small files 4x slower with digests on. Where
transfers are local copies, files up to this size are copied in the calling thread too."""


def _hashed_first(size: int | None) -> bool:
    """Whether a file this size is hashed before its upload starts (so its record can go with it)."""
    return size is not None and size <= INLINE_HASH_LIMIT


def _hash_beside(source: str, size: int | None) -> Future[integrity.Record]:
    """The file's digests: hashed on the pool beside a large upload, at once for a small file."""
    if not _hashed_first(size):
        return _HASHING.submit(integrity.file_digests, source)
    done: Future[integrity.Record] = Future()
    try:
        done.set_result(integrity.file_digests(source))
    except Exception as exc:  # noqa: BLE001 - reported where the result is asked for, as the pool's
        done.set_exception(exc)
    return done


def _no_such_artifact(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, f"No such artifact: '{path}'", path)


def _not_a_file(path: str) -> IsADirectoryError:
    return IsADirectoryError(errno.EISDIR, f"Artifact path refers to a directory, not a file: '{path}'", path)


def _local_size(path: str) -> int | None:
    """The size of a file to upload; ``None`` if it cannot be read now (its upload then fails)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _remove_partial(local: str) -> None:
    """Never leave a partial download that looks complete."""
    with contextlib.suppress(OSError):
        os.remove(local)


def _download_destination(within: paths.Confinement, artifact_path: str, made: set[str]) -> str:
    """The local path for one artifact: contained in the destination (symlinks resolved), its
    directory made (once per directory: ``made`` holds those made so far)."""
    relative = os.path.normpath(artifact_path.rstrip("/"))
    local = within.inside(relative)
    parent = os.path.dirname(local)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)
    return local


def _truncate(message: str, limit: int = ERROR_MESSAGE_LIMIT) -> str:
    """Keep the head and the tail of a long message, as MLflow does."""
    if len(message) <= limit:
        return message
    marker = f"\n... ({len(message) - limit} characters truncated) ...\n"
    keep = limit - len(marker)
    return message[: keep // 2] + marker + message[len(message) - (keep - keep // 2) :]


def transfer_error(
    failures: Mapping[str, BaseException], action: str, preposition: str, location: str
) -> OSError:
    """One ``OSError`` for many failed files, worded as MLflow's, truncated to 10,000 characters.

    The class is the builtin class all failures share (``FileNotFoundError`` when every file was
    missing), else ``OSError``; ``.failures`` maps each artifact path to its exception.
    """
    header = f"The following failures occurred while {action} one or more artifacts {preposition} {location}:"
    blocks = [f"##### File {path} #####\n{failures[path]}" for path in sorted(failures)]
    classes = {_builtin(errors.error_class(exc)) for exc in failures.values()}
    shared = classes.pop() if len(classes) == 1 else OSError
    first = failures[min(failures)]
    code = getattr(first, "errno", None) if shared is not OSError else None
    error = shared(code or errno.EIO, _truncate("\n".join([header, *blocks])))
    error.failures = dict(failures)  # type: ignore[attr-defined]
    return error


def _builtin(klass: type[OSError]) -> type[OSError]:
    for ancestor in klass.__mro__:
        if ancestor.__module__ == "builtins" and issubclass(ancestor, OSError):
            return ancestor
    return OSError
