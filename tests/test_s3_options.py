"""S3 options from MLflow's variables, and the boto configuration they become (no server needed)."""

from __future__ import annotations

import json

import pytest
from botocore import UNSIGNED
from fsspec.asyn import sync

from artifact_fs import uris
from artifact_fs.backends import s3

S3 = uris.parse("s3://bucket/exp/1/artifacts")
MIB = 1024 * 1024


def test_defaults_leave_credentials_and_region_to_botocore() -> None:
    result = s3.options(S3, {})
    assert result["endpoint_url"] is None
    assert result["chunk_size"] == 10 * MIB  # MLflow's MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE default
    assert result["read_timeout"] == 60
    assert result["addressing_style"] == "auto"
    for name in ("key", "secret", "token", "anon", "verify", "region_name", "upload_extra_args"):
        assert name not in result


def test_every_variable_becomes_an_option() -> None:
    environ = {
        "MLFLOW_S3_ENDPOINT_URL": "https://s3.example.test:9000/",
        "MLFLOW_S3_UPLOAD_EXTRA_ARGS": json.dumps({"ACL": "private", "SSECustomerAlgorithm": "AES256"}),
        "MLFLOW_S3_EXPECTED_BUCKET_OWNER": "123456789012",
        "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE": "virtual",
        "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "7",
        "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(8 * MIB),
        "AWS_DEFAULT_REGION": "eu-west-3",
        "AWS_PROFILE": "team",
        "AWS_CA_BUNDLE": "/etc/ca.pem",
    }
    result = s3.options(S3, environ)
    assert result["endpoint_url"] == "https://s3.example.test:9000"
    assert result["upload_extra_args"] == {"ACL": "private", "SSECustomerAlgorithm": "AES256"}
    assert result["expected_bucket_owner"] == "123456789012"
    assert result["addressing_style"] == "virtual"
    assert result["read_timeout"] == 7
    assert result["chunk_size"] == 8 * MIB
    assert result["region_name"] == "eu-west-3"
    assert result["profile"] == "team"
    assert result["verify"] == "/etc/ca.pem"


def test_explicit_options_win_over_the_environment() -> None:
    environ = {
        "MLFLOW_S3_ENDPOINT_URL": "http://env:9000",
        "AWS_PROFILE": "team",
        "MLFLOW_S3_IGNORE_TLS": "true",
    }
    result = s3.options(S3, environ, endpoint_url="http://explicit:9000", key="k", secret="s", verify=True)
    assert result["endpoint_url"] == "http://explicit:9000"
    assert result["verify"] is True
    assert "profile" not in result  # explicit keys replace the profile from the environment


@pytest.mark.parametrize(("value", "anon"), [("unsigned", True), ("UNSIGNED", True), ("s3v4", False)])
def test_unsigned_signature_means_anonymous(value: str, anon: bool) -> None:
    result = s3.options(S3, {"MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION": value})
    assert result.get("anon", False) is anon


