"""S3 and S3-compatible stores (``s3://bucket/key``) over s3fs, configured the way MLflow configures boto3.

MLflow's ``S3ArtifactRepository`` builds one boto3 client from the environment; this module turns the
same variables into s3fs options (reference §1.1, §2.4):

* ``MLFLOW_S3_ENDPOINT_URL`` -> ``endpoint_url`` (an address only: a path or an ``s3://`` value is
  refused, as is an artifact root that repeats the endpoint or the bucket);
* ``MLFLOW_S3_IGNORE_TLS`` -> ``verify=False``; ``AWS_CA_BUNDLE`` -> ``verify=<bundle>`` (never both);
* ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` -> applied to every upload (single PUT and multipart create),
  over the Content-Type / Content-Encoding guessed from the file name; its SSE-C and RequestPayer
  arguments also go to reads, as MLflow's downloads do;
* ``MLFLOW_S3_EXPECTED_BUCKET_OWNER`` -> ``ExpectedBucketOwner`` on every call that accepts it;
* ``MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE`` and ``MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION``
  (``unsigned`` -> anonymous requests);
* ``AWS_DEFAULT_REGION`` -> the client's region through botocore's ``Config`` (never s3fs's
  ``client_kwargs``, which would also send a ``LocationConstraint`` that us-east-1 refuses);
* credentials: explicit ``key`` / ``secret`` / ``token`` / ``profile`` options, else botocore's own
  chain (environment keys, ``AWS_PROFILE`` and ``~/.aws/credentials``, session tokens, roles);
* ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` -> the read timeout (MLflow ignores it for S3; we
  honour it); ``MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE`` -> the part size of multipart uploads.

Explicit keyword arguments win over the environment. Multipart uploads use equal-size parts (so
Cloudflare R2 and similar stores accept them), at most ``max_concurrency`` in flight, and a failed
multipart upload is aborted so no part is left pending. Errors leave as builtin ``OSError``
subclasses through :mod:`artifact_fs.errors`; a rejected signature or unknown key says where the
credentials came from.
"""

from __future__ import annotations

import errno
import hashlib
import mimetypes
import os
import posixpath
import urllib.parse
from collections.abc import Mapping
from typing import Any, TypedDict

from fsspec.asyn import sync, sync_wrapper
from s3fs import S3File, S3FileSystem

from artifact_fs import errors, qualify, settings
from artifact_fs.backends.presigning import attachment_disposition
from artifact_fs.capabilities import Capabilities
from artifact_fs.errors import MultipartUnsupportedError
from artifact_fs.uris import ArtifactURI

CAPABILITIES = Capabilities(
    empty_directories=False,
    atomic_write=True,
    exclusive_create=False,
    server_side_copy=True,
    range_read=True,
    multipart_upload=True,
    presign=True,
    write_parts_min_size=settings.S3_MIN_PART,
)

DEFAULT_MAX_CONCURRENCY = 8
"""Parts (or ranged reads) in flight per file: bounded so memory stays ``8 x part size``."""
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 60
"""botocore's default, which is what MLflow's S3 client gets."""
DEFAULT_MAX_ATTEMPTS = 3
"""botocore ``standard`` retry mode: throttling (SlowDown, 503) and transient errors back off."""
DEFAULT_READ_BLOCK_SIZE = 512 * settings.KIB
"""Read-ahead of files opened for reading; small so columnar readers fetch little beyond their ranges."""
MULTIPART_URL_EXPIRY = 3600
"""boto's default expiry, which MLflow's presigned ``upload_part`` URLs use."""

