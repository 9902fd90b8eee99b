"""Presigned URLs of small S3 requests, signed per bucket: byte for byte botocore's own (no server).

:class:`~artifact_fs.backends.s3_small.BucketSigning` asks botocore's ``generate_presigned_url`` once
per bucket, then signs each key itself (SigV4's query-string algorithm). With the clock stopped,
every URL must equal the one botocore's full presigner makes for the same operation and parameters.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import botocore.auth
import pytest
import yarl
from fsspec.asyn import sync

from artifact_fs.backends import s3, s3_small

KEYS = ["model.bin", "a b/ü~x+y=z&.bin", "dir/sub/weights (1).pt", "%41 literal/quote'\"", "x" * 300]
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "get_object", {}),
    ("HEAD", "head_object", {}),
    ("PUT", "put_object", {}),
    (
        "PUT",
        "put_object",
        {
            "ContentType": "text/plain",
            "ContentEncoding": "gzip",
            "Metadata": {"artifact-digest": "sha-256=:abc=:, crc32c=:AAAAAA==:", "Note": " two  spaces "},
            "ContentMD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        },
    ),
    ("PUT", "upload_part", {"UploadId": "2~abc/DEF+ghi=", "PartNumber": 7, "ChecksumCRC32C": "AAAAAA=="}),
    ("PUT", "upload_part", {"UploadId": "plain", "PartNumber": 1, "ContentMD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}),
]
FILESYSTEMS: dict[str, dict[str, Any]] = {
    "path-style endpoint": {"endpoint_url": "http://127.0.0.1:9000", "addressing_style": "path"},
    "AWS, virtual hosts": {"region_name": "eu-west-1", "addressing_style": "virtual"},
    "AWS us-east-1, auto": {"region_name": "us-east-1"},
    "session token": {"endpoint_url": "https://s3.example.test", "token": "FwoGZXIvYXdzEJr//token"},
    "the scheme's port, upper case": {
        "endpoint_url": "https://S3.Example.Test:443",
        "region_name": "eu-west-3",
    },
    "IPv6 endpoint": {"endpoint_url": "http://[::1]:9000"},
    "endpoint under a path": {"endpoint_url": "http://127.0.0.1:9000/s3/"},
}


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    moment = datetime.datetime(2026, 12, 1, 18, 30, 5, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: moment)
    yield


def _filesystem(options: dict[str, Any]) -> s3.ArtifactS3FileSystem:
    return s3.ArtifactS3FileSystem(
        key="AKIDEXAMPLE",
        secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        skip_instance_cache=True,
        **options,
    )


@pytest.mark.parametrize("setup", list(FILESYSTEMS))
def test_every_url_is_the_one_botocore_presigns(setup: str, stopped_clock: None) -> None:
    fs = _filesystem(FILESYSTEMS[setup])
    client = fs.connect()
    small = s3_small.SmallRequests(fs)
    for method, operation, params in OPERATIONS:
        for key in KEYS:
            ours = sync(fs.loop, small._url, method, operation, "my-bucket", key, params)
            theirs = sync(
                fs.loop,
                client.generate_presigned_url,
                operation,
                Params={"Bucket": "my-bucket", "Key": key, **params},
                ExpiresIn=s3_small.EXPIRES_IN,
            )
            # what is sent: aiohttp's URL (yarl drops a scheme's own port from both)
            assert str(ours) == str(yarl.URL(theirs, encoded=True)), (operation, key, params)
    assert small._signing["my-bucket"] is not None  # signed here, not by botocore's presigner


def test_the_bucket_s_address_and_region_come_from_one_botocore_url() -> None:
    signing = s3_small.BucketSigning.of(
        "https://my-bucket.s3.eu-west-1.amazonaws.com/probe?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKID%2F20261201%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261201T000000Z"
        "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
    )
    assert signing == s3_small.BucketSigning(
        base="https://my-bucket.s3.eu-west-1.amazonaws.com/", region="eu-west-1"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/b/probe?AWSAccessKeyId=a&Signature=x&Expires=1",  # SigV2
        "http://127.0.0.1:9/b/probe",  # unsigned
        "https://b.s3express-use1-az4.us-east-1.amazonaws.com/probe?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=a%2F20261201%2Fus-east-1%2Fs3express%2Faws4_request&X-Amz-S3session-Token=t"
        "&X-Amz-Signature=0",  # an S3 Express session
        "http://127.0.0.1:9/b/other?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=a%2F20261201%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0",  # key elsewhere
    ],
)
def test_anything_but_a_plain_sigv4_url_keeps_botocore_s_presigner(url: str) -> None:
    assert s3_small.BucketSigning.of(url) is None


def test_a_parameter_not_known_here_is_left_to_botocore(stopped_clock: None) -> None:
    signing = s3_small.BucketSigning(base="http://127.0.0.1:9/b/", region="us-east-1")
    assert signing.sign(_credentials(), "PUT", "k", {"ACL": "private"}) is None
    assert signing.sign(_credentials(), "PUT", "k", {"ContentType": "text/plain"}) is not None


def test_a_sigv2_filesystem_is_presigned_by_botocore(stopped_clock: None) -> None:
    fs = _filesystem({"endpoint_url": "http://127.0.0.1:9000", "signature_version": "s3"})
    small = s3_small.SmallRequests(fs)
    url = sync(fs.loop, small._url, "GET", "get_object", "my-bucket", "k", {})
    assert "Signature=" in str(url) and "X-Amz-Algorithm" not in str(url)
    assert small._signing["my-bucket"] is None


def _credentials() -> Any:
    from botocore.credentials import ReadOnlyCredentials

    return ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)
