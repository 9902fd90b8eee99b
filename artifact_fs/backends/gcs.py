"""Google Cloud Storage (``gs://bucket/path``) over gcsfs, configured like MLflow's GCS repository.

* ``MLFLOW_GCS_UPLOAD_CHUNK_SIZE`` / ``MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE``: chunk of resumable uploads and
  of ranged reads (multiples of 256 KiB; settings refuses anything else).
* ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``: default 60 s as google-cloud-storage's, ``-1`` for none.
  The deprecated ``MLFLOW_GCS_DEFAULT_TIMEOUT`` is still honoured, with a ``DeprecationWarning``.
  Like the ``requests`` timeout MLflow passes, it bounds connecting and every read, not a whole
  transfer.
* Credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` or Application Default Credentials; anonymous access
  when none are found, as MLflow falls back to an anonymous client.
* ``STORAGE_EMULATOR_HOST``: the endpoint, as google-cloud-storage and gcsfs read it.

gcsfs's experimental zonal/HNS support is switched off before it is imported (unless the user chose):
it calls a gRPC control API on every new bucket, which emulators do not speak.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, TypedDict

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import aiohttp
from gcsfs.core import GCSFile, GCSFileSystem
from gcsfs.retry import HttpError, retry_request

from artifact_fs import settings
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.backends.ranges import cat_slice
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import translate_errors
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    empty_directories=False,
    atomic_write=True,
    exclusive_create=False,
    server_side_copy=True,
    range_read=True,
    multipart_upload=False,
    presign=False,
)

DEFAULT_TRANSFER_TIMEOUT = 60.0
"""google-cloud-storage's default timeout, which MLflow keeps when the variable is unset (seconds)."""
DEFAULT_RETRIES = 6
"""Attempts per request (gcsfs's default); transient errors back off 1, 2, 4 ... seconds."""


class GCSOptions(TypedDict, total=False):
    """Storage options of :class:`ArtifactGCSFileSystem` (gcsfs's plus three of ours)."""

    token: Any
    """gcsfs credentials: a key-file path, ``"google_default"``, ``"anon"``, a dict or Credentials."""
    project: str
    endpoint_url: str
    upload_chunk_size: int | None
    download_chunk_size: int | None
    transfer_timeout: float | None
    """Seconds for connecting and for each read; None for no timeout."""
    retries: int
    consistency: str


def _transfer_timeout(environ: Mapping[str, str]) -> float | None:
    if settings.MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT.is_set(environ):
        return settings.transfer_timeout(DEFAULT_TRANSFER_TIMEOUT, environ)
    legacy = settings.MLFLOW_GCS_DEFAULT_TIMEOUT.get(environ)
    if legacy is not None:
        warnings.warn(
            "MLFLOW_GCS_DEFAULT_TIMEOUT is deprecated; set MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT instead",
            DeprecationWarning,
            stacklevel=4,
        )
        return None if legacy == -1 else float(legacy)
    return DEFAULT_TRANSFER_TIMEOUT


def _check_chunk_size(name: str, value: int | None) -> None:
    if value is not None and (value <= 0 or value % settings.GCS_CHUNK_UNIT):
        raise ValueError(
            f"Invalid {name} {value!r}: a GCS chunk size must be a positive multiple of 256 KiB "
            f"({settings.GCS_CHUNK_UNIT} bytes), e.g. {4 * settings.GCS_CHUNK_UNIT}"
        )


def options(uri: ArtifactURI, environ: Mapping[str, str], **overrides: Any) -> GCSOptions:
    """MLflow's GCS variables as gcsfs options; explicit ``overrides`` win."""
    result: GCSOptions = {
        "upload_chunk_size": settings.MLFLOW_GCS_UPLOAD_CHUNK_SIZE.get(environ),
        "download_chunk_size": settings.MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE.get(environ),
        "transfer_timeout": _transfer_timeout(environ),
        "retries": DEFAULT_RETRIES,
    }
    emulator = settings.STORAGE_EMULATOR_HOST.get(environ)
    if emulator and emulator != "default":
        result["endpoint_url"] = emulator if "://" in emulator else f"http://{emulator}"
    key_file = settings.GOOGLE_APPLICATION_CREDENTIALS.get(environ)
    if key_file:
        result["token"] = key_file
    result.update(overrides)  # type: ignore[typeddict-item]
    _check_chunk_size("upload_chunk_size", result.get("upload_chunk_size"))
    _check_chunk_size("download_chunk_size", result.get("download_chunk_size"))
    return result


