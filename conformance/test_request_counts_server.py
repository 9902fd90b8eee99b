"""Bytes on both legs of a read through ``artifact-fs serve`` with an S3 destination (issue #13 item 4).

Two counting relays: one between artifact_fs's client and the server, one between the server and
SeaweedFS. A one-column Parquet read must move at most 1.2x the column's bytes on each leg (the
server used to read ahead 4 MiB per ranged request), and a proxied upload reaches S3 as its parts.
No timing is asserted.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

import artifact_fs
from conformance.backends.mlflow_artifacts import CLIENT_OPTIONS
from conformance.backends.s3 import BUCKET
from conformance.helpers import (
    BEYOND_FOOTER_LIMIT,
    COLUMN_BYTES_LIMIT,
    MLFLOW_ARTIFACTS,
    RequestCountingProxy,
    column_bytes_beyond_footer,
    mlflow_artifacts_kind,
    random_bytes,
)
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.seaweedfs import SeaweedFS
from conformance.test_s3_small_requests import presigned_or_sdk_kind

pytestmark = [pytest.mark.server, pytest.mark.s3]


class Legs:
    """The server, the relay in front of it (``client``), and the relay in front of S3 (``store``)."""

    def __init__(
        self, server: ArtifactServer, client: RequestCountingProxy, store: RequestCountingProxy
    ) -> None:
        self.server = server
        self.client = client
        self.store = store

    def url(self, path: str) -> str:
        return f"{self.client.url}{MLFLOW_ARTIFACTS}/{path}"


@pytest.fixture(scope="module")
def legs(server_log_dir: Path, seaweedfs_server: SeaweedFS) -> Iterator[Legs]:
    yield from _legs(server_log_dir, seaweedfs_server, "artifact-server-counted")


@pytest.fixture(scope="module")
def presigned_legs(server_log_dir: Path, seaweedfs_server: SeaweedFS) -> Iterator[Legs]:
    """The same, with presigned downloads advertised: its URLs point at the store's relay."""
    yield from _legs(
        server_log_dir,
        seaweedfs_server,
        "artifact-server-counted-presigned",
        MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD="true",
    )


def _legs(server_log_dir: Path, seaweedfs_server: SeaweedFS, name: str, **environ: str) -> Iterator[Legs]:
    store = RequestCountingProxy(
        int(seaweedfs_server.endpoint_url.rsplit(":", 1)[1]), classify=presigned_or_sdk_kind
    )
    environ = {**seaweedfs_server.environ(), "MLFLOW_S3_ENDPOINT_URL": store.url, **environ}
    server = start_artifact_server(server_log_dir, f"s3://{BUCKET}/through-server", env=environ, name=name)
    client = RequestCountingProxy(server.port, classify=mlflow_artifacts_kind)
    try:
        yield Legs(server, client, store)
    finally:
        client.stop()
        server.stop()
        store.stop()


def test_one_parquet_column_through_the_server_moves_at_most_1_2x_its_bytes_on_each_leg(legs: Legs) -> None:
    rng = np.random.default_rng(1)
    table = pa.table({f"c{i}": rng.random(400_000) for i in range(6)})  # 6 x 3.2 MB columns
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="none")
    fs, path = artifact_fs.url_to_fs(
        legs.url(f"{uuid.uuid4().hex[:12]}/wide.parquet"), skip_instance_cache=True, **CLIENT_OPTIONS
    )
    fs.pipe_file(path, buffer.getvalue())
    metadata = pq.ParquetFile(io.BytesIO(buffer.getvalue())).metadata
    column = sum(
        metadata.row_group(group).column(0).total_compressed_size for group in range(metadata.num_row_groups)
    )
    legs.client.reset()
    legs.store.reset()

    read = pq.read_table(path, columns=["c0"], filesystem=fs)

    client_bytes = legs.client.received["download"]
    store_bytes = legs.store.received["get"] + legs.store.received["url-get"]
    client_kinds, store_kinds = legs.client.reset(), legs.store.reset()
    assert read.column("c0").equals(table.column("c0"))
    print(
        f"\ncolumn {column} B; legs: client {client_bytes / column:.2f}x, store {store_bytes / column:.2f}x"
    )
    assert client_bytes <= COLUMN_BYTES_LIMIT * column, (client_bytes, column, client_kinds)
    assert store_bytes <= COLUMN_BYTES_LIMIT * column, (store_bytes, column, store_kinds)
    # each range as pyarrow asked it, on both legs: no read-ahead block past it (block-readahead)
    beyond = column_bytes_beyond_footer(client_bytes, column)
    assert beyond <= BEYOND_FOOTER_LIMIT, (client_bytes, column, client_kinds)
    beyond = column_bytes_beyond_footer(store_bytes, column)
    assert beyond <= BEYOND_FOOTER_LIMIT, (store_bytes, column, store_kinds)


