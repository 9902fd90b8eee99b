"""Google Cloud Storage (``gs://bucket/path``) over gcsfs, configured like MLflow's GCS repository.

* ``MLFLOW_GCS_UPLOAD_CHUNK_SIZE`` / ``MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE``: chunk of resumable uploads and
  of ranged reads (multiples of 256 KiB; settings refuses anything else).
* Downloads are concurrent ranged GETs (:mod:`artifact_fs.backends.gcs_download`) of
  ``MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE``, else ``MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE`` (16 MiB by default;
  ``MLFLOW_ENABLE_MULTIPART_DOWNLOAD=false``: one GET per file).
* Digest records: a small file's object carries a copy of its record in its custom metadata
  (``x-goog-meta-artifact-fs-digest``, set in the same upload), read back from the download's own answer.
* ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` (through the transfer policy): default 60 s as
  google-cloud-storage's, ``-1`` for none. The deprecated ``MLFLOW_GCS_DEFAULT_TIMEOUT`` is still
  honoured, with a ``DeprecationWarning``. Like the ``requests`` timeout MLflow passes, it bounds
  every read, not a whole transfer; connecting is bounded by the policy's connect timeout too.
* Attempts per request: the policy's retries (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``), else gcsfs's 6.
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

from artifact_fs import integrity, settings

os.environ.setdefault(settings.GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT.name, "false")

import aiohttp
from fsspec.callbacks import DEFAULT_CALLBACK
from gcsfs.core import GCSFile, GCSFileSystem
from gcsfs.retry import retry_request

from artifact_fs.backends import gcs_download, object_store, ranged_download, read_cache
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.backends.gcs_presign import GCSPresigner
from artifact_fs.backends.object_store import ObjectStoreFileSystem
from artifact_fs.backends.ranged_download import GetObject, discarding
from artifact_fs.policy import (
    DEFAULT_CONNECT_TIMEOUT,
    DOWNLOAD_PART_SIZE,
    TransferPolicy,
    download_part_size,
    stall_bounded_sockets,
)
from artifact_fs.uris import ArtifactURI

CAPABILITIES = object_store.CAPABILITIES
"""Multipart uploads are parallel composite uploads (:mod:`artifact_fs.backends.gcs_presign`)."""
DIGESTS = object_store.CARRIED_DIGESTS

DEFAULT_TRANSFER_TIMEOUT = 60.0
"""google-cloud-storage's default timeout, which MLflow keeps when the variable is unset (seconds)."""
DEFAULT_RETRIES = 6
"""Attempts per request (gcsfs's default); transient errors back off 1, 2, 4 ... seconds."""
DEFAULT_MAX_CONCURRENCY = 8
"""Ranged GETs in flight per file download: memory stays ``8 x 1 MiB`` of bodies being read."""


class GCSOptions(TypedDict, total=False):
    """Storage options of :class:`ArtifactGCSFileSystem` (gcsfs's plus ours)."""

    token: Any
    """gcsfs credentials: a key-file path, ``"google_default"``, ``"anon"``, a dict or Credentials."""
    project: str
    endpoint_url: str
    upload_chunk_size: int | None
    download_chunk_size: int | None
    download_part_size: int
    """Range size of file downloads; 0 for one plain GET (``MLFLOW_ENABLE_MULTIPART_DOWNLOAD=false``)."""
    max_concurrency: int
    """Ranged GETs in flight per file download."""
    transfer_timeout: float | None
    """Seconds for each read (and for connecting, when shorter than ``connect_timeout``); None for none."""
    connect_timeout: float
    """Seconds for connecting, whatever ``transfer_timeout`` is."""
    retries: int
    """Attempts per request (gcsfs's meaning of the word), the first one included."""
    batch_size: int
    consistency: str


def _transfer_timeout(policy: TransferPolicy, environ: Mapping[str, str]) -> float | None:
    if policy.transfer_timeout_set:
        return policy.transfer_timeout
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


