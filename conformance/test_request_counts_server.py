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
from conformance.helpers import MLFLOW_ARTIFACTS, RequestCountingProxy, mlflow_artifacts_kind, s3_kind
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.seaweedfs import SeaweedFS

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
    store = RequestCountingProxy(int(seaweedfs_server.endpoint_url.rsplit(":", 1)[1]), classify=s3_kind)
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

    client_bytes, store_bytes = legs.client.received["download"], legs.store.received["get"]
    client_kinds, store_kinds = legs.client.reset(), legs.store.reset()
    assert read.column("c0").equals(table.column("c0"))
    print(
        f"\ncolumn {column} B; legs: client {client_bytes / column:.2f}x, store {store_bytes / column:.2f}x"
    )
    assert client_bytes <= COLUMN_BYTES_LIMIT * column, (client_bytes, column, client_kinds)
    assert store_bytes <= COLUMN_BYTES_LIMIT * column, (store_bytes, column, store_kinds)
