"""The ``hdfs-native`` HDFS engine: a JVM-free client speaking Hadoop RPC itself (Rust).

hdfs-native's own fsspec class parses paths as URLs (a ``?`` in a name truncates it), lets
connection errors read as "missing" in ``exists``, copies through a relative temp path and has no
exclusive create; :class:`HdfsNativeFileSystem` is the small surface fsspec needs, written for those
cases. Core-site.xml / hdfs-site.xml come from ``hadoop_conf_dir`` as with libhdfs.
"""

from __future__ import annotations

import errno
import getpass
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from artifact_fs import settings
from artifact_fs.backends.hdfs.base import ForkGuard, HdfsFile, HdfsFileSystemBase, probe_namenode
from artifact_fs.backends.hdfs.config import STREAM_CHUNK_SIZE, namenode_url
from artifact_fs.backends.hdfs.deadline import BoundedClient
from artifact_fs.backends.hdfs.kerberos import (
    client_wants_kerberos,
    simple_auth_refusal,
    wants_kerberos,
)
from artifact_fs.backends.ranges import slice_bounds
from artifact_fs.errors import translating, without_java_stack_trace
from artifact_fs.policy import DEFAULT_CONNECT_TIMEOUT
from artifact_fs.uris import redact

RPC_DISCONNECTED = "RPC listener disconnected"
"""hdfs-native's error when the NameNode closes the connection (as a Kerberized one does on simple auth)."""
FORK_GUARD = ForkGuard(
    "the hdfs-native HDFS engine cannot be used in a process forked after its parent used it "
    "(its connection pool belongs to the parent's runtime and would hang); start workers "
    "with multiprocessing's 'spawn' or 'forkserver' method, or use engine='pyarrow'"
)


class HdfsNativeFile(HdfsFile):
    """A buffered file over hdfs-native readers (ranged reads) and writers (streamed blocks)."""

    fs: HdfsNativeFileSystem

    def _open_reader(self, fs: HdfsNativeFileSystem, path: str) -> tuple[Any, int]:
        with fs.translating(path):
            reader = fs.client.read(path)
        return reader, len(reader)

    def _fetch_range(self, start: int, end: int) -> bytes:
        with self.fs.translating(self.path):
            return self._reader.read_range(start, max(0, min(end, self.size) - start))  # type: ignore[no-any-return]

    def _open_writer(self) -> Any:
        with self.fs.translating(self.path):
            return self.fs.open_writer(self.path, overwrite=self.mode != "xb")


