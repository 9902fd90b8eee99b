"""Proxied transfers against a real ``mlflow server``: multipart upload, abort, ranged and presigned reads.

Every claim is checked on the server's side: the S3 object's part count, the server's access log,
the bytes a :class:`CountingProxy` saw on the wire, the store's leftover multipart uploads.
"""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

import fsspec
import pytest

import artifact_fs
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from conformance.backends.mlflow_artifacts import BUCKET, PART_SIZE
from conformance.harness import BackendUnderTest
from conformance.servers.mlflow_server import CountingProxy, MlflowServer

pytestmark = pytest.mark.mlflow_artifacts


def _fresh(backend: BackendUnderTest) -> tuple[MlflowArtifactsFileSystem, str, str]:
    url = backend.fresh_url()
    fs, root = artifact_fs.url_to_fs(url, **backend.storage_options)
    assert isinstance(fs, MlflowArtifactsFileSystem)
    return fs, root, url


def _log_lines(server: MlflowServer, needle: str) -> list[str]:
    return [line for line in server.log_text().splitlines() if needle in line]


class FailingAfter(io.RawIOBase):
    """A readable source that fails once reading passes ``limit`` (a part that cannot be read)."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__()
        self.data, self.limit, self.position = data, limit, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset
        return offset

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        if self.position + max(size, 0) > self.limit:
            raise OSError("disk read failed while uploading a part")
        chunk = self.data[self.position : self.position + size]
        self.position += len(chunk)
        return chunk


def test_large_write_goes_through_mpu_with_presigned_parts(
    backend_mlflow_server_s3: BackendUnderTest,
) -> None:
    backend = backend_mlflow_server_s3
    server: MlflowServer = backend.details["server"]
    fs, root, _ = _fresh(backend)
    data = os.urandom(2 * PART_SIZE + 123)
    path = f"{root}/model/big.bin"

    fs.pipe_file(path, data)

    head = backend.details["seaweedfs"].client().head_object(Bucket=BUCKET, Key=path)
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # three parts in S3
    directory = path.rsplit("/", 1)[0]
    assert _log_lines(server, f"/mlflow-artifacts/mpu/create/{directory}")
    assert _log_lines(server, f"/mlflow-artifacts/mpu/complete/{directory}")
    assert not _log_lines(server, f"PUT /api/2.0/mlflow-artifacts/artifacts/{path}")
    assert fs.cat_file(path) == data
    assert fs.info(path) == {"name": path, "size": len(data), "type": "file"}


def test_put_file_streams_a_local_file_through_mpu(
    backend_mlflow_server_s3: BackendUnderTest, tmp_path: Any
) -> None:
    fs, root, _ = _fresh(backend_mlflow_server_s3)
    local = tmp_path / "weights.bin"
    local.write_bytes(os.urandom(PART_SIZE + 1))
    fs.put_file(str(local), f"{root}/weights.bin")
    downloaded = tmp_path / "back.bin"
    fs.get_file(f"{root}/weights.bin", str(downloaded))
    assert downloaded.read_bytes() == local.read_bytes()


def test_small_write_is_one_proxied_put(backend_mlflow_server_s3: BackendUnderTest) -> None:
    server: MlflowServer = backend_mlflow_server_s3.details["server"]
    fs, root, _ = _fresh(backend_mlflow_server_s3)
    fs.pipe_file(f"{root}/small.txt", b"hello")
    assert _log_lines(server, f"PUT /api/2.0/mlflow-artifacts/artifacts/{root}/small.txt")
    assert fs.cat_file(f"{root}/small.txt") == b"hello"


def test_a_failed_part_aborts_the_upload_and_leaves_nothing(
    backend_mlflow_server_s3: BackendUnderTest,
) -> None:
    backend = backend_mlflow_server_s3
    server: MlflowServer = backend.details["server"]
    s3 = backend.details["seaweedfs"].client()
    fs, root, _ = _fresh(backend)
    size = 3 * PART_SIZE
    path = f"{root}/broken/big.bin"

    with pytest.raises(OSError, match="disk read failed"):
        fs.upload(path, FailingAfter(os.urandom(size), limit=2 * PART_SIZE), size)

    assert _log_lines(server, f"/mlflow-artifacts/mpu/abort/{root}/broken")
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=root).get("Uploads", [])
    assert uploads == []
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=root).get("KeyCount", 0) == 0
    assert not fs.exists(path)


def test_a_write_that_raises_inside_with_leaves_nothing(backend_mlflow_server_s3: BackendUnderTest) -> None:
    fs, root, _ = _fresh(backend_mlflow_server_s3)
    with pytest.raises(RuntimeError), fs.open(f"{root}/partial.bin", "wb") as handle:
        handle.write(b"x" * 1000)
        raise RuntimeError("the producer failed")
    assert not fs.exists(f"{root}/partial.bin")


def test_501_from_mpu_create_falls_back_to_a_single_put(
    backend_mlflow_server_local: BackendUnderTest,
) -> None:
    """MLflow's local repository cannot do MPU: a client that forces it still uploads, by PUT."""
    backend = backend_mlflow_server_local
    server: MlflowServer = backend.details["server"]
    url = backend.fresh_url()
    fs, root = artifact_fs.url_to_fs(url, **backend.storage_options, enable_multipart_upload=True)
    data = os.urandom(PART_SIZE + 10)
    fs.pipe_file(f"{root}/dir/big.bin", data)
    create = _log_lines(server, f"/mlflow-artifacts/mpu/create/{root}/dir")
    assert create and " 501" in create[-1]
    assert _log_lines(server, f"PUT /api/2.0/mlflow-artifacts/artifacts/{root}/dir/big.bin")
    assert fs.cat_file(f"{root}/dir/big.bin") == data


