"""Azure Blob Storage (``wasbs://``) and ADLS Gen2 (``abfss://``) over adlfs.

Both schemes go through adlfs's blob-endpoint filesystem: an ADLS Gen2 account answers the Blob API
too (multi-protocol access), and a blob endpoint is what emulators such as Azurite provide.

Credentials follow MLflow's order (``AzureBlobArtifactRepository`` / ``AzureDataLakeArtifactRepository``):

* ``wasbs``: ``AZURE_STORAGE_CONNECTION_STRING``, then ``AZURE_STORAGE_ACCESS_KEY``, then
  ``DefaultAzureCredential``;
* ``abfss``: ``AZURE_STORAGE_SAS_TOKEN``, then ``DefaultAzureCredential``. As an extension, the
  connection string and access key are honoured for ``abfss`` too (after the SAS token), so one
  environment serves both schemes.

Explicit options (``connection_string``, ``account_key``, ``sas_token``, ``credential``,
``anon``) win over the environment. ``account_url`` points the client at another blob endpoint
(an emulator, a private endpoint) while the artifact URI keeps naming the real account.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import errno
import posixpath
import urllib.parse
from collections.abc import Mapping
from typing import Any, TypedDict

from adlfs import AzureBlobFile, AzureBlobFileSystem
from adlfs.spec import _USER_AGENT
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobBlock, BlobSasPermissions, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient
from fsspec.asyn import AsyncFileSystem, sync, sync_wrapper

from artifact_fs import settings
from artifact_fs.backends.buffered import DiscardOnError
from artifact_fs.backends.ranges import cat_slice
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import MultipartUnsupportedError, translate_errors, translating
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    empty_directories=False,
    atomic_write=True,
    exclusive_create=True,
    server_side_copy=True,
    range_read=True,
    multipart_upload=True,
    presign=True,
)

DEFAULT_TRANSFER_TIMEOUT = 600
"""MLflow's Azure default for ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` (seconds)."""
DEFAULT_MAX_CONCURRENCY = 4
"""Blocks in flight per file upload or download."""
DEFAULT_CONNECTION_TIMEOUT = 20
# The storage SDK's own retry defaults (15 s initial back-off, base 3) take about a minute to report
# an unreachable endpoint; these keep three retries for throttling but fail within about 15 s.
DEFAULT_RETRY = {"retry_total": 3, "initial_backoff": 1, "increment_base": 2, "random_jitter_range": 1}
MULTIPART_URL_EXPIRY = datetime.timedelta(hours=1)
_BLOCK_ID_PREFIX = "mlflow_block_"


class AzureOptions(TypedDict, total=False):
    """Storage options of :class:`ArtifactAzureBlobFileSystem` (adlfs's plus the SDK client's)."""

    account_name: str
    account_url: str
    """Blob endpoint to talk to instead of ``https://<account>.blob.<suffix>`` (emulators)."""
    connection_string: str
    account_key: str
    sas_token: str
    credential: Any
    anon: bool
    timeout: int | None
    """Server-side and socket-read timeout of each transfer (seconds); None for the SDK default."""
    connection_timeout: int
    max_concurrency: int
    blocksize: int
    """Buffer size of files opened for writing (one staged block each)."""
    max_block_size: int
    """Block size of ``put_file`` / ``pipe_file`` uploads (SDK default 4 MiB)."""
    max_single_put_size: int
    """Uploads up to this size are one request (SDK default 64 MiB); larger ones are staged blocks."""
    retry_total: int
    initial_backoff: float
    increment_base: float
    random_jitter_range: float
    connection_verify: bool | str
    """TLS verification; from ``MLFLOW_TRACKING_SERVER_CERT_PATH`` / ``..._INSECURE_TLS`` as MLflow."""
    account_host: str
    """``<account>.blob.<cloud suffix>``: the host of the ``wasbs://`` URLs ``unstrip_protocol`` gives."""


