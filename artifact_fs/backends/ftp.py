"""FTP and explicit FTPS (``ftp://[user[:password]@]host[:port]/path``) over fsspec's FTP filesystem.

Matches MLflow's ``FTPArtifactRepository`` where it is right and corrects it where it is not:

* Host ``localhost``, port 21 and path ``/`` by default; no user means anonymous login. The user
  name and password are percent-decoded (MLflow decodes the password; decoding the user too is the
  only way to write ``@`` or ``:`` in it). The path is used exactly as written, as MLflow does.
* Passive mode (ftplib's and MLflow's default); active mode is an option for old servers.
* Explicit TLS (``AUTH TLS`` then ``PROT P``) when ``tls=True`` or ``ARTIFACT_FS_FTP_TLS=true``. The
  server certificate is verified against the system trust store, or ``ARTIFACT_FS_FTP_TLS_CA_FILE``;
  ``ARTIFACT_FS_FTP_TLS_VERIFY=false`` turns verification off (never by default: ftplib's own
  default context verifies nothing).
* Uploads are atomic: bytes go to ``.artifact.uploading.<random>`` in the target's directory on a
  connection of their own, and only a completed transfer is renamed (RNFR/RNTO) to the final name.
  Readers never see a partial file; names with that prefix are hidden from listings.
* fsspec's FTP filesystem shares one control connection between threads and returns bare names from
  ``ls(detail=False)``; here every thread has its own connection and names are full paths.
* Listings are not cached by default: other writers (MLflow clients, other servers) change the tree.

Errors are builtin ``OSError`` subclasses chosen from the FTP reply code (530 -> ``PermissionError``,
550 -> ``FileNotFoundError`` ...), the ftplib error kept as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import errno
import ftplib
import os
import posixpath
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict
from urllib.parse import quote

from fsspec.implementations.ftp import FTPFile, FTPFileSystem, _mlsd2
from fsspec.spec import AbstractBufferedFile

from artifact_fs import settings
from artifact_fs.capabilities import Capabilities
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    empty_directories=True,
    atomic_write=True,
    exclusive_create=False,
    server_side_copy=False,
    range_read=True,
    multipart_upload=False,
    presign=False,
    delete=True,
    rename=True,
    modified_time=True,
)

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 21
DEFAULT_TIMEOUT = 30.0
"""Seconds for connecting and for each control or data socket operation (fsspec's default)."""
UPLOAD_PREFIX = ".artifact.uploading."
"""Temporary upload names start with this; they are never listed."""
WRITE_BLOCK_SIZE = 1024 * 1024
"""Bytes buffered before they are sent on the upload's data connection."""

ARTIFACT_FS_FTP_TLS = settings.boolean(
    "ARTIFACT_FS_FTP_TLS", False, "FTP: use explicit TLS (AUTH TLS, PROT P) on control and data."
)
ARTIFACT_FS_FTP_TLS_CA_FILE = settings.string(
    "ARTIFACT_FS_FTP_TLS_CA_FILE", None, "FTPS: PEM file of CAs that sign the server certificate."
)
ARTIFACT_FS_FTP_TLS_VERIFY = settings.boolean(
    "ARTIFACT_FS_FTP_TLS_VERIFY", True, "FTPS: verify the server certificate and host name."
)
SETTINGS = (ARTIFACT_FS_FTP_TLS, ARTIFACT_FS_FTP_TLS_CA_FILE, ARTIFACT_FS_FTP_TLS_VERIFY)


class FTPOptions(TypedDict, total=False):
    """Storage options of :class:`ArtifactFTPFileSystem`."""

    host: str
    port: int
    username: str | None
    password: str | None
    acct: str | None
    tls: bool
    """Explicit TLS (``AUTH TLS``); implicit FTPS (port 990) is not supported."""
    ca_file: str | None
    tls_verify: bool
    passive: bool
    timeout: float
    encoding: str
    use_listings_cache: bool


def options(uri: ArtifactURI, environ: Mapping[str, str], **overrides: Any) -> FTPOptions:
    """Connection options from the URI and the ``ARTIFACT_FS_FTP_*`` variables; ``overrides`` win."""
    result: FTPOptions = {
        "host": uri.host or DEFAULT_HOST,
        "port": uri.port or DEFAULT_PORT,
        "username": uri.username or None,
        "password": uri.password,
        "tls": ARTIFACT_FS_FTP_TLS.get(environ),
        "ca_file": ARTIFACT_FS_FTP_TLS_CA_FILE.get(environ),
        "tls_verify": ARTIFACT_FS_FTP_TLS_VERIFY.get(environ),
        "passive": True,
        "timeout": DEFAULT_TIMEOUT,
    }
    result.update(overrides)  # type: ignore[typeddict-item]
    _check_options(result)
    return result


def _check_options(options: FTPOptions) -> None:
    tls = options.get("tls", False)
    if not isinstance(tls, bool):
        raise ValueError(
            f"Invalid FTP option tls={tls!r}: use tls=True for explicit FTPS (AUTH TLS); "
            "implicit FTPS and protocol names are not supported"
        )
    if not tls and options.get("ca_file"):
        raise ValueError(
            f"FTP option ca_file={options['ca_file']!r} is set but TLS is off: "
            "set tls=True (or ARTIFACT_FS_FTP_TLS=true), or drop the CA file"
        )
    timeout = options.get("timeout")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"Invalid FTP timeout {timeout!r}: use a positive number of seconds")