@pytest.mark.parametrize("route", ["legs", "presigned_legs"])
def test_a_large_read_through_the_server_is_one_get_into_the_callers_memory(
    route: str, request: pytest.FixtureRequest
) -> None:
    """Once the first ranged read has shown ranges work, a read of a block or more is one GET
    written into the caller's buffer (``readinto``) or a pyarrow buffer (``read_buffer``), proxied
    or presigned; the store moves those bytes and no more."""
    legs: Legs = request.getfixturevalue(route)
    fs, path = artifact_fs.url_to_fs(
        legs.url(f"{uuid.uuid4().hex[:12]}/weights.bin"), skip_instance_cache=True, **CLIENT_OPTIONS
    )
    data = random_bytes(3 * 1024 * 1024, seed=43)
    fs.pipe_file(path, data)
    legs.client.reset()
    legs.store.reset()
    with fs.open(path, "rb") as handle:
        assert handle.read(10) == data[:10]  # a short read: one block through the cache
        handle.seek(handle.blocksize)
        into = bytearray(2 * handle.blocksize)
        assert handle.readinto(into) == len(into)
        assert into == data[handle.blocksize : 3 * handle.blocksize]
        chunk = handle.read_buffer(len(data))
        assert isinstance(chunk, pa.Buffer)
        assert chunk.to_pybytes() == data[3 * handle.blocksize :]
    store_bytes = legs.store.received["get"] + legs.store.received["url-get"]
    client_kinds, store_kinds = legs.client.reset(), legs.store.reset()
    # the open's one listing; three GETs, proxied or on the one presigned URL the client asked for
    expected = {"download": 3} if route == "legs" else {"presigned": 1}
    assert client_kinds == {"list": 1, **expected}, client_kinds
    assert store_kinds["url-get"] + store_kinds["get"] == 3, store_kinds
    assert store_bytes == len(data), store_bytes


def test_small_files_downloaded_through_the_server_cost_s3_one_presigned_get_each(
    legs: Legs, seaweedfs_server: SeaweedFS, tmp_path: Path
) -> None:
    """The client asks for all of them in one batch request (a tar stream); the server reads each
    with one presigned GET on the store's loop, whose headers name the version (ETag, size) and
    bring the record the object carries (logged by artifact_fs directly: no hidden-record GET).
    It used to be an SDK HEAD, a record GET and an SDK GET, then a presigned HEAD and GET."""
    files = 24
    expected = {f"d{i % 3}/f{i}.bin": random_bytes(5000 + i, seed=i) for i in range(files)}
    for name, data in expected.items():
        (tmp_path / "source" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "source" / name).write_bytes(data)
    prefix = uuid.uuid4().hex[:12]
    artifact_fs.ArtifactStore(
        f"s3://{BUCKET}/through-server/{prefix}",
        endpoint_url=seaweedfs_server.endpoint_url,
        key=seaweedfs_server.access_key,
        secret=seaweedfs_server.secret_key,
        skip_instance_cache=True,
    ).log_artifacts(str(tmp_path / "source"))
    served = artifact_fs.ArtifactStore(legs.url(prefix), skip_instance_cache=True, **CLIENT_OPTIONS)
    (tmp_path / "out").mkdir()
    legs.client.reset()
    legs.store.reset()

    served.download_artifacts("", str(tmp_path / "out"))

    client_kinds, store_kinds = legs.client.reset(), legs.store.reset()
    out = tmp_path / "out"
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.bin")} == expected
    assert client_kinds["download"] == 0 and client_kinds["batch"] == 1, client_kinds  # one tar stream
    per_file = {kind: count for kind, count in store_kinds.items() if kind != "list"}
    assert per_file == {"url-get": files}, store_kinds