def options(
    uri: ArtifactURI, environ: Mapping[str, str], *, policy: TransferPolicy | None = None, **overrides: Any
) -> GCSOptions:
    """MLflow's GCS variables as gcsfs options; explicit ``overrides`` win.

    Timeouts, attempts and concurrency come from ``policy`` (by default read from ``environ``).
    """
    policy = policy or TransferPolicy.from_environ(environ)
    result: GCSOptions = {
        "upload_chunk_size": settings.MLFLOW_GCS_UPLOAD_CHUNK_SIZE.get(environ),
        "download_chunk_size": settings.MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE.get(environ),
        "max_concurrency": DEFAULT_MAX_CONCURRENCY,
        "transfer_timeout": _transfer_timeout(policy, environ),
        "connect_timeout": policy.connect_timeout,
        "retries": policy.max_retries_or(DEFAULT_RETRIES - 1) + 1,
        "batch_size": policy.async_concurrency,
    }
    emulator = settings.STORAGE_EMULATOR_HOST.get(environ)
    if emulator and emulator != "default":
        result["endpoint_url"] = emulator if "://" in emulator else f"http://{emulator}"
    key_file = settings.GOOGLE_APPLICATION_CREDENTIALS.get(environ)
    if key_file:
        result["token"] = key_file
    result.update(overrides)  # type: ignore[typeddict-item]
    if "download_part_size" not in result:
        result["download_part_size"] = _download_part_size(environ, result.get("download_chunk_size"))
    _check_chunk_size("upload_chunk_size", result.get("upload_chunk_size"))
    _check_chunk_size("download_chunk_size", result.get("download_chunk_size"))
    return result


def _download_part_size(environ: Mapping[str, str], chunk_size: int | None) -> int:
    """The GCS download chunk, else MLflow's multipart-download variables (0: one GET per file)."""
    if not settings.MLFLOW_ENABLE_MULTIPART_DOWNLOAD.get(environ):
        return 0
    return chunk_size or download_part_size(environ)


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


fs_path = object_store.fs_path

# GCS's presign hooks, which the artifact server calls (artifact_fs.root); object_store checks and shapes.
create_multipart_upload = object_store.create_multipart_upload
complete_multipart_upload = object_store.complete_multipart_upload
abort_multipart_upload = object_store.abort_multipart_upload
presigned_download_url = object_store.presigned_download_url


class ArtifactGCSFile(DiscardOnError, object_store.KnownDetails, GCSFile):
    """A GCS file that cancels its resumable upload when its ``with`` block fails (an object smaller
    than one chunk was never sent); opened for reading with ``details`` (an ``info`` just made,
    :data:`.object_store.OPEN_AFTER_HEAD`) it asks for none."""