def test_ignore_tls_turns_verification_off_and_refuses_a_ca_bundle_too() -> None:
    assert s3.options(S3, {"MLFLOW_S3_IGNORE_TLS": "true"})["verify"] is False
    with pytest.raises(ValueError, match="both set"):
        s3.options(S3, {"MLFLOW_S3_IGNORE_TLS": "true", "AWS_CA_BUNDLE": "/ca.pem"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "{not json"),
        ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "[1, 2]"),
        ("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "sideways"),
        ("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1 * MIB)),
        ("MLFLOW_S3_IGNORE_TLS", "yes"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        s3.options(S3, {variable: value})


def test_an_explicit_part_size_below_five_mib_explains_the_limit() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        s3.options(S3, {}, chunk_size=MIB)


def test_the_filesystem_carries_mlflow_configuration_into_boto() -> None:
    fs = s3.ArtifactS3FileSystem(
        endpoint_url="http://127.0.0.1:9000",
        region_name="us-east-1",
        verify=False,
        addressing_style="path",
        upload_extra_args={"Metadata": {"a": "b"}, "SSECustomerAlgorithm": "AES256"},
        expected_bucket_owner="123456789012",
        chunk_size=6 * MIB,
        max_concurrency=3,
        read_timeout=None,
        skip_instance_cache=True,
    )
    assert fs.client_kwargs["verify"] is False
    assert fs.config_kwargs["region_name"] == "us-east-1"
    assert "region_name" not in fs.client_kwargs  # s3fs would send a LocationConstraint
    assert fs.config_kwargs["s3"] == {"addressing_style": "path"}
    assert fs.config_kwargs["read_timeout"] is None
    assert fs.config_kwargs["request_checksum_calculation"] == "when_required"  # not AWS
    assert fs.config_kwargs["retries"]["mode"] == "standard"
    # Reads get the bucket owner and the SSE-C arguments only, as MLflow's downloads do.
    assert fs.s3_additional_kwargs == {
        "SSECustomerAlgorithm": "AES256",
        "ExpectedBucketOwner": "123456789012",
    }
    assert fs.upload_extra_args == {"Metadata": {"a": "b"}, "SSECustomerAlgorithm": "AES256"}
    assert (fs.default_block_size, fs.max_concurrency, fs.fixed_upload_size) == (6 * MIB, 3, True)


def test_aws_endpoints_keep_botocore_checksums() -> None:
    fs = s3.ArtifactS3FileSystem(endpoint_url="https://s3.eu-west-3.amazonaws.com", skip_instance_cache=True)
    assert "request_checksum_calculation" not in fs.config_kwargs


def test_unsigned_is_botocore_unsigned() -> None:
    fs = s3.filesystem(s3.options(S3, {"MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION": "unsigned"}))
    assert fs.anon is True
    client = fs.connect()
    assert client.meta.config.signature_version is UNSIGNED


@pytest.mark.parametrize(
    ("environ", "algorithm"),
    [
        ({}, "X-Amz-Algorithm=AWS4-HMAC-SHA256"),
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, "X-Amz-Algorithm=AWS4-HMAC-SHA256"),
        ({"MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION": "s3"}, "AWSAccessKeyId="),  # SigV2, asked for
    ],
)
def test_presigned_urls_are_signed_with_the_configured_version(
    environ: dict[str, str], algorithm: str
) -> None:
    """MLflow names ``s3v4`` to botocore; unnamed, botocore presigns SigV2 in us-east-1 and eu-west-1,
    which AWS refuses for new buckets and SeaweedFS for a presigned download's disposition."""
    options = s3.options(S3, environ)
    fs = s3.filesystem({**options, "key": "AKIDEXAMPLE", "secret": "s" * 40, "skip_instance_cache": True})
    assert algorithm in _presigned_get(fs)


def test_a_filesystem_made_without_options_presigns_sigv4() -> None:
    fs = s3.ArtifactS3FileSystem(key="AKIDEXAMPLE", secret="s" * 40, skip_instance_cache=True)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in _presigned_get(fs)


def _presigned_get(fs: s3.ArtifactS3FileSystem) -> str:
    """A presigned GET from the filesystem's own (aiobotocore) client: signing needs no server."""
    params = {"Bucket": "bucket", "Key": "a b.bin"}
    return str(sync(fs.loop, fs.connect().generate_presigned_url, "get_object", Params=params))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.txt", {"ContentType": "text/plain"}),
        ("data.csv", {"ContentType": "text/csv"}),
        ("bundle.tar.gz", {"ContentType": "application/x-tar", "ContentEncoding": "gzip"}),
        ("weights.unknownext", {}),
    ],
)
def test_content_headers_are_guessed_like_mlflow(name: str, expected: dict[str, str]) -> None:
    assert s3.guess_content_headers(name) == expected


def test_fs_path_is_bucket_and_key_and_a_bucket_root_works() -> None:
    assert s3.fs_path(S3, {}) == "bucket/exp/1/artifacts"
    assert s3.fs_path(uris.parse("s3://bucket"), {}) == "bucket"


def test_changed_aws_credentials_in_the_environment_get_a_new_filesystem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fsspec caches instances by their options; botocore reads AWS_* from the process once per client."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "alice")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "alice-secret")
    options_first = s3.options(S3, {})
    assert "alice" not in repr(options_first) and "alice-secret" not in repr(options_first)
    assert s3.filesystem(options_first) is s3.filesystem(s3.options(S3, {}))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "bob")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "bob-secret")
    assert s3.filesystem(options_first) is not s3.filesystem(s3.options(S3, {}))
