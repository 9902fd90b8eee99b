"""S3-specific behaviour on a real SeaweedFS (auth enforced, HTTPS with a throwaway CA) and on moto.

What the generic suite cannot see: MLflow's upload arguments reaching the stored object, the error
for each kind of misconfiguration, failed uploads leaving nothing behind, TLS settings, anonymous
access, the presign hooks the artifact server uses, and range reads from columnar readers.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import artifact_fs
from artifact_fs.backends import s3
from conformance.backends.s3 import BUCKET, TEST_PART_SIZE
from conformance.harness import BackendUnderTest
from conformance.servers.launcher import free_port
from conformance.servers.seaweedfs import PUBLIC_BUCKET, SeaweedFS

pytestmark = pytest.mark.s3

MIB = 1024 * 1024
EXTRA_ARGS = {"Metadata": {"origin": "artifact-fs"}, "CacheControl": "max-age=60", "ContentType": "x/custom"}


@pytest.fixture
def seaweed(backend_s3_seaweedfs: BackendUnderTest) -> SeaweedFS:
    server: SeaweedFS = backend_s3_seaweedfs.details["server"]
    return server


@pytest.fixture(params=["seaweedfs", "moto"])
def any_s3(request: pytest.FixtureRequest) -> BackendUnderTest:
    backend: BackendUnderTest = request.getfixturevalue(f"backend_s3_{request.param}")
    return backend


def url_and_key(backend: BackendUnderTest, name: str) -> tuple[str, str]:
    url = backend.fresh_url()
    key = f"{url.split('/', 3)[3]}/{name}"
    return url, key


def pending_uploads(client: Any, key: str) -> list[dict[str, Any]]:
    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
    return [upload for upload in uploads if upload["Key"] == key]


# -- MLFLOW_S3_UPLOAD_EXTRA_ARGS reaches the object ------------------------------------------------------
@pytest.mark.parametrize("size", [1024, 3 * TEST_PART_SIZE + 17], ids=["single-part", "multipart"])
def test_upload_extra_args_reach_the_stored_object(
    any_s3: BackendUnderTest, tmp_path: Any, size: int
) -> None:
    environ = {**any_s3.environ, "MLFLOW_S3_UPLOAD_EXTRA_ARGS": json.dumps(EXTRA_ARGS)}
    url, key = url_and_key(any_s3, "model.txt")
    local = tmp_path / "model.txt"
    local.write_bytes(b"x" * size)
    fs, path = artifact_fs.backends.resolve(url, environ, **any_s3.storage_options)
    fs.put_file(str(local), f"{path}/model.txt")
    head = any_s3.details["client"]().head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"] == {"origin": "artifact-fs"}
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentType"] == "x/custom"  # the extra args win over the guessed text/plain
    assert head["ContentLength"] == size
    assert ("-" in head["ETag"]) == (size > TEST_PART_SIZE)  # a multipart ETag is "<md5>-<parts>"


def test_guessed_content_type_and_encoding_follow_mlflow(any_s3: BackendUnderTest, tmp_path: Any) -> None:
    url, key = url_and_key(any_s3, "bundle.tar.gz")
    local = tmp_path / "bundle.tar.gz"
    local.write_bytes(b"\x1f\x8b not really gzip")
    fs, path = artifact_fs.url_to_fs(url, **any_s3.storage_options)
    fs.put_file(str(local), f"{path}/bundle.tar.gz")
    head = any_s3.details["client"]().head_object(Bucket=BUCKET, Key=key)
    assert (head["ContentType"], head.get("ContentEncoding")) == ("application/x-tar", "gzip")
    assert fs.cat_file(f"{path}/bundle.tar.gz") == local.read_bytes()  # stored bytes, not decoded


def test_written_files_use_equal_parts_of_the_configured_size(any_s3: BackendUnderTest) -> None:
    url, key = url_and_key(any_s3, "stream.bin")
    fs, path = artifact_fs.url_to_fs(url, **any_s3.storage_options)
    with fs.open(f"{path}/stream.bin", "wb") as f:
        for _ in range(11):  # 11 MiB in 1 MiB writes -> parts of 5, 5, 1 MiB
            f.write(b"y" * MIB)
    client = any_s3.details["client"]()
    sizes = [
        client.head_object(Bucket=BUCKET, Key=key, PartNumber=number)["ContentLength"] for number in (1, 2, 3)
    ]
    assert sizes == [TEST_PART_SIZE, TEST_PART_SIZE, MIB]


# -- failed uploads leave nothing ---------------------------------------------------------------------
def test_an_interrupted_write_leaves_no_object_and_no_pending_upload(any_s3: BackendUnderTest) -> None:
    url, key = url_and_key(any_s3, "killed.bin")
    fs, path = artifact_fs.url_to_fs(url, **any_s3.storage_options)
    client = any_s3.details["client"]()
    with pytest.raises(KeyboardInterrupt), fs.open(f"{path}/killed.bin", "wb") as f:
        f.write(b"z" * (2 * TEST_PART_SIZE + 1))
        f.flush()
        assert len(pending_uploads(client, key)) == 1  # parts were really sent
        raise KeyboardInterrupt  # Ctrl-C in the middle of the upload
    assert not fs.exists(f"{path}/killed.bin")
    assert pending_uploads(client, key) == []


@pytest.mark.parametrize("presigned", [True, False], ids=["presigned-parts", "sdk-parts"])
def test_a_failing_multipart_put_is_aborted(any_s3: BackendUnderTest, tmp_path: Any, presigned: bool) -> None:
    """Part 3 fails for good (its presigned attempt too, which then goes through the SDK): the other
    parts stop, the upload is aborted, nothing is left."""
    url, key = url_and_key(any_s3, "broken.bin")
    local = tmp_path / "broken.bin"
    local.write_bytes(b"q" * (3 * TEST_PART_SIZE))
    fs, path = artifact_fs.url_to_fs(
        url, **any_s3.storage_options, presigned_small_requests=presigned, skip_instance_cache=True
    )
    client = any_s3.details["client"]()
    sent: set[int] = set()  # the part numbers tried, by either path
    original, presigned_part = fs._call_s3, fs.small.upload_part

    async def failing_third_part(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part":
            sent.add(kwargs["PartNumber"])
            if kwargs["PartNumber"] == 3:
                raise ConnectionResetError("connection dropped during part 3")
        return await original(method, *args, **kwargs)

    async def third_part_left_to_the_sdk(*args: Any, number: int, **kwargs: Any) -> Any:
        sent.add(number)
        return None if number == 3 else await presigned_part(*args, number=number, **kwargs)

    fs._call_s3 = failing_third_part
    fs.small.upload_part = third_part_left_to_the_sdk
    with pytest.raises(ConnectionResetError):
        fs.put_file(str(local), f"{path}/broken.bin")
    fs._call_s3 = original
    assert 3 in sent
    assert not fs.exists(f"{path}/broken.bin")
    assert pending_uploads(client, key) == []


# -- errors ------------------------------------------------------------------------------------------
def test_a_wrong_secret_is_permission_error_naming_the_credential_source(seaweed: SeaweedFS) -> None:
    fs, path = artifact_fs.url_to_fs(
        f"s3://{BUCKET}/x", endpoint_url=seaweed.endpoint_url, key=seaweed.access_key, secret="wrong"
    )
    with pytest.raises(PermissionError, match="SignatureDoesNotMatch.*key / secret options"):
        fs.ls(path)


def test_an_unknown_key_from_the_environment_is_named(seaweed: SeaweedFS, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "nothing")
    fs, path = artifact_fs.url_to_fs(f"s3://{BUCKET}/x", endpoint_url=seaweed.endpoint_url)
    with pytest.raises(PermissionError, match="AWS_ACCESS_KEY_ID"):
        fs.cat_file(f"{path}/anything")


def test_a_read_only_identity_gets_permission_error_on_write(seaweed: SeaweedFS) -> None:
    fs, path = artifact_fs.url_to_fs(
        f"s3://{BUCKET}/ro",
        endpoint_url=seaweed.endpoint_url,
        key=seaweed.reader_access_key,
        secret=seaweed.reader_secret_key,
    )
    with pytest.raises(PermissionError, match="AccessDenied"):
        fs.pipe_file(f"{path}/denied.txt", b"no")


def test_a_missing_bucket_is_file_not_found(any_s3: BackendUnderTest) -> None:
    fs, _ = artifact_fs.url_to_fs(f"s3://{BUCKET}/x", **any_s3.storage_options)
    with pytest.raises(FileNotFoundError):
        fs.cat_file("no-such-bucket-af/key")
    with pytest.raises(FileNotFoundError):
        fs.pipe_file("no-such-bucket-af/key", b"data")


def test_an_unreachable_endpoint_fails_fast_with_connection_error() -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fs, path = artifact_fs.url_to_fs(f"s3://{BUCKET}/x", endpoint_url=closed, key="k", secret="s")
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        fs.cat_file(f"{path}/file")
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://127.0.0.1:9000/artifacts", "has a path"),
        ("s3://artifacts/prefix", "is an artifact URI"),
        ("127.0.0.1:9000", "not an http"),
        ("http://user:pw@127.0.0.1:9000", "carries credentials"),
    ],
)
def test_rejected_endpoint_forms_explain_the_fix(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        artifact_fs.backends.resolve("s3://bucket/x", {"MLFLOW_S3_ENDPOINT_URL": endpoint})
    with pytest.raises(ValueError, match=message):
        artifact_fs.url_to_fs("s3://bucket/x", endpoint_url=endpoint)


def test_a_root_that_repeats_the_endpoint_is_refused() -> None:
    environ = {"MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}
    with pytest.raises(ValueError, match="qualified twice"):
        artifact_fs.backends.resolve("s3://bucket/prefix/127.0.0.1:9000/bucket/prefix", environ)


# -- TLS and anonymous access ------------------------------------------------------------------------
def _tls_fs(seaweed: SeaweedFS, environ: dict[str, str]) -> tuple[Any, str]:
    environ = {"MLFLOW_S3_ENDPOINT_URL": seaweed.tls_endpoint_url, **environ}
    return artifact_fs.backends.resolve(
        f"s3://{BUCKET}/tls-{uuid.uuid4().hex[:8]}",
        environ,
        key=seaweed.access_key,
        secret=seaweed.secret_key,
    )


def test_tls_with_an_untrusted_certificate_fails(seaweed: SeaweedFS) -> None:
    fs, path = _tls_fs(seaweed, {})
    with pytest.raises(OSError, match="(?i)certificate|ssl"):
        fs.pipe_file(f"{path}/a.txt", b"tls")


def test_tls_with_the_ca_bundle_verifies(seaweed: SeaweedFS) -> None:
    fs, path = _tls_fs(seaweed, {"AWS_CA_BUNDLE": str(seaweed.certificates.ca_file)})
    fs.pipe_file(f"{path}/a.txt", b"verified")
    assert fs.cat_file(f"{path}/a.txt") == b"verified"


def test_tls_with_ignore_tls_skips_verification(seaweed: SeaweedFS) -> None:
    fs, path = _tls_fs(seaweed, {"MLFLOW_S3_IGNORE_TLS": "true"})
    fs.pipe_file(f"{path}/a.txt", b"unverified")
    assert fs.cat_file(f"{path}/a.txt") == b"unverified"


def test_ignore_tls_and_a_ca_bundle_together_are_refused(seaweed: SeaweedFS) -> None:
    with pytest.raises(ValueError, match="both set"):
        _tls_fs(seaweed, {"MLFLOW_S3_IGNORE_TLS": "true", "AWS_CA_BUNDLE": "/etc/ssl/certs/ca.pem"})


def test_unsigned_requests_read_a_public_bucket_only(seaweed: SeaweedFS) -> None:
    seaweed.create_bucket(PUBLIC_BUCKET)
    seaweed.client().put_object(Bucket=PUBLIC_BUCKET, Key="open/readme.txt", Body=b"public")
    environ = {
        "MLFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url,
        "MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION": "unsigned",
    }
    fs, path = artifact_fs.backends.resolve(f"s3://{PUBLIC_BUCKET}/open", environ)
    assert fs.cat_file(f"{path}/readme.txt") == b"public"
    assert fs.ls(path) == [f"{path}/readme.txt"]
    with pytest.raises(PermissionError, match="anonymous"):
        fs.cat_file(f"{BUCKET}/anything")


# -- presign hooks (what the artifact server calls) -------------------------------------------------------
@pytest.fixture
def presign_target(any_s3: BackendUnderTest) -> Iterator[tuple[Any, str, Any]]:
    url, _ = url_and_key(any_s3, "mpu.bin")
    fs, path = artifact_fs.url_to_fs(url, **any_s3.storage_options)
    yield fs, f"{path}/mpu.bin", any_s3.details["client"]()


def test_presigned_multipart_upload_with_real_part_puts(presign_target: tuple[Any, str, Any]) -> None:
    fs, path, _ = presign_target
    data = bytes(range(256)) * (TEST_PART_SIZE // 256) + b"tail"
    chunks = [data[:TEST_PART_SIZE], data[TEST_PART_SIZE:]]
    created = s3.create_multipart_upload(fs, path, len(chunks), {})
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    parts = []
    for credential, chunk in zip(created["credentials"], chunks, strict=True):
        response = requests.put(credential["url"], data=chunk, headers=credential["headers"], timeout=30)
        response.raise_for_status()
        parts.append(
            {
                "part_number": credential["part_number"],
                "etag": response.headers["ETag"],
                "url": credential["url"],
            }
        )
    s3.complete_multipart_upload(fs, path, created["upload_id"], parts, {})
    assert fs.cat_file(path) == data


@pytest.mark.parametrize("server", ["seaweedfs", "moto"])
def test_presigned_download_url_serves_ranges_as_an_attachment(
    server: str, request: pytest.FixtureRequest
) -> None:
    backend: BackendUnderTest = request.getfixturevalue(f"backend_s3_{server}")
    fs, path = artifact_fs.url_to_fs(backend.fresh_url(), **backend.storage_options)
    data = bytes(range(256)) * 64
    fs.pipe_file(f"{path}/ü model.bin", data)
    download = s3.presigned_download_url(fs, f"{path}/ü model.bin", 300, {})
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in download["url"]  # as MLflow's: SigV2 is refused
    assert download["file_size"] == len(data)
    ranged = requests.get(
        download["url"], headers={**download["headers"], "Range": "bytes=10-19"}, timeout=30
    )
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    whole = requests.get(download["url"], headers=download["headers"], timeout=30)
    assert whole.content == data
    assert whole.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''%C3%BC%20model.bin")


def test_an_aborted_presigned_upload_leaves_nothing(presign_target: tuple[Any, str, Any]) -> None:
    fs, path, client = presign_target
    created = s3.create_multipart_upload(fs, path, 2, {})
    credential = created["credentials"][0]
    requests.put(credential["url"], data=b"p" * TEST_PART_SIZE, timeout=30).raise_for_status()
    s3.abort_multipart_upload(fs, path, created["upload_id"], {})
    key = path.split("/", 1)[1]
    assert pending_uploads(client, key) == []
    assert not fs.exists(path)


def test_presigned_multipart_refuses_sse_c_keys(any_s3: BackendUnderTest) -> None:
    fs, path = artifact_fs.url_to_fs(
        any_s3.fresh_url(), **any_s3.storage_options, upload_extra_args={"SSECustomerKey": "k" * 32}
    )
    with pytest.raises(artifact_fs.errors.MultipartUnsupportedError, match="SSECustomerKey"):
        s3.create_multipart_upload(fs, f"{path}/x.bin", 2, {})


# -- columnar reads fetch only what they need ---------------------------------------------------------------
def test_read_parquet_fetches_only_the_needed_ranges(any_s3: BackendUnderTest, monkeypatch: Any) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"c{i}": rng.random(200_000) for i in range(10)})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, row_group_size=50_000)
    url, key = url_and_key(any_s3, "table.parquet")
    fs, path = artifact_fs.url_to_fs(url, **any_s3.storage_options)
    fs.pipe_file(f"{path}/table.parquet", buffer.getvalue())
    file_size = len(buffer.getvalue())

    # pandas resolves "s3://" through fsspec's registry; point it at artifact_fs's filesystem.
    from fsspec.registry import _registry

    monkeypatch.setitem(_registry, "s3", s3.ArtifactS3FileSystem)
    fetched = {"bytes": 0}
    original, original_into = s3.ArtifactS3File._fetch_range, s3.ArtifactS3File._fetch_range_into

    def counting(self: Any, start: int, end: int) -> bytes:  # every read, presigned or through the SDK
        data = original(self, start, end)
        fetched["bytes"] += len(data)
        return data

    def counting_into(self: Any, start: int, view: memoryview) -> bool:  # a large read, into pyarrow's buffer
        done = original_into(self, start, view)
        fetched["bytes"] += len(view) if done else 0
        return done

    monkeypatch.setattr(s3.ArtifactS3File, "_fetch_range", counting)
    monkeypatch.setattr(s3.ArtifactS3File, "_fetch_range_into", counting_into)
    options = {**any_s3.storage_options, "skip_instance_cache": True}
    result = pd.read_parquet(f"s3://{BUCKET}/{key}", columns=["c3"], storage_options=options)
    assert result["c3"].tolist() == frame["c3"].tolist()
    assert 0 < fetched["bytes"] < file_size / 3, (fetched["bytes"], file_size)


# -- artifact_fs.register(clobber=True): plain fsspec follows MLflow's variables --------------------------
def test_register_clobber_makes_plain_fsspec_follow_mlflow_variables(
    seaweed: SeaweedFS, monkeypatch: Any
) -> None:
    import fsspec
    import s3fs

    for name, value in {
        "MLFLOW_S3_ENDPOINT_URL": seaweed.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
    }.items():
        monkeypatch.setenv(name, value)
    url = f"s3://{BUCKET}/registered/{uuid.uuid4().hex[:12]}/note.txt"

    artifact_fs.register(clobber=True)
    try:
        # No storage options: the endpoint and keys come from MLflow's variables alone.
        with fsspec.open(url, "wb") as handle:
            handle.write(b"via plain fsspec")
        fs, path = fsspec.url_to_fs(url)
        assert isinstance(fs, s3.ArtifactS3FileSystem)
        assert fs.cat_file(path) == b"via plain fsspec"
        with pytest.raises(ValueError, match="configured from a URL"):
            fsspec.filesystem("s3")
    finally:
        artifact_fs.unregister()
    assert fsspec.get_filesystem_class("s3") is s3fs.S3FileSystem
    fs, path = fsspec.url_to_fs(url, endpoint_url=seaweed.endpoint_url)
    assert type(fs) is s3fs.S3FileSystem
    assert fs.cat_file(path) == b"via plain fsspec"  # fsspec's own class reads what ours wrote
    fs.rm(path)