def test_small_files_uploaded_through_the_server_are_one_presigned_put_carrying_their_record(
    legs: Legs, tmp_path: Path
) -> None:
    """The server writes a small artifact as one presigned PUT whose metadata carries the record it
    computed (beside the hidden record), so serving it back in a batch is one GET, no record read."""
    files = 24
    expected = {f"d{i % 3}/f{i}.bin": random_bytes(7000 + i, seed=100 + i) for i in range(files)}
    for name, data in expected.items():
        (tmp_path / "source" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "source" / name).write_bytes(data)
    store = artifact_fs.ArtifactStore(
        legs.url(uuid.uuid4().hex[:12]), skip_instance_cache=True, **CLIENT_OPTIONS
    )
    legs.store.reset()

    store.log_artifacts(str(tmp_path / "source"))

    uploaded = legs.store.reset()
    assert uploaded == {"url-put": files, "url-digest-put": files}, uploaded
    (tmp_path / "out").mkdir()
    store.download_artifacts("", str(tmp_path / "out"))
    downloaded = legs.store.reset()
    out = tmp_path / "out"
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.bin")} == expected
    per_file = {kind: count for kind, count in downloaded.items() if kind != "list"}
    assert per_file == {"url-get": files}, downloaded


MIB = 1024 * 1024


def _direct_store(seaweedfs_server: SeaweedFS, prefix: str) -> artifact_fs.ArtifactStore:
    return artifact_fs.ArtifactStore(
        f"s3://{BUCKET}/through-server/{prefix}",
        endpoint_url=seaweedfs_server.endpoint_url,
        key=seaweedfs_server.access_key,
        secret=seaweedfs_server.secret_key,
        skip_instance_cache=True,
    )


def test_a_large_answer_through_the_server_is_one_get_to_s3(legs: Legs, seaweedfs_server: SeaweedFS) -> None:
    """A streamed answer (larger than the server's 4 MiB chunk) is one GET of exactly its bytes,
    pinned to the version its HEAD saw, not one GET per chunk: a whole 21 MiB file, a 10 MiB range,
    and artifact_fs's client downloading it as 16 MiB ranges (two answers, two GETs). (The file was
    written without a record, so each answer also looks for the hidden one: not counted here.)"""
    prefix = uuid.uuid4().hex[:12]
    data = random_bytes(21 * MIB, seed=13)
    _direct_store(seaweedfs_server, prefix).fs.pipe_file("big.bin", data)
    url = legs.url(f"{prefix}/big.bin")
    legs.client.reset()
    legs.store.reset()

    whole = requests.get(url, timeout=60)
    whole_bytes = legs.store.received["get"] + legs.store.received["url-get"]
    whole_kinds = legs.store.reset()
    assert whole.status_code == 200 and whole.content == data
    assert whole_kinds["get"] + whole_kinds["url-get"] == 1, whole_kinds
    assert whole_bytes == len(data), (whole_bytes, whole_kinds)

    legs.store.reset()
    part = requests.get(url, headers={"Range": f"bytes={5 * MIB}-{15 * MIB - 1}"}, timeout=60)
    store_bytes = legs.store.received["get"] + legs.store.received["url-get"]
    part_kinds = legs.store.reset()
    assert part.status_code == 206 and part.content == data[5 * MIB : 15 * MIB]
    assert part_kinds["get"] + part_kinds["url-get"] == 1, part_kinds
    assert store_bytes == 10 * MIB, (store_bytes, part_kinds)

    served = artifact_fs.ArtifactStore(legs.url(prefix), skip_instance_cache=True, **CLIENT_OPTIONS)
    legs.client.reset()
    legs.store.reset()
    local = served.download_artifacts("big.bin")
    client_kinds, store_kinds = legs.client.reset(), legs.store.reset()
    assert Path(local).read_bytes() == data
    assert client_kinds["download"] == 2, client_kinds
    assert store_kinds["get"] + store_kinds["url-get"] == 2, store_kinds


