"""What both HDFS engines share: MLflow's URL forms, one NameNode call per delete, buffered files.

Errors go through :func:`artifact_fs.errors.translating` only; the HDFS rows (Java exception names,
hdfs-native's error text) live in ``artifact_fs/errors.py``.
"""

from __future__ import annotations

import datetime
import errno
import os
import posixpath
import socket
import weakref
from typing import Any
from urllib.parse import urlsplit

from fsspec import AbstractFileSystem
from fsspec.spec import AbstractBufferedFile

from artifact_fs.backends.hdfs.config import STREAM_CHUNK_SIZE, namenode_url
from artifact_fs.errors import translating


def probe_namenode(host: str | None, port: int | None, timeout: float) -> None:
    """Fail fast when a NameNode given as host:port does not accept connections.

    Only for an explicit port: a host without one may be a nameservice or viewfs cluster, which
    the Hadoop configuration resolves.
    """
    if not host or not port:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except TimeoutError as exc:
        raise TimeoutError(
            errno.ETIMEDOUT,
            f"the HDFS NameNode {host}:{port} did not answer within {timeout:g} s "
            "(check the host, the port and any firewall; connect_timeout raises the limit)",
        ) from exc
    except OSError as exc:
        klass = ConnectionRefusedError if isinstance(exc, ConnectionRefusedError) else ConnectionError
        raise klass(
            exc.errno or errno.ECONNREFUSED,
            f"cannot reach the HDFS NameNode {host}:{port}: {exc.strerror or exc} "
            "(is the NameNode running, and is this its RPC port, usually 8020 or 9000?)",
        ) from exc


class ForkGuard:
    """For a client runtime that does not survive ``fork`` (a Rust runtime, an in-process JVM).

    ``check`` refuses use in a process forked after the first use: the child would hang in its
    first call. ``keep_alive`` holds every live client in a forked child, because fsspec empties its
    instance cache there and a dropped client's destructor would call into the missing runtime.
    """

    def __init__(self, refusal: str) -> None:
        self.refusal = refusal
        self.used_in_pid: int | None = None
        self._live: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._kept_in_child: list[Any] = []
        os.register_at_fork(after_in_child=lambda: self._kept_in_child.extend(self._live.values()))

    def check(self) -> None:
        pid = os.getpid()
        if self.used_in_pid is None:
            self.used_in_pid = pid
        elif self.used_in_pid != pid:
            raise RuntimeError(self.refusal)

    def keep_alive(self, client: Any) -> None:
        self._live[id(client)] = client