class ArtifactGCSFileSystem(ObjectStoreFileSystem, GCSFileSystem):
    """gcsfs with MLflow's chunk sizes and timeout, and a configurable number of attempts.

    Reads use the download chunk as their block size, writes the upload chunk, so a large write is
    a resumable upload sent chunk by chunk and a failed one leaves no object. Errors leaving the
    ``translated_methods`` are builtin OSErrors (gcsfs's ``HttpError``, aiohttp's connection errors
    and its plain ``OSError("Forbidden")`` pass through :func:`artifact_fs.errors.translate`).
    """

    presigner_class = GCSPresigner
    translated_methods = (
        "_info", "_ls", "_cat_file", "_pipe_file", "_put_file", "_get_file", "_rm_file", "_rm", "_cp_file",
    )  # fmt: skip

    def __init__(
        self,
        *,
        upload_chunk_size: int | None = None,
        download_chunk_size: int | None = None,
        download_part_size: int | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        transfer_timeout: float | None = DEFAULT_TRANSFER_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        **kwargs: Any,
    ) -> None:
        _check_chunk_size("upload_chunk_size", upload_chunk_size)
        _check_chunk_size("download_chunk_size", download_chunk_size)
        if retries < 1:
            raise ValueError(f"retries must be at least 1 (one attempt), got {retries}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency={max_concurrency!r} must be at least 1")
        connect = connect_timeout if transfer_timeout is None else min(connect_timeout, transfer_timeout)
        kwargs.setdefault(
            "requests_timeout",
            aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=transfer_timeout),
        )
        super().__init__(**kwargs)
        self.upload_chunk_size = upload_chunk_size
        self.download_chunk_size = download_chunk_size
        if download_part_size is None:  # built directly, not through options(): no environment
            download_part_size = download_chunk_size or DOWNLOAD_PART_SIZE
        self.download_part_size = download_part_size
        self.max_concurrency = max_concurrency
        self.transfer_timeout = transfer_timeout
        self.retries = retries

    async def _set_session(self) -> Any:
        """gcsfs's session, its connections made by :class:`~artifact_fs.policy.StallBoundedSockets`
        (an upload body the store stops reading fails after the transfer timeout), unless
        ``session_kwargs`` bring a connector or gcsfs makes one for a client certificate."""
        factory = stall_bounded_sockets(self.transfer_timeout)
        kwargs: dict[str, Any] = self.__dict__.get("session_kwargs") or {}
        certificate = getattr(self, "_use_client_cert", False)
        if self._session is not None or factory is None or "connector" in kwargs or certificate:
            return await super()._set_session()
        self.session_kwargs = {**kwargs, "connector": aiohttp.TCPConnector(socket_factory=factory)}
        try:
            return await super()._set_session()
        finally:
            self.session_kwargs = kwargs

    # gcsfs fixes its attempt count when the class is defined; apply ours with its own retry helper.
    async def _request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        attempt = retry_request(retries=self.retries)(GCSFileSystem._request.__wrapped__)  # type: ignore[attr-defined]
        return await attempt(self, method, path, *args, **kwargs)

    async def _get_file_request(self, *args: Any, **kwargs: Any) -> Any:
        attempt = retry_request(retries=self.retries)(GCSFileSystem._get_file_request.__wrapped__)  # type: ignore[attr-defined]
        return await attempt(self, *args, **kwargs)

    async def _pipe_file(
        self, path: str, data: Any, *args: Any, digest: integrity.Record | None = None, **kwargs: Any
    ) -> Any:
        """``digest``: the bytes' record, carried in the object's custom metadata (as ``_put_file``'s)."""
        if self.upload_chunk_size and "chunksize" not in kwargs:
            kwargs["chunksize"] = self.upload_chunk_size
        if digest is not None:
            kwargs["metadata"] = {**(kwargs.get("metadata") or {}), DIGESTS.metadata_key: digest.header()}
        return await super()._pipe_file(path, data, *args, **kwargs)

    async def _put_file(
        self, lpath: str, rpath: str, *args: Any, digest: integrity.Record | None = None, **kwargs: Any
    ) -> Any:
        """``digest``: the file's record, carried in the object's custom metadata (same upload request)."""
        if self.upload_chunk_size:
            kwargs.setdefault("chunksize", self.upload_chunk_size)
        if digest is not None:
            kwargs["metadata"] = {**(kwargs.get("metadata") or {}), DIGESTS.metadata_key: digest.header()}
        return await super()._put_file(lpath, rpath, *args, **kwargs)

    async def _get_file(
        self,
        rpath: str,
        lpath: str,
        callback: Any = None,
        digest_sink: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Concurrent ranged GETs into a preallocated ``lpath`` (:mod:`.gcs_download`), no metadata
        asked first; ``digest_sink["digest"]`` gets the record the object carries, if any, and
        ``digest_sink["received"]`` the CRC-32C of the bytes received."""
        received = integrity.ReceivedCrc32c() if digest_sink is not None else None
        with discarding(lpath):
            get_object = gcs_download.object_getter(self, rpath)
            first = await ranged_download.get_file(
                self, get_object, lpath, callback or DEFAULT_CALLBACK, received=received
            )
        if digest_sink is not None:
            digest_sink["digest"] = gcs_download.carried_metadata(first, DIGESTS.metadata_key)
            if first is not None and received is not None:  # not a local directory left as it was
                digest_sink["received"] = received.digest()

    def version_getter(self, path: str, info: Mapping[str, Any]) -> tuple[GetObject, str] | None:
        """A media GET of ``path`` (:mod:`.gcs_download`) pinned to the generation ``info`` names."""
        generation = info.get("generation")
        return (gcs_download.object_getter(self, path), str(generation)) if generation else None

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any) -> GCSFile:
        if block_size is None:
            chunk = self.download_chunk_size if "r" in mode else self.upload_chunk_size
            block_size = chunk or self.default_block_size
        const = kwargs.pop("consistency", None) or self.consistency
        kwargs.setdefault("cache_type", read_cache.NAME)
        latest = not (kwargs.get("generation") or self.split_path(path)[2] or "size" in kwargs)
        if mode == "rb" and latest:
            kwargs["details"] = self.recent_info(path)
        return ArtifactGCSFile(self, path, mode, block_size, consistency=const, **kwargs)

    async def _info(self, path: str, *args: Any, **kwargs: Any) -> Any:
        """gcsfs's ``info``, with an object asked for alone first. gcsfs asks for the object and
        lists its prefix at once, three requests for every file; here a file is one metadata GET,
        and only a missing object or a directory marker goes on to gcsfs's own (its listing)."""
        stripped = self._strip_protocol(path).rstrip("/")
        _, key, generation = self.split_path(stripped)
        cached = self._ls_from_cache(self._parent(stripped)) or self._ls_from_cache(stripped)
        if key and not generation and not args and not kwargs.get("generation") and not cached:
            try:
                found: dict[str, Any] = await self._get_object(stripped)
            except FileNotFoundError:
                found = {}
            if found and not (found.get("size") == 0 and found["name"].endswith("/")):
                self.remember_info(found)
                return found
        return await super()._info(path, *args, **kwargs)


__all__ = [
    "CAPABILITIES",
    "ArtifactGCSFile",
    "ArtifactGCSFileSystem",
    "GCSOptions",
    "abort_multipart_upload",
    "complete_multipart_upload",
    "create_multipart_upload",
    "filesystem",
    "fs_path",
    "options",
    "presigned_download_url",
]