def filesystem(options: FTPOptions) -> ArtifactFTPFileSystem:
    """Connect and log in now, so bad credentials or a refused port fail here, clearly."""
    keywords: dict[str, Any] = dict(options)
    host = keywords.pop("host", DEFAULT_HOST)
    return ArtifactFTPFileSystem(host, **keywords)


def fs_path(uri: ArtifactURI, options: FTPOptions) -> str:
    """The path on the server, as written in the URI (MLflow does not percent-decode it)."""
    return ArtifactFTPFileSystem._strip_protocol(uri.path or "/")


# -- errors ----------------------------------------------------------------------------------------
def _class_for_reply(reply: str) -> type[OSError]:
    code, text = reply[:3], reply.lower()
    if (
        code in {"530", "532"}
        or "ssl" in text
        or "tls" in text
        or "permission" in text
        or "privilege" in text
        or "denied" in text
    ):
        return PermissionError
    if "not empty" in text:
        return OSError
    if "exist" in text and "not" not in text:
        return FileExistsError
    if code == "550" or "no such" in text or "not found" in text:
        return FileNotFoundError
    if code == "421":
        return ConnectionError
    return OSError


def translate(exc: BaseException, action: str, path: str | None = None) -> OSError:
    """A builtin ``OSError`` for an FTP failure, naming what was being done; the cause is kept."""
    if isinstance(exc, ftplib.error_reply | ftplib.error_temp | ftplib.error_perm | ftplib.error_proto):
        klass = _class_for_reply(str(exc))
        detail = f"the FTP server answered {str(exc).strip()!r}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        klass = PermissionError
        detail = (
            f"the server's TLS certificate is not trusted ({exc.verify_message}); pass ca_file= "
            "(ARTIFACT_FS_FTP_TLS_CA_FILE) or, only for testing, tls_verify=False"
        )
    elif isinstance(exc, EOFError):
        klass = ConnectionError
        detail = "the FTP server closed the connection"
    elif isinstance(exc, OSError) and type(exc).__module__ == "builtins":
        klass = type(exc)
        detail = exc.strerror or str(exc) or type(exc).__name__
    elif isinstance(exc, OSError):
        klass = OSError
        detail = str(exc) or type(exc).__name__
    else:
        klass = OSError
        detail = f"{type(exc).__name__}: {exc}"
    where = f" {path!r}" if path else ""
    code = {
        FileNotFoundError: errno.ENOENT,
        PermissionError: errno.EACCES,
        FileExistsError: errno.EEXIST,
        ConnectionError: errno.ECONNRESET,
    }.get(klass, getattr(exc, "errno", None) or errno.EIO)
    if klass is OSError and "not empty" in detail.lower():
        code = errno.ENOTEMPTY
    translated = klass(code, f"FTP {action}{where} failed: {detail}")
    if path is not None:
        translated.filename = path
    translated.__cause__ = exc
    return translated


_FTP_ERRORS = (ftplib.Error, EOFError, OSError)


@contextlib.contextmanager
def translating(action: str, path: str | None = None) -> Iterator[None]:
    """Re-raise FTP, socket and TLS failures as builtin ``OSError`` subclasses."""
    try:
        yield
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError):
        raise
    except _FTP_ERRORS as exc:
        raise translate(exc, action, path) from exc