# MLflow (s3_artifact_repo._download_file) passes only these upload extra args to downloads.
_READ_EXTRA_ARGS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5", "RequestPayer")
_UPLOAD_METHODS = frozenset({"put_object", "create_multipart_upload"})
# HTTP header equivalents that a presigned request must carry (MLflow's _S3_PARAM_TO_HEADER).
_PARAM_TO_HEADER = {
    "ExpectedBucketOwner": "x-amz-expected-bucket-owner",
    "RequestPayer": "x-amz-request-payer",
    "SSECustomerAlgorithm": "x-amz-server-side-encryption-customer-algorithm",
    "SSECustomerKey": "x-amz-server-side-encryption-customer-key",
    "SSECustomerKeyMD5": "x-amz-server-side-encryption-customer-key-md5",
}
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"})
_CREDENTIAL_METHODS = {
    "env": "the environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    "shared-credentials-file": "the shared credentials file (~/.aws/credentials)",
    "config-file": "the AWS config file (~/.aws/config)",
    "assume-role": "an assumed role from the AWS config",
    "sso": "AWS IAM Identity Center (SSO)",
    "iam-role": "the instance metadata service (IAM role)",
    "container-role": "the container credentials endpoint",
    "assume-role-with-web-identity": "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
    "custom-process": "a credential_process from the AWS config",
}


class S3Options(TypedDict, total=False):
    """Storage options of :class:`ArtifactS3FileSystem`: s3fs's own plus MLflow's settings."""

    endpoint_url: str | None
    key: str
    secret: str
    token: str
    profile: str
    """A profile in ``~/.aws/credentials`` / ``~/.aws/config`` (else ``AWS_PROFILE``)."""
    credential_environment: str
    """:func:`credential_environment_digest`: keeps fsspec's cache from mixing credential environments."""
    anon: bool
    """Unsigned requests (``MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=unsigned``)."""
    region_name: str | None
    verify: bool | str | None
    """TLS verification: False, a CA bundle path, or None for botocore's default."""
    addressing_style: str
    signature_version: str | None
    upload_extra_args: dict[str, Any]
    """``MLFLOW_S3_UPLOAD_EXTRA_ARGS``: boto3 ExtraArgs for every upload."""
    expected_bucket_owner: str | None
    chunk_size: int
    """Part size of multipart uploads and write buffers (``MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE``)."""
    read_block_size: int
    max_concurrency: int
    connect_timeout: float
    read_timeout: float | None
    max_attempts: int
    client_kwargs: dict[str, Any]
    config_kwargs: dict[str, Any]
    s3_additional_kwargs: dict[str, Any]


def _is_aws(endpoint_url: str | None) -> bool:
    host = (urllib.parse.urlsplit(endpoint_url).hostname or "") if endpoint_url else "amazonaws.com"
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn")) or host == "amazonaws.com"


def options(uri: ArtifactURI, environ: Mapping[str, str], **overrides: Any) -> S3Options:
    """MLflow's S3 variables as :class:`ArtifactS3FileSystem` options; explicit ``overrides`` win."""
    if "endpoint_url" in overrides:
        endpoint = overrides["endpoint_url"]
        if endpoint is not None:
            overrides["endpoint_url"] = qualify.check_endpoint_url("endpoint_url", endpoint)
    else:
        endpoint = settings.MLFLOW_S3_ENDPOINT_URL.get(environ)
        if endpoint is not None:
            endpoint = qualify.check_endpoint_url("MLFLOW_S3_ENDPOINT_URL", endpoint)
    qualify.check_root_not_qualified_twice(uri, overrides.get("endpoint_url", endpoint))

    result: S3Options = {
        "endpoint_url": endpoint,
        "addressing_style": settings.MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE.get(environ),
        "chunk_size": settings.MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE.get(environ),
        "max_concurrency": DEFAULT_MAX_CONCURRENCY,
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        "read_timeout": settings.transfer_timeout(DEFAULT_READ_TIMEOUT, environ),
        "max_attempts": DEFAULT_MAX_ATTEMPTS,
    }
    if "verify" not in overrides:
        verify = settings.s3_tls_verify(environ)
        if verify is not None:
            result["verify"] = verify
    signature = settings.MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION.get(environ)
    if signature.lower() == "unsigned":
        result["anon"] = True
    elif signature != "s3v4":
        result["signature_version"] = signature
    extra_args = settings.MLFLOW_S3_UPLOAD_EXTRA_ARGS.get(environ)
    if extra_args:
        result["upload_extra_args"] = dict(extra_args)
    owner = settings.MLFLOW_S3_EXPECTED_BUCKET_OWNER.get(environ)
    if owner:
        result["expected_bucket_owner"] = owner
    region = settings.AWS_DEFAULT_REGION.get(environ)
    if region:
        result["region_name"] = region
    profile = settings.AWS_PROFILE.get(environ)
    if profile and not {"key", "secret", "token"} & set(overrides):
        result["profile"] = profile
    # botocore reads its credential chain from the process environment, never from ``environ``.
    result["credential_environment"] = credential_environment_digest(os.environ)
    result.update(overrides)  # type: ignore[typeddict-item]
    if "chunk_size" in overrides:
        _check_chunk_size(result["chunk_size"])
    return result


