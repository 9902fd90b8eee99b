"""fsspec's FTP filesystem with a connection per thread, full-path listings and atomic uploads."""

from __future__ import annotations

import contextlib
import errno
import ftplib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from fsspec.implementations.ftp import FTPFile, FTPFileSystem
from fsspec.spec import AbstractBufferedFile

from artifact_fs import errors
from artifact_fs.backends import atomic
from artifact_fs.backends.ftp import listing
from artifact_fs.backends.ftp.connection import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    ControlConnections,
    check_options,
)
from artifact_fs.backends.ftp.upload import WRITE_BLOCK_SIZE, AtomicFTPUpload
from artifact_fs.policy import TransferPolicy

T = TypeVar("T")


class ArtifactFTPFileSystem(FTPFileSystem):
    """fsspec's FTP filesystem with a connection per thread, full-path listings and atomic uploads.

    fsspec's shares one control connection between threads and returns bare names from
    ``ls(detail=False)``. Listings are not cached by default: other writers (MLflow clients, other
    servers) change the tree. Errors are builtin ``OSError`` subclasses chosen by
    :mod:`artifact_fs.errors` from the FTP reply, naming the action and the path.
    """

    cachable = False

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        username: str | None = None,
        password: str | None = None,
        acct: str | None = None,
        *,
        tls: bool = False,
        ca_file: str | None = None,
        tls_verify: bool = True,
        passive: bool = True,
        timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        encoding: str = "utf-8",
        use_listings_cache: bool = False,
        policy: TransferPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        check_options(
            {"tls": tls, "ca_file": ca_file, "timeout": timeout, "connect_timeout": connect_timeout}
        )
        self.policy = policy or TransferPolicy.from_environ()
        self.connections = ControlConnections(
            host,
            port,
            (username or "", password or "", acct or ""),
            tls=tls,
            ca_file=ca_file,
            tls_verify=tls_verify,
            passive=passive,
            timeout=timeout,
            connect_timeout=connect_timeout if connect_timeout is not None else timeout,
            encoding=encoding,
        )
        self._mlsd_supported = True
        self._mlst_supported = True
        with errors.translating(f"{host}:{port}", action="FTP login to"):
            super().__init__(
                host,
                port=port,
                username=username,
                password=password,
                acct=acct,
                timeout=timeout,
                encoding=encoding,
                tls=tls,
                use_listings_cache=use_listings_cache,
                **kwargs,
            )

    # -- connections -------------------------------------------------------------------------
    def open_connection(self) -> ftplib.FTP:
        """A new logged-in control connection (TLS-protected when configured), owned by the caller."""
        return self.connections.open()

    def _connect(self) -> None:
        """(Re)connect this thread's control connection (fsspec calls it after an aborted read)."""
        self.connections.reopen()

    @property  # type: ignore[override]
    def ftp(self) -> ftplib.FTP:
        """This thread's control connection: ftplib connections cannot be shared between threads."""
        return self.connections.current()

    @ftp.setter
    def ftp(self, value: ftplib.FTP) -> None:
        self.connections.replace_current(value)

    def _run(self, action: str, path: str | None, operation: Callable[[], T]) -> T:
        """Run ``operation`` on this thread's connection, errors translated; if it failed in a way
        worth retrying (the server dropped an idle connection, 421, a timeout), reconnect and try
        once more after the policy's back-off."""
        for attempt in self.policy.retrying(attempts=2):
            with attempt, errors.translating(path, action=f"FTP {action}"):
                if attempt.retry_state.attempt_number > 1:
                    self._connect()
                return operation()
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def close(self) -> None:
        """Close every connection this filesystem opened."""
        self.connections.close_all()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- listings ------------------------------------------------------------------------------
    def _directory_entries(self, path: str) -> list[dict[str, Any]]:
        """MLSD of ``path`` (LIST on servers without MLSD); ``ftplib.error_perm`` if not a directory."""
        if self._mlsd_supported:
            try:
                return listing.mlsd_entries(self.ftp, path)
            except ftplib.error_perm as exc:
                if not listing.is_unsupported(exc):
                    raise
                self._mlsd_supported = False
        return listing.list_entries(self.ftp, path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """Entries under ``path`` (full paths, sorted), without uploads in progress; a file lists itself."""
        path = self._strip_protocol(path)
        try:
            entries = self.dircache[path]
        except KeyError:
            try:
                found = self._run("list", path, lambda: self._directory_entries(path))
            except FileNotFoundError:
                entries = [self.info(path)]  # not a directory: a file, or FileNotFoundError
            else:
                entries = sorted(atomic.without_temporaries(found), key=lambda entry: entry["name"])
                self.dircache[path] = entries
        if detail:
            return list(entries)
        return [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """One ``MLST`` on the control connection (no data connection); a parent listing otherwise."""
        path = self._strip_protocol(path)
        if path == "/":
            return {"name": "/", "size": 0, "type": "directory"}
        if atomic.is_temporary(path):
            raise FileNotFoundError(errno.ENOENT, "uploads in progress are not artifacts", path)
        parent = self._parent(path)
        siblings = self.dircache.get(parent)
        if siblings is None and self._mlst_supported:
            try:
                return self._run("stat", path, lambda: listing.mlst_entry(self.ftp, path))
            except OSError as exc:
                if not listing.is_unsupported(exc.__cause__):
                    raise
                self._mlst_supported = False
        if siblings is None:
            try:
                siblings = self._run("list", parent, lambda: self._directory_entries(parent))
            except FileNotFoundError:
                siblings = []
        for entry in siblings:
            if entry["name"] == path:
                return dict(entry)
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)

    def unstrip_protocol(self, name: str) -> str:
        """A URL that names this server (never the password)."""
        user = f"{quote(self.cred[0], safe='')}@" if self.cred[0] else ""
        return f"ftp://{user}{self.host}:{self.port}{self._strip_protocol(name)}"

    def invalidate_cache(self, path: str | None = None) -> None:
        if path is None:
            self.dircache.clear()
        else:
            self.dircache.pop(self._strip_protocol(path), None)

    def modified(self, path: str) -> datetime:
        """The server's MLSD ``modify`` fact (UTC)."""
        fact = self.info(path).get("modify")
        if not fact:
            raise NotImplementedError(f"the FTP server gave no modification time for {path!r}")
        return datetime.strptime(fact[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)

    # -- reads -----------------------------------------------------------------------------------
    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """Whole files in one RETR; ranges (Python slicing rules) with REST and an early close."""
        path = self._strip_protocol(path)
        details = self.info(path)
        if details["type"] == "directory":
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if start is None and end is None:
            return self._run("read", path, lambda: FTPFileSystem.cat_file(self, path))  # type: ignore[no-any-return]
        first, stop, _ = slice(start, end).indices(details["size"])
        if stop <= first:
            return b""
        return self._run("read", path, lambda: self._read_range(path, first, stop - first))

    def _read_range(self, path: str, start: int, length: int) -> bytes:
        connection = self.ftp
        connection.voidcmd("TYPE I")
        data = connection.transfercmd(f"RETR {path}", rest=start or None)
        chunks, remaining = [], length
        try:
            while remaining > 0:
                chunk = data.recv(min(remaining, self.blocksize))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        finally:
            data.close()
        try:
            connection.voidresp()  # 226 if the file ended, else 426/451 for the transfer we cut short
        except (ftplib.error_temp, ftplib.error_perm, ftplib.error_reply):
            pass
        except (OSError, EOFError):
            self._connect()
        return b"".join(chunks)

    def get_file(self, rpath: str, lpath: Any, **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        if isinstance(lpath, str | os.PathLike) and os.path.dirname(lpath):
            os.makedirs(os.path.dirname(lpath), exist_ok=True)
        self._run("download", rpath, lambda: FTPFileSystem.get_file(self, rpath, lpath, **kwargs))

    # -- writes ----------------------------------------------------------------------------------
    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        cache_options: dict[str, Any] | None = None,
        autocommit: bool = True,
        **kwargs: Any,
    ) -> AbstractBufferedFile:
        path = self._strip_protocol(path)
        if "r" in mode:
            if self.isdir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            return FTPFile(
                self,
                path,
                mode=mode,
                block_size=block_size or self.blocksize,
                autocommit=autocommit,
                cache_options=cache_options,
            )
        atomic.prepare_write(self, path, mode, "FTP")
        return AtomicFTPUpload(self, path, block_size=block_size or WRITE_BLOCK_SIZE, autocommit=autocommit)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy through the client (FTP has no server-side copy), streamed into an atomic upload."""
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(path1):
            self.makedirs(path2, exist_ok=True)
            return
        with self.open(path2, "wb") as destination:
            self._run(
                "copy",
                path1,
                lambda: self.ftp.retrbinary(f"RETR {path1}", destination.write, blocksize=self.blocksize),
            )

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        parent = self._parent(path)
        if create_parents and parent not in ("", "/"):
            self.makedirs(parent, exist_ok=True)
        self._run("mkdir", path, lambda: self.ftp.mkd(path))
        self.invalidate_cache(parent)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create ``path`` and its parents; safe when other threads or clients create them too."""
        path = self._strip_protocol(path)
        if path == "/":
            return
        if self.isdir(path):
            if exist_ok:
                return
            raise FileExistsError(errno.EEXIST, "already exists", path)
        try:
            self.mkdir(path, create_parents=True)
        except FileExistsError:
            if not (exist_ok and self.isdir(path)):
                raise

    def mv(
        self, path1: str, path2: str, recursive: bool = False, maxdepth: int | None = None, **kwargs: Any
    ) -> None:
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if not self.exists(path1) and not atomic.is_temporary(path1):
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", path1)
        parent = self._parent(path2)
        if parent not in ("", "/"):
            self.makedirs(parent, exist_ok=True)
        self._run("rename", path1, lambda: FTPFileSystem.mv(self, path1, path2))

    # -- deletes ---------------------------------------------------------------------------------
    def _rm(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory; use rm(path, recursive=True)", path)
        self._run("delete", path, lambda: FTPFileSystem._rm(self, path))

    def rmdir(self, path: str) -> None:
        """Remove an empty directory; abandoned temporary uploads in it do not keep it alive."""
        path = self._strip_protocol(path)
        for leftover in self._abandoned_uploads(path):
            self._run("delete", leftover, lambda name=leftover: self.ftp.delete(name))  # type: ignore[misc]
        self._run("rmdir", path, lambda: FTPFileSystem.rmdir(self, path))

    def _abandoned_uploads(self, path: str) -> list[str]:
        def names() -> list[str]:
            return [
                entry["name"] for entry in self._directory_entries(path) if atomic.is_temporary(entry["name"])
            ]

        try:
            return self._run("list", path, names)
        except FileNotFoundError:
            return []