class HdfsNativeFileSystem(HdfsFileSystemBase):
    """fsspec over ``hdfs_native.Client``: builtin errors, fsspec's buffered files, bounded connects."""

    file_class = HdfsNativeFile

    def __init__(
        self,
        *,
        scheme: str = "hdfs",
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        kerb_ticket: str | None = None,
        kerb_principal: str | None = None,
        config: dict[str, str] | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        transfer_timeout: float | None = None,
        hadoop_conf_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from hdfs_native import Client

        self.scheme, self.host, self.port = scheme, host, port
        self.connect_timeout = connect_timeout
        self.kerberos = kerb_principal is not None or client_wants_kerberos(config, hadoop_conf_dir)
        check_user(user, kerb_ticket)
        FORK_GUARD.check()
        probe_namenode(host, port, connect_timeout)
        url = namenode_url(scheme, host, port)
        try:
            # hdfs-native reads a ticket cache only for a named principal: the cache's own
            # (kerberos.login checked it against MLFLOW_KERBEROS_USER).
            client = Client(
                url,
                config or {},
                hadoop_conf_dir,
                kerberos_principal=kerb_principal if kerb_ticket else None,
                kerberos_cache=kerb_ticket,
            )
            FORK_GUARD.keep_alive(client)
        except Exception as exc:
            raise client_error(exc, scheme, host) from exc
        # Each call returns within the transfer timeout (hdfs-native has no NameNode call timeout);
        # after a stall this client is dropped, so the next lookup connects again.
        self.transfer_timeout = transfer_timeout
        self.client = BoundedClient(client, transfer_timeout, on_stall=type(self).clear_instance_cache)

    @contextmanager
    def translating(self, path: str | None) -> Iterator[None]:
        """:func:`~artifact_fs.errors.translating`, and a NameNode's hang-up on a simple-auth client
        named: a Kerberized NameNode refuses it, and hdfs-native says only "RPC listener
        disconnected" (the refusal is probed for only then, so it costs nothing otherwise)."""
        try:
            with translating(path):
                yield
        except OSError as exc:
            if self.kerberos or RPC_DISCONNECTED not in str(exc):
                raise
            refusal = simple_auth_refusal(self.host, self.port, self.connect_timeout)
            if refusal is None:
                raise
            where = redact(namenode_url(self.scheme, self.host, self.port) or f"{self.scheme}:")
            raise wants_kerberos(where, refusal) from exc

    # -- metadata ------------------------------------------------------------------------------
    @staticmethod
    def _entry(status: Any) -> dict[str, Any]:
        is_dir = bool(status.isdir)
        return {
            "name": status.path,
            "size": 0 if is_dir else int(status.length),
            "type": "directory" if is_dir else "file",
            "mtime": status.modification_time / 1000,
            "permission": status.permission,
            "owner": status.owner,
            "group": status.group,
            "replication": status.replication,
            "blocksize": status.blocksize,
        }

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        with self.translating(path):
            entry = self._entry(self.client.get_file_info(path))
        entry["name"] = path
        return entry

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        with self.translating(path):
            entries = [self._entry(status) for status in self.client.list_status(path, False)]
        return entries if detail else [entry["name"] for entry in entries]

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """One streamed recursive listing (HDFS lists a whole tree in one call) unless maxdepth is set."""
        if maxdepth is not None:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        path = self._strip_protocol(path)
        with self.translating(path):
            try:
                top = self.info(path)
            except FileNotFoundError:
                return {} if detail else []
            if top["type"] == "file":
                found = {path: top}
            else:
                found = {path: top} if withdirs and path != "/" else {}
                for status in self.client.list_status(path, True):
                    entry = self._entry(status)
                    if withdirs or entry["type"] == "file":
                        found[entry["name"]] = entry
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    # -- directories ---------------------------------------------------------------------------
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if self.exists(path):
            raise FileExistsError(errno.EEXIST, "the path already exists", path)
        with self.translating(path):
            self.client.mkdirs(path, kwargs.get("permission", 0o755), create_parents)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if not exist_ok and self.exists(path):
            raise FileExistsError(errno.EEXIST, "the path already exists", path)
        with self.translating(path):
            self.client.mkdirs(path, 0o755, True)

    def _delete(self, path: str, recursive: bool) -> None:
        with self.translating(path):
            deleted = self.client.delete(path, recursive)
        if not deleted:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)

    def _rename(self, source: str, destination: str) -> None:
        with self.translating(source):
            self.client.mkdirs(posixpath.dirname(destination) or "/", 0o755, True)
            self.client.rename(source, destination, True)

    # -- data ----------------------------------------------------------------------------------
    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        with self.translating(path):
            reader = self.client.read(path)
            begin, stop = slice_bounds(len(reader), start, end)
            return reader.read_range(begin, stop - begin) if stop > begin else b""

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        with self.translating(path):
            writer = self.open_writer(path, overwrite=mode != "create")
            try:
                for offset in range(0, len(value), STREAM_CHUNK_SIZE):
                    writer.write(value[offset : offset + STREAM_CHUNK_SIZE])
            finally:
                writer.close()

    def open_writer(self, path: str, overwrite: bool) -> Any:
        """An hdfs-native writer; ``overwrite=False`` is the NameNode's exclusive create."""
        from hdfs_native import WriteOptions

        write_options = WriteOptions()
        write_options.overwrite = overwrite
        return self.client.create(path, write_options)

    def _copy_file(self, source: str, destination: str) -> None:
        with self.translating(source):
            reader = self.client.read(source)
            writer = self.open_writer(destination, overwrite=True)
            try:
                for chunk in reader.read_range_stream(0, len(reader)):
                    writer.write(chunk)
            finally:
                writer.close()


def check_user(user: str | None, kerb_ticket: str | None) -> None:
    """hdfs-native takes the user from the ticket cache (Kerberos) or HADOOP_USER_NAME (simple auth).

    MLflow passes MLFLOW_KERBEROS_USER to libhdfs; hdfs-native has no per-client user, so a user that
    differs from the one it would send is refused rather than silently ignored.
    """
    if not user or kerb_ticket:
        return
    effective = settings.HADOOP_USER_NAME.get() or login_name()
    if user != effective:
        raise ValueError(
            f"MLFLOW_KERBEROS_USER={user!r} cannot be applied by the hdfs-native engine, which "
            f"connects as {effective!r} (from HADOOP_USER_NAME or the login name): set "
            f"HADOOP_USER_NAME={user} as well, or use engine='pyarrow'"
        )


def login_name() -> str:
    """The user hdfs-native sends under simple authentication when HADOOP_USER_NAME is unset."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def client_error(exc: Exception, scheme: str, host: str | None) -> Exception:
    """A configuration error from ``hdfs_native.Client`` as a ``ValueError`` saying what to set."""
    message = without_java_stack_trace(str(exc))
    if not host and "defaultFS" in message:
        return ValueError(
            f"{scheme}:/<path> uses the default filesystem of the Hadoop configuration, but no "
            "fs.defaultFS was found: set HADOOP_CONF_DIR (or HADOOP_HOME) to a directory with a "
            f"core-site.xml, or name the NameNode: {scheme}://<host>:<port>/<path>"
        )
    where = redact(namenode_url(scheme, host, None) or f"{scheme}:")
    return ValueError(f"cannot configure the HDFS client for {where}: {message}")
