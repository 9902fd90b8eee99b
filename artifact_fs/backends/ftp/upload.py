"""An FTP upload that appears under its name only when complete: STOR of a temporary, then RNFR/RNTO."""

from __future__ import annotations

import contextlib
import ftplib
import socket
import ssl
from typing import Any, Protocol

from fsspec.spec import AbstractBufferedFile

from artifact_fs import errors
from artifact_fs.backends.atomic import WriteBeside
from artifact_fs.backends.buffered import DiscardOnError

WRITE_BLOCK_SIZE = 1024 * 1024
"""Bytes buffered before they are sent on the upload's data connection."""


class UploadServer(Protocol):
    """What an upload needs of the filesystem that opened it."""

    @property
    def ftp(self) -> ftplib.FTP: ...

    def open_connection(self) -> ftplib.FTP: ...

    def mv(self, path1: str, path2: str, **kwargs: Any) -> None: ...


class AtomicFTPUpload(DiscardOnError, AbstractBufferedFile):
    """A write stream: one STOR of a hidden name beside the target, on its own connection, then a rename.

    The control connection is private to the file so uploads from several threads (or files) never
    interleave. Leaving a ``with`` block by an exception, or dropping the file unclosed, discards the
    temporary file; inside an fsspec transaction the rename waits for :meth:`commit`.
    """

    fs: UploadServer
    discard_when_dropped = True

    def __init__(self, fs: UploadServer, path: str, block_size: int, autocommit: bool = True) -> None:
        super().__init__(fs, path, mode="wb", block_size=block_size, autocommit=autocommit, cache_type="none")
        self.beside = WriteBeside(path, rename=self._rename, remove=self._remove)
        self.target = path
        self.temporary = self.beside.temporary
        self._connection: ftplib.FTP | None = None
        self._data: socket.socket | None = None

    def _rename(self, temporary: str, target: str) -> None:
        if self._connection is not None:  # right after the transfer, on the upload's own connection
            self._connection.rename(temporary, target)
        else:  # a transaction's commit, later
            self.fs.mv(temporary, target)

    def _remove(self, temporary: str) -> None:
        if self.offset is not None:  # something reached the server
            self.fs.ftp.delete(temporary)

    def _initiate_upload(self) -> None:
        with errors.translating(self.target, action="FTP upload"):
            self._connection = self.fs.open_connection()
            self._connection.voidcmd("TYPE I")
            self._data = self._connection.transfercmd(f"STOR {self.temporary}")

    def _upload_chunk(self, final: bool = False) -> bool:
        assert self._data is not None and self._connection is not None and self.buffer is not None
        with errors.translating(self.target, action="FTP upload"):
            self._data.sendall(self.buffer.getbuffer())
            if final:
                self._finish_transfer()
                if self.autocommit:
                    self.beside.publish()
                self._close_connection()
        return True

    def _finish_transfer(self) -> None:
        assert self._data is not None and self._connection is not None
        data, self._data = self._data, None
        if isinstance(data, ssl.SSLSocket):
            data.unwrap()
        data.close()
        self._connection.voidresp()

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.quit()
            connection.close()

    def commit(self) -> None:
        self.beside.publish()

    def discard(self) -> None:
        """Abandon the upload: cut the transfer and delete what reached the server."""
        if self._data is not None:
            with contextlib.suppress(OSError):
                self._data.close()
            self._data = None
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    self._connection.voidresp()
        self._close_connection()
        self.buffer = None
        self.closed = True
        self.beside.discard()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        except BaseException:
            self.discard()
            raise