class HdfsFileSystemBase(AbstractFileSystem):
    """The fsspec surface both engines share.

    Engines provide ``info``, ``ls``, ``mkdir``, ``makedirs``, ``cat_file``, the primitives
    ``_delete``, ``_rename`` and ``_copy_file``, and a ``file_class`` (an :class:`HdfsFile`);
    ``scheme``, ``host`` and ``port`` name the NameNode.
    """

    protocol = ("hdfs", "viewfs")
    root_marker = "/"
    scheme: str
    host: str | None
    port: int | None
    file_class: type[AbstractBufferedFile]

    @property
    def fsid(self) -> str:
        return f"hdfs_{self.scheme}_{self.host}_{self.port}"

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        for scheme in ("hdfs", "viewfs"):
            if path.startswith(f"{scheme}://"):
                rest = path[len(scheme) + 3 :]
                path = rest[rest.find("/") :] if "/" in rest else "/"
            elif path.startswith(f"{scheme}:"):
                path = path[len(scheme) + 1 :]
        path = "/" + path.strip("/")
        return path

    def unstrip_protocol(self, name: str) -> str:
        base = namenode_url(self.scheme, self.host, self.port) or f"{self.scheme}:"
        return base + self._strip_protocol(name)

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        split = urlsplit(path)
        return {"scheme": split.scheme or "hdfs", "host": split.hostname, "port": split.port}

    def exists(self, path: str, **kwargs: Any) -> bool:
        """Only "not found" means False: an unreachable NameNode is an error, not a missing file."""
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def modified(self, path: str) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.info(path)["mtime"], tz=datetime.UTC)

    def created(self, path: str) -> datetime.datetime:
        raise NotImplementedError("HDFS records no creation time; use modified()")

    def rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.isfile(path):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        self._delete(path, recursive=False)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory; use rm(recursive=True)", path)
        self._delete(path, recursive=False)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """One NameNode call per path (HDFS deletes a tree atomically), globs expanded first."""
        if maxdepth is not None:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)
            return
        targets = path if isinstance(path, list) else [path]
        expanded: list[str] = []
        for target in targets:
            stripped = self._strip_protocol(target)
            if any(char in stripped for char in "*?["):
                expanded.extend(self.expand_path(stripped, recursive=False))
            else:
                expanded.append(stripped)
        for item in expanded:
            self._delete(item, recursive=recursive)

    def _delete(self, path: str, recursive: bool) -> None:
        """Delete one path in one NameNode call; ``FileNotFoundError`` when it does not exist."""
        raise NotImplementedError

    def _rename(self, source: str, destination: str) -> None:
        """Rename in one NameNode call, creating the destination's parent (HDFS needs it)."""
        raise NotImplementedError

    def _copy_file(self, source: str, destination: str) -> None:
        """Stream one file's bytes from ``source`` to ``destination`` through this client."""
        raise NotImplementedError

    def mv(
        self, path1: Any, path2: Any, recursive: bool = False, maxdepth: int | None = None, **kwargs: Any
    ) -> None:
        """A NameNode rename (atomic); into a directory when the destination is one."""
        if isinstance(path1, list) or isinstance(path2, list) or maxdepth is not None:
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return
        source, destination = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(destination):
            destination = posixpath.join(destination, posixpath.basename(source))
        self._rename(source, destination)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """HDFS has no server-side copy: stream through this client in 1 MiB chunks."""
        source, destination = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(source):  # a recursive copy lists directories too: recreate them
            self.makedirs(destination, exist_ok=True)
            return
        self._copy_file(source, destination)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AbstractBufferedFile:
        return self.file_class(
            self,
            self._strip_protocol(path),
            mode=mode,
            block_size=block_size or STREAM_CHUNK_SIZE,
            autocommit=autocommit,
            cache_options=cache_options,
            **kwargs,
        )


class HdfsFile(AbstractBufferedFile):
    """fsspec's buffered file on either engine: ranged reads, writes streamed to one writer.

    Engines implement ``_open_reader`` (called before fsspec's ``__init__``, which needs the size),
    ``_fetch_range`` and ``_open_writer``; the writer needs ``write`` and ``close``.
    """

    def __init__(self, fs: HdfsFileSystemBase, path: str, mode: str = "rb", **kwargs: Any) -> None:
        if mode not in {"rb", "wb", "xb"}:
            raise ValueError(f"HDFS files open only as 'rb', 'wb' or 'xb', not {mode!r}")
        self._writer: Any = None
        self._reader: Any = None
        if mode == "rb":
            with translating(path):
                self._reader, kwargs["size"] = self._open_reader(fs, path)
        super().__init__(fs, path, mode=mode, **kwargs)
        if mode != "rb":
            # Create at open, as MLflow's open_output_stream does: a conflict (an existing file for
            # "xb", a parent that is a file) fails here, not at the first flush.
            try:
                self._initiate_upload()
            except BaseException:
                self.closed = True
                raise

    def _open_reader(self, fs: Any, path: str) -> tuple[Any, int]:
        """The engine's reader for ``path`` and the file's size."""
        raise NotImplementedError

    def _open_writer(self) -> Any:
        raise NotImplementedError

    def _initiate_upload(self) -> None:
        if self._writer is None:
            with translating(self.path):
                self._writer = self._open_writer()

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getvalue()
        with translating(self.path):
            if data:
                self._writer.write(data)
            if final:
                self._writer.close()
        return True
