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

import datetime
import errno
import os
import posixpath
import re
import secrets
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import aiohttp
from gcsfs.core import GCSFile, GCSFileSystem
from gcsfs.core import _location as _gcs_location
from gcsfs.retry import HttpError, retry_request

from artifact_fs import settings
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.backends.presigning import attachment_disposition
from artifact_fs.backends.ranges import cat_slice
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import MultipartUnsupportedError, translate_errors, translating
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    empty_directories=False,
    atomic_write=True,
    exclusive_create=False,
    server_side_copy=True,
    range_read=True,
    multipart_upload=False,
    presign=True,
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


# -- presigned multipart upload and download (the artifact server calls these generically) -------
# GCS's XML multipart API is not offered by its emulators, so uploads follow gcloud's parallel
# composite uploads instead: every part is a temporary object written through its own V4-signed PUT
# URL, and completing composes the parts (in part-number order, at most 32 sources per compose
# call) into the destination and deletes them. Nothing is remembered between calls: the part names
# derive from the destination's directory, the random upload id and the part numbers, and their
# reserved prefix keeps them out of the artifact server's listings.
MULTIPART_URL_EXPIRY = datetime.timedelta(hours=1)
"""How long each part's PUT URL is valid (S3's presigned ``upload_part`` URLs last as long)."""
MAX_PARTS = 10_000
COMPOSE_LIMIT = 32
"""Most source objects one compose request may name (GCS's limit)."""
PART_PREFIX = ".artifact.uploading."
"""The artifact server's reserved name prefix: such objects never appear in artifact listings."""
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def _bucket_key(fs: GCSFileSystem, path: str) -> tuple[str, str]:
    bucket, key, _ = fs.split_path(path)
    if not key:
        raise ValueError(f"{path!r} names a bucket, not an object")
    return bucket, key


def _check_upload_id(upload_id: str | None) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
        raise ValueError(
            f"invalid GCS upload_id {upload_id!r}: expected the 32 hex digits returned when the upload "
            "was created"
        )
    return upload_id


def _scratch_prefix(path: str, upload_id: str) -> str:
    """``<dir>/.artifact.uploading.<upload_id>.``: every temporary object of one upload starts so."""
    return f"{posixpath.dirname(path)}/{PART_PREFIX}{upload_id}."


def _part_path(path: str, upload_id: str, part_number: int) -> str:
    return f"{_scratch_prefix(path, upload_id)}part-{part_number:05d}"


def _signing_arguments(fs: GCSFileSystem) -> dict[str, Any]:
    """How to sign V4 URLs with the filesystem's credentials: a private key, or IAM signBlob."""
    from google.auth.credentials import Signing

    credentials = getattr(fs.credentials, "credentials", None)
    if credentials is None:
        raise MultipartUnsupportedError(
            "anonymous GCS access cannot sign URLs; presigned uploads and downloads need service-account "
            "credentials (a key file in GOOGLE_APPLICATION_CREDENTIALS, or a service account that may "
            "call IAM signBlob)"
        )
    if isinstance(credentials, Signing):
        return {"credentials": credentials}
    email = getattr(credentials, "service_account_email", None)
    if email:
        with translating("credentials"):
            fs.credentials.maybe_refresh()  # a current access token, and the real e-mail on GCE
        email = getattr(credentials, "service_account_email", email)
        if email and email != "default" and credentials.token:
            return {
                "credentials": credentials,
                "service_account_email": email,
                "access_token": credentials.token,
            }
    raise MultipartUnsupportedError(
        f"GCS credentials of type {type(credentials).__name__} cannot sign URLs; presigned uploads and "
        "downloads need a service-account key or a service account that may call IAM signBlob"
    )


def _signer(fs: GCSFileSystem) -> Callable[..., str]:
    """``sign(path, method, expiration, **options)`` for V4 URLs on the filesystem's endpoint; the
    credentials are checked (and a client made) once, however many URLs follow."""
    from google.cloud import storage

    arguments = _signing_arguments(fs)
    client = storage.Client(project=fs.project or "artifact-fs", credentials=arguments["credentials"])
    endpoint = getattr(fs, "_endpoint", None) or _gcs_location()  # never the mTLS host: clients have no cert

    def sign(path: str, method: str, expiration: datetime.timedelta, **options: Any) -> str:
        bucket, key = _bucket_key(fs, path)
        blob = client.bucket(bucket).blob(key)
        with translating(path):
            url = blob.generate_signed_url(
                version="v4",
                method=method,
                expiration=expiration,
                api_access_endpoint=endpoint,
                **arguments,
                **options,
            )
        return str(url)

    return sign


