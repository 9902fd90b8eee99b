"""What S3, GCS and Azure share (backends/object_store.py): capabilities, the transfer policy, errors."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from artifact_fs import errors, uris
from artifact_fs.backends import azure, gcs, object_store, s3
from artifact_fs.policy import TransferPolicy

S3 = uris.parse("s3://bucket/exp/1/artifacts")
GS = uris.parse("gs://bucket/exp/1/artifacts")
WASBS = uris.parse("wasbs://box@acct1.blob.core.windows.net/exp/1/artifacts")
CS = "AccountName=acct1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/acct1;"
STORES = [s3, gcs, azure]
HOOKS = ("create_multipart_upload", "complete_multipart_upload", "abort_multipart_upload")


@pytest.mark.parametrize("backend", STORES, ids=lambda module: module.__name__.rsplit(".", 1)[1])
def test_capabilities_say_what_the_hooks_do(backend: ModuleType) -> None:
    """The server offers multipart and presigned downloads exactly where the capabilities say so."""
    assert backend.CAPABILITIES.multipart_upload is all(
        callable(getattr(backend, hook, None)) for hook in HOOKS
    )
    assert backend.CAPABILITIES.presign is callable(getattr(backend, "presigned_download_url", None))
    assert backend.CAPABILITIES.multipart_upload and backend.CAPABILITIES.presign
    assert not backend.CAPABILITIES.empty_directories and backend.CAPABILITIES.atomic_write


def test_only_the_differences_are_declared_per_store() -> None:
    assert gcs.CAPABILITIES == object_store.CAPABILITIES
    assert s3.CAPABILITIES.write_parts_min_size == 5 * 1024 * 1024
    assert azure.CAPABILITIES.exclusive_create and not s3.CAPABILITIES.exclusive_create


def _attempts(backend: ModuleType, environ: dict[str, str], **overrides: Any) -> int:
    if backend is s3:
        return int(s3.options(S3, environ, **overrides)["max_attempts"])
    if backend is gcs:
        return int(gcs.options(GS, environ, **overrides)["retries"])
    return int(azure.options(WASBS, environ, **overrides)["retry_total"]) + 1


@pytest.mark.parametrize(("backend", "store_default"), [(s3, 3), (gcs, 6), (azure, 4)])
def test_stores_keep_their_fast_failing_attempts_unless_the_policy_chooses(
    backend: ModuleType, store_default: int
) -> None:
    assert _attempts(backend, {}) == store_default
    assert _attempts(backend, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}) == 3
    assert _attempts(backend, {}, policy=TransferPolicy(max_retries=0)) == 1


def test_explicit_options_win_over_the_policy() -> None:
    environ = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "30"}
    assert s3.options(S3, environ, max_attempts=1, read_timeout=5)["max_attempts"] == 1
    assert s3.options(S3, environ, read_timeout=5)["read_timeout"] == 5
    assert gcs.options(GS, environ, retries=2, transfer_timeout=9)["transfer_timeout"] == 9
    assert azure.options(WASBS, environ, retry_total=0, timeout=7)["timeout"] == 7


def test_connect_timeout_and_bulk_concurrency_come_from_the_policy() -> None:
    policy = TransferPolicy(connect_timeout=3.0, async_concurrency=5)
    s3_options = s3.options(S3, {}, policy=policy)
    gcs_options = gcs.options(GS, {}, policy=policy)
    azure_options = azure.options(WASBS, {}, policy=policy)
    assert s3_options["connect_timeout"] == gcs_options["connect_timeout"] == 3.0
    assert azure_options["connection_timeout"] == 3.0
    assert s3_options["batch_size"] == gcs_options["batch_size"] == azure_options["batch_size"] == 5
    fs = s3.filesystem({**s3_options, "skip_instance_cache": True})  # type: ignore[typeddict-unknown-key]
    assert fs.batch_size == 5 and fs.config_kwargs["connect_timeout"] == 3.0


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, (60, 60.0, 600)), ({"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "30"}, (30, 30.0, 30))],
)
def test_transfer_timeout_keeps_each_stores_mlflow_default(
    environ: dict[str, str], expected: tuple[float, float, int]
) -> None:
    got = (
        s3.options(S3, environ)["read_timeout"],
        gcs.options(GS, environ)["transfer_timeout"],
        azure.options(WASBS, environ)["timeout"],
    )
    assert got == expected


def test_a_bucket_is_not_an_object() -> None:
    fs = s3.ArtifactS3FileSystem(skip_instance_cache=True)
    assert fs.object_path("bucket/a/b.txt") == ("bucket", "a/b.txt")
    with pytest.raises(ValueError, match="names a bucket"):
        fs.object_path("bucket")
    with pytest.raises(ValueError, match="names a bucket"):
        s3.presigned_download_url(fs, "bucket", 60, {})
    blob_fs = azure.filesystem(azure.options(WASBS, {}, connection_string=CS))
    with pytest.raises(ValueError, match="names a container"):
        blob_fs.object_path("box")


@pytest.mark.parametrize("num_parts", [0, 10_001])
def test_part_counts_are_checked_before_any_request(num_parts: int) -> None:
    fs = s3.ArtifactS3FileSystem(endpoint_url="http://127.0.0.1:1", skip_instance_cache=True)
    with pytest.raises(ValueError, match="num_parts"):
        s3.create_multipart_upload(fs, "bucket/key", num_parts, {})


def test_sync_twins_of_translated_methods_translate_too() -> None:
    """gcsfs and adlfs bind some sync methods to their own coroutines, which skipped the translation."""
    from adlfs import AzureBlobFileSystem
    from gcsfs import GCSFileSystem

    assert gcs.ArtifactGCSFileSystem.rm is not GCSFileSystem.rm
    assert azure.ArtifactAzureBlobFileSystem.ls is not AzureBlobFileSystem.ls


def test_a_failing_abort_does_not_hide_the_error_of_the_with_block(monkeypatch: pytest.MonkeyPatch) -> None:
    fs = s3.ArtifactS3FileSystem(endpoint_url="http://127.0.0.1:1", skip_instance_cache=True)
    aborted = []

    def refuse(*args: Any) -> None:
        aborted.append(args)
        raise ConnectionError("the store went away")

    monkeypatch.setattr(fs, "abort_mpu", refuse)
    file = fs.open("bucket/key", "wb")
    file.mpu = {"UploadId": "upload-1"}
    with pytest.raises(RuntimeError, match="the caller's own"), file:
        file.write(b"partial")
        raise RuntimeError("the caller's own error")
    assert aborted == [("bucket", "key", "upload-1")]
    assert file.closed and file.mpu is None


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetObject")


def test_an_invalid_range_is_recognised_behind_a_translated_error() -> None:
    refused = _client_error("InvalidRange", 416)
    wrapped = OSError(22, "invalid range")
    wrapped.__cause__ = refused
    assert errors.is_invalid_range(refused) and errors.is_invalid_range(wrapped)
    assert not errors.is_invalid_range(_client_error("NoSuchKey", 404))
    assert not errors.is_invalid_range(OSError(22, "no SDK error behind it"))


def test_credential_errors_are_told_from_denied_actions() -> None:
    assert errors.is_credential_error(_client_error("SignatureDoesNotMatch", 403))
    assert errors.is_credential_error(NoCredentialsError())
    assert not errors.is_credential_error(_client_error("AccessDenied", 403))