_CREDENTIAL_OPTIONS = ("connection_string", "account_key", "sas_token", "credential")
_SDK_CLIENT_OPTIONS = (
    "max_block_size",
    "max_single_put_size",
    "retry_total",
    "initial_backoff",
    "increment_base",
    "random_jitter_range",
    "connection_verify",
)


def _blob_host(uri: ArtifactURI) -> str:
    """The blob endpoint host of the URI's account (``abfss`` names the ``dfs`` endpoint)."""
    host = uri.host or ""
    account, _, suffix = host.partition(".")
    if uri.scheme == "abfss" and suffix.startswith("dfs."):
        suffix = "blob." + suffix[len("dfs.") :]
    return f"{account}.{suffix}"


def _require_azure_identity() -> None:
    try:
        import azure.identity.aio  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "No Azure credential was found (AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY"
            " or AZURE_STORAGE_SAS_TOKEN), and DefaultAzureCredential needs the package "
            "'azure-identity'; run: pip install 'artifact-fs[azure]'"
        ) from exc


def options(uri: ArtifactURI, environ: Mapping[str, str], **overrides: Any) -> AzureOptions:
    """MLflow's Azure variables as adlfs options; explicit ``overrides`` win."""
    timeout = settings.transfer_timeout(DEFAULT_TRANSFER_TIMEOUT, environ)
    result: AzureOptions = {
        "account_name": uri.account or "",
        "account_host": _blob_host(uri),
        "timeout": None if timeout is None else int(timeout),
        "connection_timeout": DEFAULT_CONNECTION_TIMEOUT,
        "max_concurrency": DEFAULT_MAX_CONCURRENCY,
        "connection_verify": settings.http_tls_verify(environ),
        **DEFAULT_RETRY,  # type: ignore[typeddict-item]
    }
    explicit = {"connection_string", "account_key", "sas_token", "credential", "anon"} & set(overrides)
    if not explicit:
        connection_string = settings.AZURE_STORAGE_CONNECTION_STRING.get(environ)
        access_key = settings.AZURE_STORAGE_ACCESS_KEY.get(environ)
        sas_token = settings.AZURE_STORAGE_SAS_TOKEN.get(environ)
        if uri.scheme == "abfss" and sas_token:
            result["sas_token"] = sas_token
        elif connection_string:
            result["connection_string"] = connection_string
        elif access_key:
            result["account_key"] = access_key
    result.update(overrides)  # type: ignore[typeddict-item]
    if "account_url" not in result and "connection_string" not in result:
        result["account_url"] = f"https://{_blob_host(uri)}"
    return result


def filesystem(options: AzureOptions) -> ArtifactAzureBlobFileSystem:
    """An adlfs filesystem; DefaultAzureCredential only when no other credential was given."""
    options = dict(options)  # type: ignore[assignment]
    has_credential = any(
        options.get(name) for name in ("connection_string", "account_key", "sas_token", "credential")
    )
    if not has_credential and not options.get("anon"):
        _require_azure_identity()
        from azure.identity.aio import DefaultAzureCredential

        options["credential"] = DefaultAzureCredential()
    return ArtifactAzureBlobFileSystem(**options)


def fs_path(uri: ArtifactURI, options: AzureOptions) -> str:
    """``<container>/<key>``: adlfs's path form. ADLS paths are percent-decoded, as MLflow does."""
    key = uri.key
    if uri.scheme == "abfss":
        key = urllib.parse.unquote(key)
    return f"{uri.bucket}/{key}".rstrip("/")


class ArtifactAzureBlobFile(DiscardOnError, AzureBlobFile):
    """A blob file that commits nothing when its ``with`` block fails (staged, uncommitted blocks are
    invisible and Azure drops them)."""


