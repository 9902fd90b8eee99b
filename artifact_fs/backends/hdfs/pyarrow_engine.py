"""The ``pyarrow`` HDFS engine: MLflow's own client (``pyarrow.fs.HadoopFileSystem`` over libhdfs).

fsspec's ``ArrowFSWrapper`` is not used: its ``ls`` of a file fails, its ``rm`` deletes a file and
then the same path as a directory (an I/O error), it takes no lists, and its files are neither
picklable nor seekable for ``cat_file`` ranges. This class gives the pyarrow engine the same
surface and behaviour as the hdfs-native engine (``base.HdfsFileSystemBase``), reading through
fsspec's buffered files with ``read_at`` so reads are ranged and open files pickle.

libhdfs starts a JVM inside this process the first time a client connects. A JVM does not survive
``fork``: a child forked after that is refused with a clear error instead of hanging.
"""

from __future__ import annotations

import errno
import posixpath
import shutil
from typing import Any

from artifact_fs.backends.hdfs.base import ForkGuard, HdfsFile, HdfsFileSystemBase
from artifact_fs.backends.hdfs.config import STREAM_CHUNK_SIZE, namenode_url
from artifact_fs.backends.hdfs.kerberos import refusal_error, simple_auth_refusal, wants_kerberos
from artifact_fs.backends.ranges import slice_bounds
from artifact_fs.errors import translating
from artifact_fs.uris import redact

FORK_GUARD = ForkGuard(
    "the pyarrow HDFS engine cannot be used in a process forked after its parent connected "
    "(libhdfs's JVM does not survive fork); start workers with multiprocessing's 'spawn' or "
    "'forkserver' method"
)


class PyarrowHdfsFile(HdfsFile):
    """A buffered file over libhdfs: ``read_at`` for ranges, an output stream for writes."""

    fs: PyarrowHdfsFileSystem

    def _open_reader(self, fs: PyarrowHdfsFileSystem, path: str) -> tuple[Any, int]:
        fs.refuse_directory(path)
        reader = fs.arrow.open_input_file(path)
        return reader, reader.size()

    def _fetch_range(self, start: int, end: int) -> bytes:
        with translating(self.path):
            return self._reader.read_at(max(0, min(end, self.size) - start), start)  # type: ignore[no-any-return]

    def _open_writer(self) -> Any:
        # libhdfs cannot create exclusively, so "xb" checks first: a writer racing between the
        # check and the create wins.
        if self.mode == "xb" and self.fs.exists(self.path):
            raise FileExistsError(errno.EEXIST, "the file already exists", self.path)
        return self.fs.arrow.open_output_stream(self.path, compression=None)

    def close(self) -> None:
        super().close()
        if self._reader is not None:
            self._reader.close()


