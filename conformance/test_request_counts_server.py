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

import artifact_fs
from conformance.backends.mlflow_artifacts import CLIENT_OPTIONS
from conformance.backends.s3 import BUCKET
from conformance.helpers import MLFLOW_ARTIFACTS, RequestCountingProxy, mlflow_artifacts_kind, random_bytes
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.seaweedfs import SeaweedFS
from conformance.test_s3_small_requests import presigned_or_sdk_kind

pytestmark = [pytest.mark.server, pytest.mark.s3]

COLUMN_BYTES_LIMIT = 1.2


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
    store = RequestCountingProxy(
        int(seaweedfs_server.endpoint_url.rsplit(":", 1)[1]), classify=presigned_or_sdk_kind
    )
    environ = {**seaweedfs_server.environ(), "MLFLOW_S3_ENDPOINT_URL": store.url}
    server = start_artifact_server(
        server_log_dir, f"s3://{BUCKET}/through-server", env=environ, name="artifact-server-counted"
    )
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


def test_small_files_downloaded_through_the_server_cost_s3_one_presigned_head_and_get_each(
    legs: Legs, seaweedfs_server: SeaweedFS, tmp_path: Path
) -> None:
    """The server opens each file with one HEAD, which also brings the record the object carries
    (logged by artifact_fs directly: no hidden-record GET), and reads it with one GET, both
    presigned (a third of botocore's CPU each). It used to be an SDK HEAD, a record GET and an SDK GET.
    The client asks for all of them in one batch request (a tar stream)."""
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
    assert per_file == {"url-head": files, "url-get": files}, store_kinds


def test_small_files_uploaded_through_the_server_are_one_presigned_put_carrying_their_record(
    legs: Legs, tmp_path: Path
) -> None:
    """The server writes a small artifact as one presigned PUT whose metadata carries the record it
    computed (beside the hidden record), so serving it back is a HEAD and a GET, no record read."""
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
    assert per_file == {"url-head": files, "url-get": files}, downloaded