def default_token() -> str:
    """``google_default`` when Application Default Credentials exist, else ``anon`` (MLflow's fallback)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        return "anon"
    return "google_default"


def filesystem(options: GCSOptions) -> ArtifactGCSFileSystem:
    options = dict(options)  # type: ignore[assignment]
    if options.get("token") is None:
        options["token"] = default_token()
    return ArtifactGCSFileSystem(**options)


def fs_path(uri: ArtifactURI, options: GCSOptions) -> str:
    """``<bucket>/<key>``: gcsfs's path form."""
    return f"{uri.bucket}/{uri.key}".rstrip("/")


class ArtifactGCSFile(DiscardOnError, GCSFile):
    """A GCS file that cancels its resumable upload when its ``with`` block fails (an object smaller
    than one chunk was never sent)."""


class ArtifactGCSFileSystem(GCSFileSystem):
    """gcsfs with MLflow's chunk sizes and timeout, and a configurable number of attempts.

    Reads use the download chunk as their block size, writes the upload chunk, so a large write is
    a resumable upload sent chunk by chunk and a failed one leaves no object.
    """

    def __init__(
        self,
        *,
        upload_chunk_size: int | None = None,
        download_chunk_size: int | None = None,
        transfer_timeout: float | None = DEFAULT_TRANSFER_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        **kwargs: Any,
    ) -> None:
        _check_chunk_size("upload_chunk_size", upload_chunk_size)
        _check_chunk_size("download_chunk_size", download_chunk_size)
        if retries < 1:
            raise ValueError(f"retries must be at least 1 (one attempt), got {retries}")
        if transfer_timeout is not None:
            kwargs.setdefault(
                "requests_timeout",
                aiohttp.ClientTimeout(total=None, sock_connect=transfer_timeout, sock_read=transfer_timeout),
            )
        super().__init__(**kwargs)
        self.upload_chunk_size = upload_chunk_size
        self.download_chunk_size = download_chunk_size
        self.transfer_timeout = transfer_timeout
        self.retries = retries

    # gcsfs fixes its attempt count when the class is defined; apply ours with its own retry helper.
    async def _request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        attempt = retry_request(retries=self.retries)(GCSFileSystem._request.__wrapped__)  # type: ignore[attr-defined]
        return await attempt(self, method, path, *args, **kwargs)

    async def _get_file_request(self, *args: Any, **kwargs: Any) -> Any:
        attempt = retry_request(retries=self.retries)(GCSFileSystem._get_file_request.__wrapped__)  # type: ignore[attr-defined]
        return await attempt(self, *args, **kwargs)

    async def _pipe_file(self, path: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        if self.upload_chunk_size and "chunksize" not in kwargs:
            kwargs["chunksize"] = self.upload_chunk_size
        return await super()._pipe_file(path, data, *args, **kwargs)

    async def _put_file(self, lpath: str, rpath: str, *args: Any, **kwargs: Any) -> Any:
        if self.upload_chunk_size:
            kwargs.setdefault("chunksize", self.upload_chunk_size)
        return await super()._put_file(lpath, rpath, *args, **kwargs)

    async def _get_file(self, rpath: str, lpath: str, callback: Any = None, **kwargs: Any) -> Any:
        if self.download_chunk_size:
            kwargs.setdefault("chunk_size", self.download_chunk_size)
        return await super()._get_file(rpath, lpath, callback=callback, **kwargs)

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Python-slicing ranges (GCS answers 416 for a range starting at or past the end)."""

        async def fetch(first: int | None, stop: int | None) -> Any:
            return await GCSFileSystem._cat_file(self, path, start=first, end=stop, **kwargs)

        def is_416(exc: Exception) -> bool:
            return isinstance(exc, HttpError) and exc.code == 416

        return await cat_slice(self, path, start, end, fetch=fetch, is_416=is_416)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any) -> GCSFile:
        if block_size is None:
            chunk = self.download_chunk_size if "r" in mode else self.upload_chunk_size
            block_size = chunk or self.default_block_size
        const = kwargs.pop("consistency", None) or self.consistency
        return ArtifactGCSFile(self, path, mode, block_size, consistency=const, **kwargs)


# Errors leaving these methods are builtin OSErrors (gcsfs's HttpError, aiohttp's connection errors
# and its plain ``OSError("Forbidden")`` pass through errors.translate).
_TRANSLATED_METHODS = (
    "_info", "_ls", "_cat_file", "_pipe_file", "_put_file", "_get_file", "_rm_file", "_rm", "_cp_file",
)  # fmt: skip
for _name in _TRANSLATED_METHODS:
    setattr(ArtifactGCSFileSystem, _name, translate_errors(getattr(ArtifactGCSFileSystem, _name)))


# -- presigned uploads and downloads --------------------------------------------------------
PRESIGN_UNSUPPORTED = (
    "presigned GCS multipart uploads need V4 URLs signed with a service-account key, and the XML "
    "multipart API; artifact_fs does not offer them for GCS yet, so clients upload through the server"
)
"""Why the artifact server answers 501 to presign requests here (the backend has no presign hooks)."""
