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
* Timeouts come from the transfer policy (connecting: ``connect_timeout``; each socket operation:
  ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``, else 30 s); an explicit ``timeout=`` wins. After a
  failure worth retrying (421, a dropped connection, a timeout) the connection is reopened and the
  operation tried once more, after the policy's back-off.
* Uploads are atomic (:mod:`artifact_fs.backends.atomic`): bytes go to ``.artifact.uploading.<random>``
  in the target's directory on a connection of their own, and only a completed transfer is renamed
  (RNFR/RNTO) to the final name. Readers never see a partial file; such names are hidden from listings.
* fsspec's FTP filesystem shares one control connection between threads and returns bare names from
  ``ls(detail=False)``; here every thread has its own connection and names are full paths.

Errors are builtin ``OSError`` subclasses chosen by :mod:`artifact_fs.errors` from the FTP reply
(530 -> ``PermissionError``, 550 -> ``FileNotFoundError``, 4xx retryable ...), the ftplib error kept
as ``__cause__``.

Modules: :mod:`.connection` (options, TLS, control connections), :mod:`.listing` (MLSD/MLST/LIST),
:mod:`.filesystem` (the fsspec filesystem), :mod:`.upload` (the atomic upload file).
"""

from __future__ import annotations

from typing import Any

from artifact_fs.backends.ftp.connection import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    FTPOptions,
    options,
)
from artifact_fs.backends.ftp.filesystem import ArtifactFTPFileSystem
from artifact_fs.backends.ftp.upload import WRITE_BLOCK_SIZE, AtomicFTPUpload
from artifact_fs.capabilities import Capabilities
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(empty_directories=True, atomic_write=True)
"""No server-side copy, exclusive create, multipart upload or presigning; the rest as the defaults."""

PRESIGN_UNSUPPORTED = "FTP has no presigned URLs; clients upload through the artifact server"
"""Why the artifact server answers 501 to presign requests here (the backend has no presign hooks)."""


def filesystem(options: FTPOptions) -> ArtifactFTPFileSystem:
    """Connect and log in now, so bad credentials or a refused port fail here, clearly."""
    keywords: dict[str, Any] = dict(options)
    host = keywords.pop("host", DEFAULT_HOST)
    return ArtifactFTPFileSystem(host, **keywords)


def fs_path(uri: ArtifactURI, options: FTPOptions) -> str:
    """The path on the server, as written in the URI (MLflow does not percent-decode it)."""
    return ArtifactFTPFileSystem._strip_protocol(uri.path or "/")  # type: ignore[no-any-return]


__all__ = [
    "CAPABILITIES",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "PRESIGN_UNSUPPORTED",
    "WRITE_BLOCK_SIZE",
    "ArtifactFTPFileSystem",
    "AtomicFTPUpload",
    "FTPOptions",
    "filesystem",
    "fs_path",
    "options",
]
