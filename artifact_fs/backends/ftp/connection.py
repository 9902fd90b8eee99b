"""FTP connection options (URI, ``ARTIFACT_FS_FTP_*``, the transfer policy), TLS, and control connections.

ftplib connections cannot be shared between threads (replies would interleave), so every thread
gets its own logged-in control connection, and every upload one more of its own.
"""

from __future__ import annotations

import contextlib
import ftplib
import ssl
import threading
from collections.abc import Mapping
from typing import Any, TypedDict

from artifact_fs import settings
from artifact_fs.policy import TransferPolicy
from artifact_fs.uris import ArtifactURI

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 21
DEFAULT_TIMEOUT = 30.0
"""Seconds for each control or data socket operation (fsspec's default; MLflow documents none for
FTP). ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` replaces it, ``-1`` meaning no limit."""


class FTPOptions(TypedDict, total=False):
    """Storage options of :class:`~artifact_fs.backends.ftp.ArtifactFTPFileSystem`."""

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
    timeout: float | None
    """Seconds for each socket operation (``None``: no limit); given alone, it also bounds connecting."""
    connect_timeout: float | None
    """Seconds to connect: the policy's ``connect_timeout`` unless ``timeout`` is given explicitly."""
    encoding: str
    use_listings_cache: bool
    policy: TransferPolicy
    """The back-off before the one retry of a retryable failure (on a reopened connection)."""


def options(
    uri: ArtifactURI, environ: Mapping[str, str], *, policy: TransferPolicy | None = None, **overrides: Any
) -> FTPOptions:
    """Connection options from the URI, ``ARTIFACT_FS_FTP_*`` and the transfer policy; ``overrides`` win."""
    policy = policy or TransferPolicy.from_environ(environ)
    result: FTPOptions = {
        "host": uri.host or DEFAULT_HOST,
        "port": uri.port or DEFAULT_PORT,
        "username": uri.username or None,
        "password": uri.password,
        "tls": settings.ARTIFACT_FS_FTP_TLS.get(environ),
        "ca_file": settings.ARTIFACT_FS_FTP_TLS_CA_FILE.get(environ),
        "tls_verify": settings.ARTIFACT_FS_FTP_TLS_VERIFY.get(environ),
        "passive": True,
        "timeout": policy.transfer_timeout_or(DEFAULT_TIMEOUT),
        "connect_timeout": policy.connect_timeout,
        "policy": policy,
    }
    if "timeout" in overrides and "connect_timeout" not in overrides:
        # One explicit timeout bounds connecting too, as ftplib's does.
        result["connect_timeout"] = overrides["timeout"]
    result.update(overrides)  # type: ignore[typeddict-item]
    check_options(result)
    return result


def check_options(options: FTPOptions) -> None:
    """Refuse contradictory or unsupported TLS settings and non-positive timeouts, saying what to do."""
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
    for name, value in (
        ("timeout", options.get("timeout")),
        ("connect_timeout", options.get("connect_timeout")),
    ):
        if value is not None and value <= 0:
            raise ValueError(f"Invalid FTP {name} {value!r}: use a positive number of seconds (or None)")


def tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """The system trust store (or ``ca_file``); ftplib's own default context verifies nothing."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ControlConnections:
    """Logged-in control connections to one server: one per thread, plus any a caller owns."""

    def __init__(
        self,
        host: str,
        port: int,
        credentials: tuple[str, str, str],
        *,
        tls: bool,
        ca_file: str | None,
        tls_verify: bool,
        passive: bool,
        timeout: float | None,
        connect_timeout: float | None,
        encoding: str,
    ) -> None:
        self.host, self.port, self.credentials = host, port, credentials
        self.tls, self.ca_file, self.tls_verify, self.passive = tls, ca_file, tls_verify, passive
        self.timeout, self.connect_timeout, self.encoding = timeout, connect_timeout, encoding
        self._local = threading.local()
        self._opened: list[ftplib.FTP] = []
        self._lock = threading.Lock()

    def open(self) -> ftplib.FTP:
        """A new logged-in control connection (TLS-protected when configured), owned by the caller."""
        connection: ftplib.FTP
        if self.tls:
            context = tls_context(self.ca_file, self.tls_verify)
            connection = ftplib.FTP_TLS(context=context, timeout=self.timeout, encoding=self.encoding)
        else:
            connection = ftplib.FTP(timeout=self.timeout, encoding=self.encoding)
        try:
            connection.connect(self.host, self.port, timeout=self.connect_timeout)  # type: ignore[arg-type]
            assert connection.sock is not None
            connection.timeout = self.timeout  # data connections and every later reply
            connection.sock.settimeout(self.timeout)
            connection.login(*self.credentials)
            if isinstance(connection, ftplib.FTP_TLS):
                connection.prot_p()
            connection.set_pasv(self.passive)
        except BaseException:
            connection.close()
            raise
        return connection

    def current(self) -> ftplib.FTP:
        """This thread's control connection, opened on first use."""
        connection: ftplib.FTP | None = getattr(self._local, "ftp", None)
        return connection if connection is not None else self.reopen()

    def replace_current(self, connection: ftplib.FTP) -> None:
        self._local.ftp = connection

    def reopen(self) -> ftplib.FTP:
        """Close this thread's connection (the server may have dropped it) and open a new one."""
        old = getattr(self._local, "ftp", None)
        if old is not None:
            old.close()
        self._local.ftp = None
        connection = self.open()
        self._local.ftp = connection
        with self._lock:
            self._opened = [c for c in self._opened if c.sock is not None]
            self._opened.append(connection)
        return connection

    def close_all(self) -> None:
        """Close every per-thread connection opened so far."""
        with self._lock:
            connections, self._opened = self._opened, []
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close()