class PyarrowHdfsFileSystem(HdfsFileSystemBase):
    """fsspec over ``pyarrow.fs.HadoopFileSystem`` with the arguments MLflow passes."""

    file_class = PyarrowHdfsFile

    def __init__(
        self,
        *,
        scheme: str = "hdfs",
        host: str | None = None,
        port: int | None = None,
        arrow_arguments: dict[str, Any] | None = None,
        kerberos: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from pyarrow.fs import HadoopFileSystem

        self.scheme, self.host, self.port = scheme, host, port
        FORK_GUARD.check()
        with translating(None):
            self.arrow = HadoopFileSystem(**(arrow_arguments or {}))
        FORK_GUARD.keep_alive(self)
        self._check_authentication(kerberos)

    def _check_authentication(self, kerberos: bool) -> None:
        """One NameNode call at connect: libhdfs reports a refused login as a bare "Permission
        denied" at the first operation (the reason goes to stderr), and the root's status is never
        denied to an authenticated user, so a refusal here is the login's."""
        try:
            self._file_info("/", confirm_missing=False)
        except (PermissionError, FileNotFoundError) as exc:  # pyarrow reads a refused "/" as missing
            where = redact(namenode_url(self.scheme, self.host, self.port) or f"{self.scheme}:")
            if kerberos:
                raise refusal_error(
                    f"the HDFS cluster {where} refused this client's Kerberos ticket "
                    "(MLFLOW_KERBEROS_TICKET_CACHE)"
                ) from exc
            refusal = simple_auth_refusal(self.host, self.port)
            if refusal is None:
                raise
            raise wants_kerberos(
                where, refusal, " (before the first HDFS use: libhdfs's JVM reads them once)"
            ) from exc

    # -- metadata ------------------------------------------------------------------------------
    @staticmethod
    def _entry(info: Any) -> dict[str, Any]:
        from pyarrow.fs import FileType

        is_dir = info.type == FileType.Directory
        return {
            "name": "/" + info.path.strip("/") if info.path.strip("/") else "/",
            "size": 0 if is_dir else int(info.size),
            "type": "directory" if is_dir else "file",
            "mtime": info.mtime.timestamp() if info.mtime is not None else None,
        }

    def _file_info(self, path: str, confirm_missing: bool = True) -> Any:
        from pyarrow.fs import FileType

        with translating(path):
            info = self.arrow.get_file_info(path)
        if info.type == FileType.NotFound:
            if confirm_missing:
                self._confirm_missing(path)
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
        return info

    def _confirm_missing(self, path: str) -> None:
        """Raise the real error when "not found" was not the NameNode's answer.

        pyarrow reports every failed status call as not found: a NameNode call that timed out
        (``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``) or a NameNode gone away would make a file
        read as missing. Opening the path asks again, and libhdfs keeps ENOENT apart from the rest.
        """
        try:
            with translating(path):
                self.arrow.open_input_stream(path, compression=None).close()
        except FileNotFoundError:
            return

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        entry = self._entry(self._file_info(path))
        entry["name"] = path
        return entry

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        from pyarrow.fs import FileSelector, FileType

        path = self._strip_protocol(path)
        top = self._file_info(path)
        if top.type != FileType.Directory:
            entries = [{**self._entry(top), "name": path}]
        else:
            with translating(path):
                entries = [self._entry(info) for info in self.arrow.get_file_info(FileSelector(path))]
        return entries if detail else [entry["name"] for entry in entries]

    # -- directories ---------------------------------------------------------------------------
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if self.exists(path):
            raise FileExistsError(errno.EEXIST, "the path already exists", path)
        if not create_parents and not self.isdir(posixpath.dirname(path) or "/"):
            raise FileNotFoundError(errno.ENOENT, "the parent directory does not exist", path)
        with translating(path):
            self.arrow.create_dir(path, recursive=create_parents)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if self.exists(path):
            if not exist_ok or not self.isdir(path):
                raise FileExistsError(errno.EEXIST, "the path already exists", path)
            return
        with translating(path):
            self.arrow.create_dir(path, recursive=True)

    def _delete(self, path: str, recursive: bool) -> None:
        from pyarrow.fs import FileSelector, FileType

        info = self._file_info(path)
        with translating(path):
            if info.type != FileType.Directory:
                self.arrow.delete_file(path)
            elif recursive or not self.arrow.get_file_info(FileSelector(path)):
                self.arrow.delete_dir(path)
            else:
                raise OSError(errno.ENOTEMPTY, "directory not empty; use rm(recursive=True)", path)

    def _rename(self, source: str, destination: str) -> None:
        self._file_info(source)  # libhdfs reports a missing source as a bare I/O error
        with translating(source):
            self.arrow.create_dir(posixpath.dirname(destination) or "/", recursive=True)
            self.arrow.move(source, destination)

    # -- data ----------------------------------------------------------------------------------
    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        self.refuse_directory(path)
        with translating(path), self.arrow.open_input_file(path) as handle:
            begin, stop = slice_bounds(handle.size(), start, end)
            return handle.read_at(stop - begin, begin) if stop > begin else b""

    def refuse_directory(self, path: str) -> None:
        """``IsADirectoryError`` for a directory: libhdfs would open it and fail at the first read."""
        from pyarrow.fs import FileType

        if self._file_info(path).type == FileType.Directory:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)

    def _copy_file(self, source: str, destination: str) -> None:
        with (
            translating(source),
            self.arrow.open_input_stream(source, compression=None) as reader,
            self.arrow.open_output_stream(destination, compression=None) as writer,
        ):
            shutil.copyfileobj(reader, writer, STREAM_CHUNK_SIZE)