def test_range_reads_fetch_only_the_range_where_the_server_honours_range(
    backend_mlflow_server_local: BackendUnderTest,
) -> None:
    backend = backend_mlflow_server_local
    proxy: CountingProxy = backend.details["local_proxy"]
    fs, root, _ = _fresh(backend)
    data = os.urandom(4 * 1024 * 1024)
    fs.pipe_file(f"{root}/blob.bin", data)
    proxy.reset()
    assert fs.cat_file(f"{root}/blob.bin", 1000, 2000) == data[1000:2000]
    assert fs.proxy_honours_range is True
    assert proxy.downstream < 4096
    assert fs.cat_file(f"{root}/blob.bin", -10) == data[-10:]
    assert fs.cat_file(f"{root}/blob.bin", len(data) + 5, len(data) + 10) == b""


def test_a_server_that_ignores_range_still_gives_exact_bytes(
    backend_mlflow_server_s3: BackendUnderTest,
) -> None:
    """MLflow's proxy GET over S3 downloads the object whole and streams it, ignoring ``Range``."""
    backend = backend_mlflow_server_s3
    url = backend.fresh_url()
    fs, root = artifact_fs.url_to_fs(url, **backend.storage_options, enable_multipart_download=False)
    data = os.urandom(3 * 1024 * 1024 + 17)
    fs.pipe_file(f"{root}/blob.bin", data)
    assert fs.cat_file(f"{root}/blob.bin", 5, 105) == data[5:105]
    assert fs.proxy_honours_range is False
    with fs.open(f"{root}/blob.bin", "rb", block_size=1024 * 1024) as handle:
        handle.seek(1_000_000)
        assert handle.read(10) == data[1_000_000:1_000_010]
        assert handle.read(2_000_000) == data[1_000_010:3_000_010]
        handle.seek(10)  # backwards: a new stream
        assert handle.read(5) == data[10:15]
        assert handle.read() == data[15:]


@pytest.fixture
def parquet_frame() -> Any:
    pd = pytest.importorskip("pandas")
    import numpy as np

    generator = np.random.default_rng(7)
    return pd.DataFrame({f"c{i}": generator.random(300_000) for i in range(8)})