_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def credential_environment_digest(environ: Mapping[str, str]) -> str:
    """A digest of the variables botocore's credential chain reads (never the values themselves).

    It is a storage option only so that fsspec's instance cache tells environments apart: MLflow
    builds a new boto3 client per call, so changed AWS variables take effect at once, and a cached
    filesystem built under other credentials must not be handed out.
    """
    seen = "\0".join(f"{name}={environ.get(name, '')}" for name in _CREDENTIAL_VARIABLES)
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


def _check_chunk_size(value: Any) -> None:
    if not isinstance(value, int) or not settings.S3_MIN_PART <= value <= settings.S3_MAX_PART:
        raise ValueError(
            f"chunk_size={value!r} is not a valid S3 part size: use an integer number of bytes between "
            f"{settings.S3_MIN_PART} (5 MiB) and {settings.S3_MAX_PART} (5 GiB)"
        )


def filesystem(options: S3Options) -> ArtifactS3FileSystem:
    return ArtifactS3FileSystem(**options)


def fs_path(uri: ArtifactURI, options: S3Options) -> str:
    """``<bucket>/<key>``: s3fs's path form (a bucket-root artifact URI is just the bucket)."""
    return f"{uri.bucket}/{uri.key}".rstrip("/")


def guess_content_headers(name: str) -> dict[str, str]:
    """MLflow's ``ContentType`` / ``ContentEncoding`` from the file name (``.tar.gz`` -> tar + gzip)."""
    content_type, encoding = mimetypes.guess_type(name)
    guessed = {}
    if content_type:
        guessed["ContentType"] = content_type
    if encoding:
        guessed["ContentEncoding"] = encoding
    return guessed


class ArtifactS3File(S3File):
    """An S3 file whose failed write leaves nothing behind: no object, no pending multipart upload.

    fsspec's ``__exit__`` closes (and so commits) even when the ``with`` block raised; here the
    upload is discarded and its multipart upload aborted instead. A part or the final commit that
    fails aborts the upload too.
    """

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        if exc_type is not None and self.writable() and not self.closed:  # type: ignore[has-type]
            self._abort_quietly()
            self.buffer = None
            self.closed = True
            return
        self.close()

    def _abort_quietly(self) -> None:
        try:
            self._abort_mpu()
        except Exception:  # noqa: BLE001 - the original error is the one to report
            self.mpu = None

    def _upload_chunk(self, final: bool = False) -> bool:
        try:
            return bool(super()._upload_chunk(final=final))
        except BaseException:
            self._abort_quietly()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        except BaseException:
            self._abort_quietly()
            raise