# -- the filesystem ----------------------------------------------------------------------------------
class ArtifactFTPFileSystem(FTPFileSystem):
    """fsspec's FTP filesystem with a connection per thread, full-path listings and atomic uploads."""

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
        timeout: float = DEFAULT_TIMEOUT,
        encoding: str = "utf-8",
        use_listings_cache: bool = False,
        **kwargs: Any,
    ) -> None:
        _check_options({"tls": tls, "ca_file": ca_file, "timeout": timeout})
        self._local = threading.local()
        self._connections: list[ftplib.FTP] = []
        self._connections_lock = threading.Lock()
        self.ca_file = ca_file
        self.tls_verify = tls_verify
        self.passive = passive
        with translating("login to", f"{host}:{port}"):
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
    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open_connection(self) -> ftplib.FTP:
        """A new logged-in control connection (TLS-protected when configured)."""
        username, password, acct = self.cred
        connection: ftplib.FTP
        if self.tls:
            connection = ftplib.FTP_TLS(
                context=self._tls_context(), timeout=self.timeout, encoding=self.encoding
            )
        else:
            connection = ftplib.FTP(timeout=self.timeout, encoding=self.encoding)
        try:
            connection.connect(self.host, self.port)
            connection.login(username, password, acct)
            if isinstance(connection, ftplib.FTP_TLS):
                connection.prot_p()
            connection.set_pasv(self.passive)
        except BaseException:
            connection.close()
            raise
        return connection

    def _connect(self) -> None:
        """(Re)connect this thread's control connection (fsspec calls it after an aborted read)."""
        old = getattr(self._local, "ftp", None)
        if old is not None:
            old.close()
        connection = self.open_connection()
        self._local.ftp = connection
        with self._connections_lock:
            self._connections = [c for c in self._connections if c.sock is not None]
            self._connections.append(connection)

    @property  # type: ignore[override]
    def ftp(self) -> ftplib.FTP:
        """This thread's control connection: ftplib connections cannot be shared between threads."""
        if getattr(self._local, "ftp", None) is None:
            self._connect()
        return self._local.ftp  # type: ignore[no-any-return]

    @ftp.setter
    def ftp(self, value: ftplib.FTP) -> None:
        self._local.ftp = value

    def _run(self, action: str, path: str | None, operation: Callable[[], Any]) -> Any:
        """Run ``operation``; if the server dropped an idle connection, reconnect and retry once."""
        with translating(action, path):
            try:
                return operation()
            except (EOFError, ConnectionResetError, BrokenPipeError, ftplib.error_temp) as exc:
                if isinstance(exc, ftplib.error_temp) and not str(exc).startswith("421"):
                    raise
                self._connect()
                return operation()

    def close(self) -> None:
        """Close every connection this filesystem opened."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- listings ------------------------------------------------------------------------------
    def _directory_entries(self, path: str) -> list[dict[str, Any]]:
        """MLSD of ``path`` (LIST on servers without MLSD); ``ftplib.error_perm`` if not a directory."""
        if getattr(self, "_mlsd_supported", True):
            try:
                facts = list(self.ftp.mlsd(path))
            except ftplib.error_perm as exc:
                if not str(exc).startswith(("500", "502")):
                    raise
                self._mlsd_supported = False
            else:
                return [
                    self._entry(path, name, fact)
                    for name, fact in facts
                    if fact.get("type") in {"file", "dir"}
                ]
        self.ftp.cwd(path)  # LIST of a file would list the file: make sure it is a directory first
        return [self._entry(path, name, fact) for name, fact in _mlsd2(self.ftp, path)]

    @staticmethod
    def _entry(directory: str, name: str, facts: dict[str, str]) -> dict[str, Any]:
        is_dir = facts.get("type") == "dir"
        entry: dict[str, Any] = {
            key: value for key, value in facts.items() if key not in {"type", "size", "sizd"}
        }
        entry["name"] = posixpath.join(directory, posixpath.basename(name.rstrip("/")))
        entry["type"] = "directory" if is_dir else "file"
        entry["size"] = 0 if is_dir else int(facts.get("size", 0))
        return entry

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """Entries under ``path`` (full paths, sorted), without in-progress uploads; a file lists itself."""
        path = self._strip_protocol(path)
        try:
            entries = self.dircache[path]
        except KeyError:
            try:
                entries = self._run("list", path, lambda: self._directory_entries(path))
            except FileNotFoundError:
                entries = [self.info(path)]  # not a directory: a file, or FileNotFoundError
            else:
                entries = sorted(
                    (e for e in entries if not posixpath.basename(e["name"]).startswith(UPLOAD_PREFIX)),
                    key=lambda entry: entry["name"],
                )
                self.dircache[path] = entries
        if detail:
            return list(entries)
        return [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """One ``MLST`` on the control connection (no data connection); a parent listing otherwise."""
        path = self._strip_protocol(path)
        if path == "/":
            return {"name": "/", "size": 0, "type": "directory"}
        if posixpath.basename(path).startswith(UPLOAD_PREFIX):
            raise FileNotFoundError(errno.ENOENT, "in-progress uploads are not artifacts", path)
        parent = self._parent(path)
        siblings = self.dircache.get(parent)
        if siblings is None and getattr(self, "_mlst_supported", True):
            try:
                return self._run("stat", path, lambda: self._mlst(path))  # type: ignore[no-any-return]
            except OSError as exc:
                if not isinstance(exc.__cause__, ftplib.error_perm) or not str(exc.__cause__).startswith(
                    ("500", "502")
                ):
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

    def _mlst(self, path: str) -> dict[str, Any]:
        reply = self.ftp.sendcmd(f"MLST {path}")
        for line in reply.splitlines()[1:]:
            if line.startswith(" "):
                facts_text, _, _name = line[1:].partition(" ")
                facts = dict(fact.split("=", 1) for fact in facts_text.rstrip(";").split(";") if "=" in fact)
                facts = {key.lower(): value for key, value in facts.items()}
                if facts.get("type", "").lower() in {"cdir", "pdir"}:
                    facts["type"] = "dir"
                return self._entry(self._parent(path), posixpath.basename(path), facts)
        raise ftplib.error_proto(f"unexpected MLST reply {reply!r}")

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
        return self._run("read", path, lambda: self._read_range(path, first, stop - first))  # type: ignore[no-any-return]

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
        if mode not in {"wb", "xb"}:
            raise ValueError(
                f"FTP files open with mode 'rb', 'wb' or 'xb', not {mode!r}: uploads are atomic, "
                "so appending is not supported"
            )
        if mode == "xb" and self.exists(path):
            raise FileExistsError(errno.EEXIST, "already exists", path)
        parent = self._parent(path)
        if parent not in ("", "/"):
            self.makedirs(parent, exist_ok=True)
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
        if not self.exists(path1):
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
                entry["name"]
                for entry in self._directory_entries(path)
                if posixpath.basename(entry["name"]).startswith(UPLOAD_PREFIX)
            ]

        try:
            return self._run("list", path, names)  # type: ignore[no-any-return]
        except FileNotFoundError:
            return []


class AtomicFTPUpload(AbstractBufferedFile):
    """A write stream: one STOR of a temporary name on its own connection, renamed when complete.

    The control connection is private to the file so uploads from several threads (or files) never
    interleave. Leaving a ``with`` block by an exception discards the temporary file.
    """

    fs: ArtifactFTPFileSystem

    def __init__(
        self, fs: ArtifactFTPFileSystem, path: str, block_size: int, autocommit: bool = True
    ) -> None:
        super().__init__(fs, path, mode="wb", block_size=block_size, autocommit=autocommit, cache_type="none")
        self.target = path
        self.temporary = posixpath.join(fs._parent(path), f"{UPLOAD_PREFIX}{uuid.uuid4().hex}")
        self._connection: ftplib.FTP | None = None
        self._data: socket.socket | None = None

    def _initiate_upload(self) -> None:
        with translating("upload", self.target):
            self._connection = self.fs.open_connection()
            self._connection.voidcmd("TYPE I")
            self._data = self._connection.transfercmd(f"STOR {self.temporary}")

    def _upload_chunk(self, final: bool = False) -> bool:
        assert self._data is not None and self._connection is not None and self.buffer is not None
        with translating("upload", self.target):
            self._data.sendall(self.buffer.getbuffer())
            if final:
                self._finish_transfer()
                if self.autocommit:
                    self._connection.rename(self.temporary, self.target)
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
        self.fs.mv(self.temporary, self.target)

    def discard(self) -> None:
        """Abandon the upload: cut the transfer and delete what reached the server."""
        started = self.offset is not None
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
        if started:
            with contextlib.suppress(OSError, ftplib.Error, EOFError):
                self.fs.ftp.delete(self.temporary)

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        except BaseException:
            self.closed = False
            self.discard()
            raise

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        if exc_type is not None and not self.closed:
            self.discard()
            return
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            with contextlib.suppress(Exception):
                self.discard()


# -- presigned uploads and downloads --------------------------------------------------------
PRESIGN_UNSUPPORTED = "FTP has no presigned URLs; clients upload through the artifact server"
"""Why the artifact server answers 501 to presign requests here (the backend has no presign hooks)."""