class ArtifactAzureBlobFileSystem(AzureBlobFileSystem):
    """adlfs with an explicit blob endpoint, SDK block sizes, retries and TLS settings.

    adlfs builds its service client from a few fixed arguments; this builds it with the SDK's own
    configuration keywords (``max_block_size``, ``retry_total``, ``connection_verify`` ...) so uploads
    use bounded, sized blocks and a dead endpoint fails quickly.
    """

    # ``wasbs`` first: the form ``unstrip_protocol`` gives and ``_strip_protocol`` must take back.
    protocol = ("wasbs", "abfss", "abfs", "az")

    def __init__(self, *, account_url: str | None = None, **kwargs: Any) -> None:
        self._client_options = {name: kwargs.pop(name) for name in _SDK_CLIENT_OPTIONS if name in kwargs}
        # adlfs fills missing credentials from its own environment variables; only the ones chosen
        # by ``options`` (MLflow's order) may be used.
        self._chosen = {name: kwargs.get(name) for name in _CREDENTIAL_OPTIONS}
        self._endpoint = account_url.rstrip("/") if account_url else None
        self._account_host = kwargs.pop("account_host", None)
        if kwargs.get("timeout") is not None:
            kwargs.setdefault("read_timeout", kwargs["timeout"])
        super().__init__(**kwargs)
        # adlfs's own endpoint attribute, used by a few of its code paths.
        if self._endpoint:
            self.account_url = self._endpoint

    def do_connect(self) -> None:
        client_options: dict[str, Any] = {"user_agent": _USER_AGENT, **self._client_options}
        for name in ("connection_timeout", "read_timeout"):
            if name in self._timeout_kwargs:
                client_options[name] = self._timeout_kwargs[name]
        try:
            chosen = self._chosen
            if chosen["connection_string"]:
                self.service_client = BlobServiceClient.from_connection_string(
                    chosen["connection_string"], **client_options
                )
                return
            url = self._endpoint or f"https://{self.account_name}.blob.core.windows.net"
            credential: Any = chosen["credential"]
            if credential is None and chosen["account_key"]:
                credential = {"account_name": self.account_name, "account_key": chosen["account_key"]}
            if credential is None and chosen["sas_token"]:
                credential = chosen["sas_token"].lstrip("?")
            self.service_client = BlobServiceClient(url, credential=credential, **client_options)
        except ValueError as exc:
            raise ValueError(f"invalid Azure storage configuration: {exc}") from exc

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> AzureBlobFile:
        if not self.version_aware and kwargs.get("version_id"):
            raise ValueError("version_id cannot be given unless the filesystem is version aware")
        kwargs.setdefault("cache_type", "readahead")
        if "x" in mode and self.exists(path):
            # Fail at open, as fsspec expects; the commit's If-None-Match still guards the race.
            raise FileExistsError(errno.EEXIST, "artifact already exists", path)
        return ArtifactAzureBlobFile(
            fs=self, path=path, mode=mode, block_size=block_size or self.blocksize, **kwargs
        )

    def unstrip_protocol(self, name: str) -> str:
        """A ``wasbs://`` URL that :func:`artifact_fs.url_to_fs` resolves back to this path.

        adlfs answers ``abfs://<container>/<key>``, which names no account and which MLflow does
        not accept. ``wasbs`` is used for both schemes: ``abfss`` paths are percent-decoded on the
        way in, so an ``abfss`` URL of an already-decoded key would not round-trip.
        """
        container, _, key = self._strip_protocol(name).partition("/")
        host = self._account_host or f"{self.account_name}.blob.core.windows.net"
        return f"wasbs://{container}@{host}/{key}"

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget ``path`` and every listing above it, under both of adlfs's key forms.

        adlfs drops only the exact key, so a write under ``d/`` could leave ``d``'s listing stale.
        """
        if path is None:
            super().invalidate_cache()
            return
        current = self._strip_protocol(path).rstrip("/")
        while current:
            for key in (current, current + "/"):
                self.dircache.pop(key, None)
            parent = self._parent(current).rstrip("/")
            current = "" if parent == current else parent
        super().invalidate_cache(self._strip_protocol(path))

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Python-slicing ranges (the Blob API answers 416 or omits Content-Range otherwise)."""

        async def fetch(first: int | None, stop: int | None) -> Any:
            return await AzureBlobFileSystem._cat_file(self, path, start=first, end=stop, **kwargs)

        def is_416(exc: Exception) -> bool:
            return isinstance(exc, HttpResponseError) and getattr(exc, "error_code", None) == "InvalidRange"

        return await cat_slice(self, path, start, end, fetch=fetch, is_416=is_416)

    # adlfs invalidates its listings under the container-less blob name after a write, leaving the
    # real entry stale; these drop the full path's (and its parents') listings.
    async def _pipe_file(self, path: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._pipe_file(path, *args, **kwargs)
        finally:
            self.invalidate_cache(path)

    async def _put_file(self, lpath: str, rpath: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._put_file(lpath, rpath, *args, **kwargs)
        finally:
            self.invalidate_cache(rpath)

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        try:
            await super()._rm_file(path, **kwargs)
        finally:
            self.invalidate_cache(path)

    async def _rm(self, path: str | list[str], recursive: bool = False, **kwargs: Any) -> None:
        """adlfs's delete, except a missing path is ``FileNotFoundError`` (adlfs ignores it)."""
        for name in [path] if isinstance(path, str) else path:
            if not await self._exists(name):
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", name)
        await super()._rm(path, recursive=recursive, **kwargs)

    async def _find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """adlfs's find with ``maxdepth`` honoured (adlfs ignores it; depth-limited copies went deep)."""
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        names = await super()._find(path, withdirs=withdirs, **kwargs)
        if maxdepth is not None:
            depth = self._strip_protocol(path).strip("/").count("/")
            names = [name for name in names if name.count("/") - depth <= maxdepth]
        if not detail:
            return names
        infos = await asyncio.gather(*(self._info(name) for name in names))
        return dict(zip(names, infos, strict=True))

    # adlfs's own expansion drops glob results and answers ``[]`` for literal directories; fsspec's
    # generic one (find + glob + exists) gives the paths fsspec's copy, get and mv expect.
    _expand_path = AsyncFileSystem._expand_path

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy one blob; a virtual directory (no blob of its own) is skipped, its files are copied."""
        try:
            await super()._cp_file(path1, path2, **kwargs)
        except FileNotFoundError:
            if not await self._isdir(path1):
                raise
        finally:
            self.invalidate_cache(path2)


# Errors leaving these methods are builtin OSErrors (azure.core's pass through errors.translate).
_TRANSLATED_METHODS = (
    "_info", "_ls", "_cat_file", "_pipe_file", "_put_file", "_get_file", "_rm_file", "_rm", "_cp_file",
    "_mkdir", "_find",
)  # fmt: skip
for _name in _TRANSLATED_METHODS:
    _translated = translate_errors(getattr(ArtifactAzureBlobFileSystem, _name))
    setattr(ArtifactAzureBlobFileSystem, _name, _translated)
    if _name[1:] in vars(AzureBlobFileSystem):  # adlfs bound the sync twin to its own coroutine
        setattr(ArtifactAzureBlobFileSystem, _name[1:], sync_wrapper(_translated))


# -- presigned multipart upload and download (the artifact server calls these generically) -------
def _split(fs: AzureBlobFileSystem, path: str) -> tuple[str, str]:
    container, blob, _ = fs.split_path(path)
    if not blob:
        raise ValueError(f"{path!r} names a container, not a blob")
    return container, blob


def _sas(
    fs: AzureBlobFileSystem,
    container: str,
    blob: str,
    permission: BlobSasPermissions,
    expiry: datetime.datetime,
) -> str:
    """A blob SAS signed with the account key, or with a user delegation key for token credentials."""
    client = fs.service_client
    credential = client.credential
    account_name = client.account_name
    account_key = getattr(credential, "account_key", None)
    if account_key:
        return generate_blob_sas(
            account_name, container, blob, account_key=account_key, permission=permission, expiry=expiry
        )
    if hasattr(credential, "get_token"):
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
        try:
            with translating(f"{container}/{blob}"):
                key = sync(fs.loop, client.get_user_delegation_key, start, expiry)
        except PermissionError as exc:
            raise MultipartUnsupportedError(
                "the Azure credential may not create user delegation keys, so no SAS can be signed "
                f"({exc}); use an account key or grant 'Storage Blob Delegator'"
            ) from exc
        return generate_blob_sas(
            account_name, container, blob, user_delegation_key=key, permission=permission, expiry=expiry
        )
    raise MultipartUnsupportedError(
        "presigned Azure URLs need an account key or a token credential; a SAS token or anonymous "
        "access cannot sign new URLs"
    )


def _block_id(part_number: int) -> str:
    return base64.b64encode(f"{_BLOCK_ID_PREFIX}{part_number:05d}".encode()).decode()


def create_multipart_upload(
    fs: AzureBlobFileSystem, path: str, num_parts: int, environ: Mapping[str, str]
) -> dict[str, Any]:
    """One presigned Put Block URL per part (MLflow's scheme: block ids ``mlflow_block_NNNNN``)."""
    if num_parts < 1:
        raise ValueError(f"num_parts must be at least 1, got {num_parts}")
    container, blob = _split(fs, path)
    expiry = datetime.datetime.now(datetime.UTC) + MULTIPART_URL_EXPIRY
    sas = _sas(fs, container, blob, BlobSasPermissions(read=True, write=True), expiry)
    blob_url = fs.service_client.get_blob_client(container, blob).url.split("?", 1)[0]
    credentials = []
    for part_number in range(1, num_parts + 1):
        block_id = urllib.parse.quote(_block_id(part_number), safe="")
        url = f"{blob_url}?comp=block&blockid={block_id}&{sas}"
        credentials.append({"url": url, "part_number": part_number, "headers": {}})
    return {"upload_id": None, "credentials": credentials}


def complete_multipart_upload(
    fs: AzureBlobFileSystem,
    path: str,
    upload_id: str | None,
    parts: list[dict[str, Any]],
    environ: Mapping[str, str],
) -> None:
    """Commit the staged blocks in part order; the block ids come back in each part's URL."""
    container, blob = _split(fs, path)
    ordered = sorted(parts, key=lambda part: int(part["part_number"]))
    block_ids = []
    for part in ordered:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(part["url"]).query)
        if "blockid" not in query:
            raise ValueError(f"part {part['part_number']} has no blockid in its URL")
        # The SDK base64-encodes block ids itself, so it is given the id as staged before encoding.
        block_ids.append(base64.b64decode(query["blockid"][0]).decode())

    async def commit() -> None:
        blob_client = fs.service_client.get_blob_client(container, blob)
        await blob_client.commit_block_list([BlobBlock(block_id) for block_id in block_ids])

    with translating(path):
        sync(fs.loop, commit)
    fs.invalidate_cache(posixpath.dirname(path))


def abort_multipart_upload(
    fs: AzureBlobFileSystem, path: str, upload_id: str | None, environ: Mapping[str, str]
) -> None:
    """Nothing to do: uncommitted blocks are never visible and Azure discards them within 7 days."""


def presigned_download_url(
    fs: AzureBlobFileSystem, path: str, expiration: int, environ: Mapping[str, str]
) -> dict[str, Any]:
    """A read-only SAS URL valid for ``expiration`` seconds, with the blob's size."""
    container, blob = _split(fs, path)
    with translating(path):
        size = fs.info(path)["size"]
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expiration)
    sas = _sas(fs, container, blob, BlobSasPermissions(read=True), expiry)
    blob_url = fs.service_client.get_blob_client(container, blob).url.split("?", 1)[0]
    return {"url": f"{blob_url}?{sas}", "headers": {}, "file_size": size}