def create_multipart_upload(
    fs: GCSFileSystem, path: str, num_parts: int, environ: Mapping[str, str]
) -> dict[str, Any]:
    """A random upload id and one V4-signed PUT URL per part (numbers 1..N), each its own object."""
    if not 1 <= num_parts <= MAX_PARTS:
        raise ValueError(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
    _bucket_key(fs, path)
    upload_id = secrets.token_hex(16)
    sign = _signer(fs)
    credentials = []
    for part_number in range(1, num_parts + 1):
        url = sign(_part_path(path, upload_id, part_number), "PUT", MULTIPART_URL_EXPIRY)
        credentials.append({"url": url, "part_number": part_number, "headers": {}})
    return {"upload_id": upload_id, "credentials": credentials}


def _compose(fs: GCSFileSystem, path: str, sources: list[str], scratch: str) -> None:
    """Compose ``sources`` into ``path``, through intermediate objects when there are more than 32."""
    level = 0
    while len(sources) > COMPOSE_LIMIT:
        composed = []
        for index in range(0, len(sources), COMPOSE_LIMIT):
            group = sources[index : index + COMPOSE_LIMIT]
            if len(group) == 1:
                composed.append(group[0])
                continue
            intermediate = f"{scratch}compose-{level}-{index // COMPOSE_LIMIT:05d}"
            fs.merge(intermediate, group)
            composed.append(intermediate)
        sources = composed
        level += 1
    fs.merge(path, sources)


def _scratch_objects(fs: GCSFileSystem, path: str, upload_id: str) -> list[str]:
    """The temporary objects of one upload that exist now (one listing, by name prefix)."""
    scratch = _scratch_prefix(path, upload_id)
    directory, prefix = scratch.rsplit("/", 1)
    fs.invalidate_cache(directory)
    with translating(path):
        found = fs.find(directory, prefix=prefix, maxdepth=1)
    return [name for name in found if name.startswith(scratch)]


def _remove_scratch(fs: GCSFileSystem, path: str, upload_id: str) -> None:
    leftovers = _scratch_objects(fs, path, upload_id)
    if leftovers:
        with translating(path):
            fs.rm(leftovers)
    fs.invalidate_cache(posixpath.dirname(path))


def complete_multipart_upload(
    fs: GCSFileSystem,
    path: str,
    upload_id: str | None,
    parts: list[dict[str, Any]],
    environ: Mapping[str, str],
) -> None:
    """Compose the uploaded part objects in part-number order into ``path``, then delete them."""
    upload_id = _check_upload_id(upload_id)
    _bucket_key(fs, path)
    numbers = sorted(int(part["part_number"]) for part in parts)
    if not numbers:
        raise ValueError("a multipart upload needs at least one part")
    if len(set(numbers)) != len(numbers) or not 1 <= numbers[0] <= numbers[-1] <= MAX_PARTS:
        raise ValueError(f"part numbers must be distinct and between 1 and {MAX_PARTS}, got {numbers}")
    sources = [_part_path(path, upload_id, number) for number in numbers]
    missing = sorted(set(sources) - set(_scratch_objects(fs, path, upload_id)))
    if missing:
        numbers_missing = [int(name.rsplit("-", 1)[1]) for name in missing]
        raise FileNotFoundError(
            errno.ENOENT, f"multipart upload {upload_id} has no uploaded part(s) {numbers_missing}", path
        )
    with translating(path):
        _compose(fs, path, sources, _scratch_prefix(path, upload_id))
    _remove_scratch(fs, path, upload_id)
    fs.invalidate_cache(path)


def abort_multipart_upload(
    fs: GCSFileSystem, path: str, upload_id: str | None, environ: Mapping[str, str]
) -> None:
    """Delete whatever part objects of the upload exist (none is fine)."""
    _remove_scratch(fs, path, _check_upload_id(upload_id))


def presigned_download_url(
    fs: GCSFileSystem, path: str, expiration: int, environ: Mapping[str, str]
) -> dict[str, Any]:
    """A V4-signed GET (as an attachment) valid for ``expiration`` seconds, with the object's size."""
    _bucket_key(fs, path)
    sign = _signer(fs)  # before any request: credentials that cannot sign fail fast
    with translating(path):
        size = int(fs.info(path)["size"])
    url = sign(
        path,
        "GET",
        datetime.timedelta(seconds=expiration),
        response_disposition=attachment_disposition(posixpath.basename(path)),
    )
    return {"url": url, "headers": {}, "file_size": size}