class ArtifactS3FileSystem(S3FileSystem):
    """s3fs with MLflow's upload arguments, equal-size bounded-concurrency parts and one error table.

    Construct it through :func:`options` (environment + overrides) or directly with the keyword
    arguments of :class:`S3Options`; anything else is passed to :class:`s3fs.S3FileSystem`.
    """

    protocol = ("s3", "s3a")

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        verify: bool | str | None = None,
        addressing_style: str = "auto",
        signature_version: str | None = None,
        upload_extra_args: Mapping[str, Any] | None = None,
        expected_bucket_owner: str | None = None,
        chunk_size: int = 10 * settings.MIB,
        read_block_size: int = DEFAULT_READ_BLOCK_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        client_kwargs: Mapping[str, Any] | None = None,
        config_kwargs: Mapping[str, Any] | None = None,
        s3_additional_kwargs: Mapping[str, Any] | None = None,
        credential_environment: str | None = None,
        **kwargs: Any,
    ) -> None:
        _check_chunk_size(chunk_size)
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency={max_concurrency!r} must be at least 1")
        extra = dict(upload_extra_args or {})
        client = dict(client_kwargs or {})
        if verify is not None:
            client.setdefault("verify", verify)
        config: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "retries": {"max_attempts": max_attempts, "mode": "standard"},
            "s3": {"addressing_style": addressing_style},
        }
        if region_name:
            config["region_name"] = region_name
        if signature_version:
            config["signature_version"] = signature_version
        if not _is_aws(endpoint_url):
            # botocore >= 1.36 sends CRC checksums by default; many S3-compatible stores refuse them.
            config["request_checksum_calculation"] = "when_required"
            config["response_checksum_validation"] = "when_required"
        config.update(config_kwargs or {})
        additional = {name: extra[name] for name in _READ_EXTRA_ARGS if name in extra}
        if expected_bucket_owner:
            additional["ExpectedBucketOwner"] = expected_bucket_owner
        additional.update(s3_additional_kwargs or {})
        super().__init__(
            endpoint_url=endpoint_url,
            client_kwargs=client,
            config_kwargs=config,
            s3_additional_kwargs=additional,
            default_block_size=chunk_size,
            max_concurrency=max_concurrency,
            fixed_upload_size=True,
            **kwargs,
        )
        self.upload_extra_args = extra
        self.expected_bucket_owner = expected_bucket_owner
        self.chunk_size = chunk_size
        self.read_block_size = read_block_size
        # botocore's standard mode already retries throttling and transient errors with back-off;
        # s3fs's own loop on top would multiply the attempts (and the time to report a dead endpoint).
        self.retries = 2

    # -- every S3 call: MLflow's upload arguments in, builtin errors out ------------------------------
    async def _call_s3(self, method: str, *akwarglist: Any, **kwargs: Any) -> Any:
        if method in _UPLOAD_METHODS:
            guessed = guess_content_headers(kwargs.get("Key", ""))
            # Lowest priority first: guessed headers < s3fs / caller arguments < MLflow's extra args
            # < explicit keyword arguments of this call.
            akwarglist = (guessed, *akwarglist, self.upload_extra_args)
        try:
            return await super()._call_s3(method, *akwarglist, **kwargs)
        except Exception as exc:
            translated = await self._translated(exc, kwargs)
            if translated is exc:
                raise
            raise translated from _cause(exc)

    call_s3 = sync_wrapper(_call_s3)

    async def _translated(self, exc: Exception, kwargs: Mapping[str, Any]) -> Exception:
        if isinstance(exc, ValueError | TypeError | NotImplementedError):
            return exc
        cause = _cause(exc)
        path = "/".join(part for part in (kwargs.get("Bucket"), kwargs.get("Key")) if part) or None
        translated = errors.translate(cause, path)
        code = errors._error_code(cause)
        if isinstance(translated, PermissionError):
            # A HEAD answer has no body, so a 403 cannot tell a bad key from a denied action: name
            # the credential source on every permission error.
            source = await self._credential_source()
            advice = (
                "check that key and secret belong to this endpoint"
                if code in _CREDENTIAL_CODES or type(cause).__name__.endswith("CredentialsError")
                else "check that this identity may access the bucket and key"
            )
            translated = PermissionError(
                translated.errno, f"{translated.strerror}; the credentials came from {source}: {advice}", path
            )
        return translated

    async def _credential_source(self) -> str:
        if self.anon:
            return "nowhere (anonymous, unsigned requests)"
        if self.key:
            return "the key / secret options passed to artifact_fs"
        profile = self.kwargs.get("profile")
        try:
            credentials = await self.session.get_credentials() if self.session is not None else None
        except Exception:  # noqa: BLE001 - describing the source must not hide the real error
            credentials = None
        if credentials is None:
            return (
                "nowhere: no AWS credentials were found (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or pass key / secret)"
            )
        described = _CREDENTIAL_METHODS.get(credentials.method, f"botocore's {credentials.method!r} provider")
        if profile:
            described += f", profile {profile!r}"
        return described

    # -- uploads ------------------------------------------------------------------------------------
    async def _put_file(
        self, lpath: str, rpath: str, *args: Any, chunksize: int | None = None, **kwargs: Any
    ) -> Any:
        # MLflow guesses from the local file's name; extra args (added in _call_s3) still override.
        kwargs = {**guess_content_headers(str(lpath)), **self.upload_extra_args, **kwargs}
        return await super()._put_file(lpath, rpath, *args, chunksize=chunksize or self.chunk_size, **kwargs)

    async def _pipe_file(
        self, path: str, data: Any, *args: Any, chunksize: int | None = None, **kwargs: Any
    ) -> Any:
        return await super()._pipe_file(path, data, *args, chunksize=chunksize or self.chunk_size, **kwargs)

    # -- fsspec semantics s3fs misses ----------------------------------------------------------------
    async def _cat_file(
        self,
        path: str,
        version_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        **kwargs: Any,
    ) -> bytes:
        """Ranges follow Python slicing: an empty or past-the-end range is ``b""``, not an error."""
        if start is not None and end is not None and start >= 0 and end >= 0 and start >= end:
            await self._info(path)  # a missing file is still an error
            return b""
        try:
            return bytes(await super()._cat_file(path, version_id=version_id, start=start, end=end, **kwargs))
        except OSError as exc:
            if errors._error_code(_cause(exc)) == "InvalidRange":
                return b""
            raise

    async def _get_file(self, rpath: str, lpath: str, *args: Any, **kwargs: Any) -> Any:
        """Download into ``lpath``, creating its local parent directory as other backends do."""
        if not os.path.isdir(lpath):
            parent = os.path.dirname(os.path.abspath(lpath))
            os.makedirs(parent, exist_ok=True)
        return await super()._get_file(rpath, lpath, *args, **kwargs)

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> Any:
        """Copy one object; a "directory" (a prefix, which is not an object) has nothing to copy."""
        try:
            return await super()._cp_file(path1, path2, **kwargs)
        except FileNotFoundError:
            if await self._isdir(path1):
                return None
            raise

    async def _rm_file(self, path: str, **kwargs: Any) -> Any:
        """Delete one object; a missing one is ``FileNotFoundError`` (S3 itself answers 204)."""
        await self._info(path)
        result = await super()._rm_file(path, **kwargs)
        await self._remove_emptied_folders(self._parent(self._strip_protocol(path)))
        return result

    # -- deletes ------------------------------------------------------------------------------------
    async def _rm(self, path: str | list[str], recursive: bool = False, **kwargs: Any) -> Any:
        if isinstance(path, str) and not await self._exists(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if not recursive:
            removed = await super()._rm(path, **kwargs)
            names = [path] if isinstance(path, str) else list(path)
            for parent in sorted({self._parent(self._strip_protocol(name).rstrip("/")) for name in names}):
                await self._remove_emptied_folders(parent)
            return removed
        # Expanded here (not inside s3fs) to know which folders the delete empties.
        expanded = await self._expand_path(path, recursive=True)
        removed = await super()._rm(expanded, **kwargs)
        roots = [path] if isinstance(path, str) else list(path)
        await self._remove_folder_markers(roots, expanded)
        for root in roots:
            await self._remove_emptied_folders(self._parent(self._strip_protocol(root).rstrip("/")))
        return removed

    async def _remove_emptied_folders(self, folder: str) -> None:
        """Walk up from ``folder`` dropping the entries of folders that no longer hold any key.

        A parent still holding a key - including an explicit ``<parent>/`` marker object, as the
        AWS console creates - stops the walk, so folders that exist on AWS stay.
        """
        current = folder
        while True:
            bucket, key, _ = self.split_path(current)
            if not key:
                return
            listing = await self._call_s3("list_objects_v2", Bucket=bucket, Prefix=key + "/", MaxKeys=1)
            if listing.get("KeyCount", len(listing.get("Contents", []))):
                return
            await self._call_s3("delete_object", Bucket=bucket, Key=key + "/")
            self.invalidate_cache(current)
            current = self._parent(current)

    async def _remove_folder_markers(self, roots: list[str], removed: list[str]) -> None:
        """Delete the ``<prefix>/`` entries of the folders a recursive delete emptied, deepest first.

        On AWS these keys usually do not exist and the request is a no-op; stores that keep folders
        as entries of their own (SeaweedFS lists an emptied prefix for about a minute) drop them, so
        listings match AWS right away. Only folders inside the deleted trees are touched, and a store
        refuses to drop a folder that still has children.
        """
        stripped = [self._strip_protocol(root).rstrip("/") for root in roots]
        folders: dict[str, set[str]] = {}
        for name in [*stripped, *(self._strip_protocol(item) for item in removed)]:
            for root in stripped:
                if name != root and not name.startswith(root + "/"):
                    continue
                current = name
                while current and (current == root or current.startswith(root + "/")):
                    bucket, key, _ = self.split_path(current)
                    if key:
                        folders.setdefault(bucket, set()).add(key.rstrip("/") + "/")
                    current = self._parent(current) if current != root else ""
        for bucket, keys in folders.items():
            # One request per depth, deepest first: a store may handle a batch's keys in any order,
            # and a folder is only dropped once its sub-folders are gone.
            by_depth: dict[int, list[str]] = {}
            for key in keys:
                by_depth.setdefault(key.count("/"), []).append(key)
            for depth in sorted(by_depth, reverse=True):
                level = sorted(by_depth[depth])
                for start in range(0, len(level), 1000):
                    batch = [{"Key": key} for key in level[start : start + 1000]]
                    await self._call_s3(
                        "delete_objects", Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                    )
            self.invalidate_cache(bucket)

    def _open(
        self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any
    ) -> ArtifactS3File:
        """s3fs's ``_open`` with :class:`ArtifactS3File`, small read blocks and part-sized write blocks."""
        version_id = kwargs.pop("version_id", None)
        if not self.version_aware and version_id:
            raise ValueError("version_id cannot be given unless the filesystem is version aware")
        if block_size is None:
            block_size = self.read_block_size if "r" in mode else self.chunk_size
        if "r" not in mode and block_size < settings.S3_MIN_PART:
            raise ValueError(
                f"block_size={block_size} is below S3's 5 MiB minimum part size; use at least "
                f"{settings.S3_MIN_PART}"
            )
        fill_cache = kwargs.pop("fill_cache", None)
        cache_type = kwargs.pop("cache_type", None)
        requester_pays = kwargs.pop("requester_pays", None)
        file_options = {
            name: kwargs.pop(name) for name in ("autocommit", "size", "cache_options") if name in kwargs
        }
        acl = kwargs.pop("acl", False)
        additional = {**self.s3_additional_kwargs, **kwargs}
        return ArtifactS3File(
            self,
            path,
            mode,
            block_size=block_size,
            acl=acl or additional.get("ACL", False),
            version_id=version_id,
            fill_cache=self.default_fill_cache if fill_cache is None else fill_cache,
            s3_additional_kwargs=additional,
            cache_type=cache_type or self.default_cache_type,
            requester_pays=self.requester_pays if requester_pays is None else requester_pays,
            **file_options,
        )


def _cause(exc: BaseException) -> BaseException:
    """The SDK's own exception behind one s3fs already turned into a builtin error."""
    cause = exc.__cause__
    if cause is not None and isinstance(exc, OSError) and type(exc).__module__ == "builtins":
        return cause
    return exc


# -- presigned multipart upload and download (the artifact server calls these generically) -------
def _bucket_key(fs: ArtifactS3FileSystem, path: str) -> tuple[str, str]:
    bucket, key, _ = fs.split_path(path)
    if not key:
        raise ValueError(f"{path!r} names a bucket, not an object")
    return bucket, key


def _owner_and_payer(fs: ArtifactS3FileSystem) -> dict[str, Any]:
    extra = {name: fs.s3_additional_kwargs[name] for name in ("ExpectedBucketOwner", "RequestPayer")
             if name in fs.s3_additional_kwargs}  # fmt: skip
    return extra


def _headers(params: Mapping[str, Any]) -> dict[str, str]:
    return {_PARAM_TO_HEADER[name]: str(value) for name, value in params.items() if name in _PARAM_TO_HEADER}


def _presign(fs: ArtifactS3FileSystem, method: str, params: dict[str, Any], expires: int) -> str:
    async def presign() -> str:
        client = await fs.set_session()
        return str(await client.generate_presigned_url(method, Params=params, ExpiresIn=expires))

    with errors.translating(f"{params.get('Bucket')}/{params.get('Key')}"):
        return str(sync(fs.loop, presign))


def create_multipart_upload(
    fs: ArtifactS3FileSystem, path: str, num_parts: int, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Start a multipart upload and presign one ``upload_part`` URL per part (numbers 1..N)."""
    if not 1 <= num_parts <= 10_000:
        raise ValueError(f"num_parts must be between 1 and 10000 (S3's limit), got {num_parts}")
    refused = {"SSECustomerKey", "ChecksumAlgorithm"} & set(fs.upload_extra_args)
    if refused:
        raise MultipartUnsupportedError(
            f"presigned multipart uploads are unavailable with {sorted(refused)} in "
            "MLFLOW_S3_UPLOAD_EXTRA_ARGS (presigning would expose or break them)"
        )
    bucket, key = _bucket_key(fs, path)
    response = fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
    upload_id = response["UploadId"]
    common = _owner_and_payer(fs)
    headers = _headers(common)
    credentials = []
    for part_number in range(1, num_parts + 1):
        params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number, **common}
        url = _presign(fs, "upload_part", params, MULTIPART_URL_EXPIRY)
        credentials.append({"url": url, "part_number": part_number, "headers": dict(headers)})
    return {"upload_id": upload_id, "credentials": credentials}


def complete_multipart_upload(
    fs: ArtifactS3FileSystem,
    path: str,
    upload_id: str | None,
    parts: list[dict[str, Any]],
    environ: Mapping[str, str],
) -> None:
    """Complete with the parts in the order given (the caller sorts them, as MLflow's does)."""
    if not upload_id:
        raise ValueError("an S3 multipart upload needs the upload_id returned when it was created")
    bucket, key = _bucket_key(fs, path)
    fs.call_s3(
        "complete_multipart_upload",
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": int(p["part_number"]), "ETag": p["etag"]} for p in parts]},
    )
    fs.invalidate_cache(path)


def abort_multipart_upload(
    fs: ArtifactS3FileSystem, path: str, upload_id: str | None, environ: Mapping[str, str]
) -> None:
    if not upload_id:
        raise ValueError("an S3 multipart upload needs the upload_id returned when it was created")
    bucket, key = _bucket_key(fs, path)
    fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)


def presigned_download_url(
    fs: ArtifactS3FileSystem, path: str, expiration: int, environ: Mapping[str, str]
) -> dict[str, Any]:
    """A presigned GET (attachment, identity encoding so ranges match the stored bytes) and the size."""
    bucket, key = _bucket_key(fs, path)
    head = fs.call_s3("head_object", Bucket=bucket, Key=key)
    common = _owner_and_payer(fs)
    params = {
        "Bucket": bucket,
        "Key": key,
        "ResponseContentDisposition": attachment_disposition(posixpath.basename(key)),
        "ResponseContentEncoding": "identity",
        **common,
    }
    url = _presign(fs, "get_object", params, expiration)
    return {"url": url, "headers": _headers(common), "file_size": int(head["ContentLength"])}