def _check_parquet_column_read(
    frame: Any, backend: BackendUnderTest, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> int:
    import pandas as pd

    fs, root, _ = _fresh(backend)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, row_group_size=100_000)
    fs.pipe_file(f"{root}/data.parquet", buffer.getvalue())
    size = len(buffer.getvalue())

    monkeypatch.setenv("MLFLOW_TRACKING_URI", backend.environ["MLFLOW_TRACKING_URI"])
    MlflowArtifactsFileSystem.clear_instance_cache()
    proxy.reset()
    # Plain pandas + fsspec: no artifact_fs import needed, the entry point finds the filesystem.
    # pandas hands only "scheme://" URLs to fsspec, so the empty-authority form mlflow-artifacts:///
    # (the same location as mlflow-artifacts:/ for MLflow) is the one pandas can take as a string.
    column = pd.read_parquet(f"mlflow-artifacts:///{root}/data.parquet", columns=["c3"])
    fetched = proxy.downstream
    with fsspec.open(f"mlflow-artifacts:/{root}/data.parquet", "rb", protocol="mlflow-artifacts") as handle:
        pd.testing.assert_frame_equal(pd.read_parquet(handle, columns=["c3"]), column)
    full = pd.read_parquet(io.BytesIO(fs.cat_file(f"{root}/data.parquet")))
    pd.testing.assert_frame_equal(column, full[["c3"]])
    assert fetched < size / 3, (fetched, size)
    MlflowArtifactsFileSystem.clear_instance_cache()
    return size


def test_parquet_column_read_uses_presigned_ranges(
    backend_mlflow_server_s3: BackendUnderTest, parquet_frame: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_mlflow_server_s3
    server: MlflowServer = backend.details["server"]
    _check_parquet_column_read(parquet_frame, backend, backend.details["s3_proxy"], monkeypatch)
    assert _log_lines(server, "GET /api/2.0/mlflow-artifacts/presigned/")


def test_parquet_column_read_uses_range_on_the_proxy(
    backend_mlflow_server_local: BackendUnderTest, parquet_frame: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_mlflow_server_local
    _check_parquet_column_read(parquet_frame, backend, backend.details["local_proxy"], monkeypatch)


def test_pyarrow_reads_through_the_fsspec_filesystem(
    backend_mlflow_server_local: BackendUnderTest, parquet_frame: Any
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    fs, root, _ = _fresh(backend_mlflow_server_local)
    table = pa.Table.from_pandas(parquet_frame.head(1000))
    with fs.open(f"{root}/t.parquet", "wb") as handle:
        pq.write_table(table, handle)
    read = pq.read_table(f"{root}/t.parquet", filesystem=fs, columns=["c1"])
    assert read.column("c1").equals(table.column("c1"))


def test_fsspec_open_on_an_mlflow_artifacts_url(
    backend_mlflow_server_s3: BackendUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_mlflow_server_s3
    fs, root, _ = _fresh(backend)
    fs.pipe_file(f"{root}/a.txt", b"abc")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", backend.environ["MLFLOW_TRACKING_URI"])
    MlflowArtifactsFileSystem.clear_instance_cache()
    try:
        # fsspec recognises only "scheme://" URLs; MLflow's single-slash form needs protocol=.
        with fsspec.open(f"mlflow-artifacts:/{root}/a.txt", "rb", protocol="mlflow-artifacts") as handle:
            assert handle.read() == b"abc"
        with fsspec.open(f"mlflow-artifacts:///{root}/a.txt", "rb") as handle:
            assert handle.read() == b"abc"
        server = backend.details["server"]
        authority = f"mlflow-artifacts://127.0.0.1:{server.port}/{root}/a.txt"
        with fsspec.open(authority, "rb") as handle:
            assert handle.read() == b"abc"
    finally:
        MlflowArtifactsFileSystem.clear_instance_cache()


def test_listing_and_deleting_a_tree(backend_mlflow_server_s3: BackendUnderTest) -> None:
    fs, root, _ = _fresh(backend_mlflow_server_s3)
    for name in ("a.txt", "sub/b.txt", "sub/deeper/c.txt"):
        fs.pipe_file(f"{root}/{name}", name.encode())
    assert fs.ls(root, detail=False) == [f"{root}/a.txt", f"{root}/sub"]
    assert fs.ls(f"{root}/a.txt", detail=False) == [f"{root}/a.txt"]  # a file lists as itself
    assert sorted(fs.find(root)) == [f"{root}/a.txt", f"{root}/sub/b.txt", f"{root}/sub/deeper/c.txt"]
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{root}/missing-{uuid.uuid4().hex}")
    fs.rm(f"{root}/sub", recursive=True)  # one server-side recursive DELETE
    server: MlflowServer = backend_mlflow_server_s3.details["server"]
    assert len(_log_lines(server, f"DELETE /api/2.0/mlflow-artifacts/artifacts/{root}/sub ")) == 1
    # SeaweedFS keeps an emptied prefix listed for a while (servers.md §1a), so check the objects.
    assert fs.find(root) == [f"{root}/a.txt"]
