"""S3 and S3-compatible stores (``s3://bucket/key``) over s3fs, configured the way MLflow configures boto3.

MLflow's ``S3ArtifactRepository`` builds one boto3 client from the environment; this module turns the
same variables into the options of :class:`~artifact_fs.backends.s3.ArtifactS3FileSystem` (reference
§1.1, §2.4):

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
* the transfer policy (:mod:`artifact_fs.policy`): its connect timeout;
  ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` -> the read timeout (botocore's 60 s otherwise; MLflow
  ignores it for S3, we honour it); its retries (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, else botocore's
  3 attempts) and bulk concurrency;
* ``MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE`` -> the part size of multipart uploads;
* ``MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE`` -> the range size of downloads (16 MiB otherwise),
  ``MLFLOW_ENABLE_MULTIPART_DOWNLOAD=false`` -> one plain GET per file.

Explicit keyword arguments win over the environment. Multipart uploads use equal-size parts (so
Cloudflare R2 and similar stores accept them), at most ``max_concurrency`` in flight, and a failed
multipart upload is aborted so no part is left pending. Errors leave as builtin ``OSError``
subclasses through :mod:`artifact_fs.errors`; a rejected signature or unknown key says where the
credentials came from.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
from collections.abc import Mapping
from typing import Any, TypedDict

from artifact_fs import qualify, settings
from artifact_fs.policy import TransferPolicy, download_part_size
from artifact_fs.uris import ArtifactURI

DEFAULT_MAX_CONCURRENCY = 8
"""Parts (or ranged reads) in flight per file: bounded so memory stays ``8 x part size``."""
DEFAULT_READ_TIMEOUT = 60
"""botocore's default read timeout, which MLflow's S3 client gets."""
DEFAULT_RETRIES = 2
"""botocore ``standard`` mode's 3 attempts: throttling (SlowDown, 503) and transient errors back off,
and an unreachable endpoint is reported within seconds."""
SIGNATURE_VERSION = settings.MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION.default
"""SigV4, always named to botocore as MLflow's client names it. Left unnamed, botocore still signs
requests with SigV4 but *presigns* with SigV2 in us-east-1 and the older regions: URLs that AWS
refuses for buckets made since mid-2020, and that SeaweedFS refuses when they carry a
``response-content-disposition`` (the server's presigned downloads)."""
DEFAULT_READ_BLOCK_SIZE = 512 * settings.KIB
"""Read-ahead of files opened for reading; small so columnar readers fetch little beyond their ranges."""


class S3Options(TypedDict, total=False):
    """Storage options of ``ArtifactS3FileSystem``: s3fs's own plus MLflow's settings."""

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
    download_part_size: int
    """Range size of downloads; 0 for one plain GET (``MLFLOW_ENABLE_MULTIPART_DOWNLOAD=false``)."""
    max_concurrency: int
    batch_size: int
    """Requests in flight for bulk calls on the event loop (the policy's ``async_concurrency``)."""
    connect_timeout: float
    read_timeout: float | None
    max_attempts: int
    client_kwargs: dict[str, Any]
    config_kwargs: dict[str, Any]
    s3_additional_kwargs: dict[str, Any]


def options(
    uri: ArtifactURI, environ: Mapping[str, str], *, policy: TransferPolicy | None = None, **overrides: Any
) -> S3Options:
    """MLflow's S3 variables as ``ArtifactS3FileSystem`` options; explicit ``overrides`` win.

    Timeouts, attempts and concurrency come from ``policy`` (by default read from ``environ``).
    """
    policy = policy or TransferPolicy.from_environ(environ)
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
        "download_part_size": _download_part_size(environ),
        "max_concurrency": DEFAULT_MAX_CONCURRENCY,
        "batch_size": policy.async_concurrency,
        "connect_timeout": policy.connect_timeout,
        "read_timeout": policy.transfer_timeout_or(DEFAULT_READ_TIMEOUT),
        "max_attempts": policy.max_retries_or(DEFAULT_RETRIES) + 1,
    }
    if "verify" not in overrides:
        verify = settings.s3_tls_verify(environ)
        if verify is not None:
            result["verify"] = verify
    signature = settings.MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION.get(environ)
    if signature.lower() == "unsigned":
        result["anon"] = True
    else:  # always named (SIGNATURE_VERSION)
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
    checksums = {
        setting.name[len("AWS_") :].lower(): setting.get(environ)
        for setting in (settings.AWS_REQUEST_CHECKSUM_CALCULATION, settings.AWS_RESPONSE_CHECKSUM_VALIDATION)
        if setting.is_set(environ)
    }
    if checksums:  # botocore's own variables; the filesystem's default for other stores yields to them
        overrides = {**overrides, "config_kwargs": {**checksums, **overrides.get("config_kwargs", {})}}
    # botocore reads its credential chain from the process environment, never from ``environ``.
    result["credential_environment"] = credential_environment_digest()
    result.update(overrides)  # type: ignore[typeddict-item]
    if "chunk_size" in overrides:
        check_chunk_size(result["chunk_size"])
    return result


def _download_part_size(environ: Mapping[str, str]) -> int:
    """MLflow's multipart-download variables as a range size (0: one plain GET per file)."""
    if not settings.MLFLOW_ENABLE_MULTIPART_DOWNLOAD.get(environ):
        return 0
    return download_part_size(environ)


CREDENTIAL_SOURCES = {
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
"""How botocore's credential providers (``Credentials.method``) are named in error messages."""


def credential_environment_digest(environ: Mapping[str, str] | None = None) -> str:
    """A digest of the variables botocore's credential chain reads (never the values themselves).

    It is a storage option only so that fsspec's instance cache tells environments apart: MLflow
    builds a new boto3 client per call, so changed AWS variables take effect at once, and a cached
    filesystem built under other credentials must not be handed out. ``environ`` defaults to the
    process environment, the only one botocore reads.
    """
    seen = "\0".join(
        f"{setting.name}={setting.raw(environ) or ''}" for setting in settings.AWS_CREDENTIAL_SETTINGS
    )
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


def check_chunk_size(value: Any) -> None:
    if not isinstance(value, int) or not settings.S3_MIN_PART <= value <= settings.S3_MAX_PART:
        raise ValueError(
            f"chunk_size={value!r} is not a valid S3 part size: use an integer number of bytes between "
            f"{settings.S3_MIN_PART} (5 MiB) and {settings.S3_MAX_PART} (5 GiB)"
        )


def parse_timestamp(value: Any) -> datetime.datetime:
    """botocore's timestamp parsing without dateutil for the two forms S3 sends.

    ISO 8601 (``LastModified`` of every listed key) and RFC 1123 (``Last-Modified`` of every GET and
    HEAD) parse with the standard library; anything else goes to botocore's own parser. dateutil's
    general parser was a fifth of the event loop's time in a 10,000-key listing and in small-file
    downloads. Set as the session's parser default (:meth:`ArtifactS3FileSystem.set_session`).
    """
    from botocore.utils import parse_timestamp as botocore_parse_timestamp

    try:
        if isinstance(value, str) and value[:4].isdigit():  # "2026-11-30T20:35:00.000Z"
            parsed = datetime.datetime.fromisoformat(value)
        elif isinstance(value, str):
            parsed = email.utils.parsedate_to_datetime(value)
        else:
            raise TypeError(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed
    except (TypeError, ValueError, IndexError):
        return botocore_parse_timestamp(value)  # type: ignore[no-any-return]