def test_a_large_download_with_presigned_urls_goes_to_s3_in_ranges_and_not_through_the_server(
    presigned_legs: Legs, seaweedfs_server: SeaweedFS
) -> None:
    """With presigned downloads advertised, artifact_fs's client asks the server once for a URL and
    reads the file's 16 MiB ranges from S3 itself: no body crosses the server. SeaweedFS checks the
    URL's SigV4 signature, ``response-content-disposition`` included (it refused the SigV2 URLs
    botocore mints when the signature version is left unnamed)."""
    legs = presigned_legs
    prefix = uuid.uuid4().hex[:12]
    data = random_bytes(21 * MIB, seed=17)
    _direct_store(seaweedfs_server, prefix).fs.pipe_file("big.bin", data)
    served = artifact_fs.ArtifactStore(legs.url(prefix), skip_instance_cache=True, **CLIENT_OPTIONS)
    legs.client.reset()
    legs.store.reset()
    local = served.download_artifacts("big.bin")
    client_bytes = legs.client.received["download"]
    ranged_bytes = legs.store.received["url-get"]
    client_kinds, store_kinds = legs.client.reset(), legs.store.reset()
    assert Path(local).read_bytes() == data
    assert client_kinds["presigned"] == 1 and client_kinds["download"] == 0, client_kinds
    assert client_bytes == 0
    assert store_kinds["url-get"] == 2 and store_kinds["get"] == 0, store_kinds
    assert ranged_bytes == len(data), (ranged_bytes, store_kinds)


def test_a_streamed_answer_is_pinned_to_the_version_the_server_opened(seaweedfs_server: SeaweedFS) -> None:
    """The version stream behind a streamed answer reads the version ``open_version`` described:
    the object replaced in between fails the read (``If-Match``) instead of sending other bytes."""
    from fsspec.asyn import sync

    store = _direct_store(seaweedfs_server, uuid.uuid4().hex[:12])
    store.fs.pipe_file("swap.bin", random_bytes(9 * MIB, seed=1))
    handle, info = store.open_version("swap.bin")
    handle.close()

    def read(start: int, length: int) -> bytes:
        opened = store.version_stream("swap.bin", info, start, length, MIB)
        assert opened is not None
        pieces, loop = opened

        async def gather() -> bytes:
            return b"".join([piece async for batch in pieces for piece in batch])

        return sync(loop, gather)

    assert read(MIB, 5 * MIB) == random_bytes(9 * MIB, seed=1)[MIB : 6 * MIB]
    store.fs.pipe_file("swap.bin", random_bytes(9 * MIB, seed=2))
    with pytest.raises(OSError) as caught:
        read(0, 9 * MIB)
    assert not isinstance(caught.value, FileNotFoundError)


def test_a_client_that_leaves_mid_answer_leaves_the_server_serving(
    legs: Legs, seaweedfs_server: SeaweedFS
) -> None:
    """A client that reads 1 MiB of a streamed 21 MiB answer and hangs up ends the server's GET
    (the store's loop stops it); the server answers the next requests whole."""
    prefix = uuid.uuid4().hex[:12]
    data = random_bytes(21 * MIB, seed=14)
    _direct_store(seaweedfs_server, prefix).fs.pipe_file("big.bin", data)
    url = f"http://127.0.0.1:{legs.server.port}{MLFLOW_ARTIFACTS}/{prefix}/big.bin"
    for _ in range(5):
        with requests.get(url, stream=True, timeout=60) as response:
            assert response.status_code == 200
            assert len(next(response.iter_content(MIB))) > 0
    again = requests.get(url, timeout=60)
    assert again.status_code == 200 and again.content == data
