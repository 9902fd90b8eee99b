"""S3 on SeaweedFS (auth enforced, the recommended S3-compatible server) and on moto (AWS semantics).

Both run the whole generic suite with a 5 MiB part size (S3's minimum), so anything above 10 MiB
takes the multipart path. SeaweedFS keeps an emptied prefix listed until its asynchronous folder
cleanup runs (seaweedfs#9810 / #6211); the backend deletes the emptied folders' entries after a
recursive delete, so both servers run with the same capabilities and no xfail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from artifact_fs import settings
from artifact_fs.backends import s3
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers.moto import MotoServer, start_moto
from conformance.servers.seaweedfs import SeaweedFS, start_seaweedfs

BUCKET = "artifacts"
TEST_PART_SIZE = settings.S3_MIN_PART
"""The smallest part S3 allows, so a few MiB already exercise multipart uploads."""

SEAWEEDFS = BackendSpec(id="s3-seaweedfs", mark="s3", capabilities=s3.CAPABILITIES)
MOTO = BackendSpec(id="s3-moto", mark="s3", capabilities=s3.CAPABILITIES)
SPECS = [SEAWEEDFS, MOTO]


def storage_options(server: SeaweedFS | MotoServer) -> dict[str, object]:
    return {
        "endpoint_url": server.endpoint_url,
        "key": server.access_key,
        "secret": server.secret_key,
        "chunk_size": TEST_PART_SIZE,
    }


def environ(server: SeaweedFS | MotoServer) -> dict[str, str]:
    return {**server.environ(), "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(TEST_PART_SIZE)}


@pytest.fixture(scope="session")
def seaweedfs_server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = start_seaweedfs(server_log_dir, tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server(server_log_dir: Path) -> Iterator[MotoServer]:
    server = start_moto(server_log_dir)
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def backend_s3_seaweedfs(seaweedfs_server: SeaweedFS) -> BackendUnderTest:
    return BackendUnderTest(
        spec=SEAWEEDFS,
        root_url=f"s3://{BUCKET}/suite",
        storage_options=storage_options(seaweedfs_server),
        environ=environ(seaweedfs_server),
        details={"server": seaweedfs_server, "bucket": BUCKET, "client": seaweedfs_server.client},
    )


@pytest.fixture(scope="session")
def backend_s3_moto(moto_server: MotoServer) -> BackendUnderTest:
    return BackendUnderTest(
        spec=MOTO,
        root_url=f"s3://{BUCKET}/suite",
        storage_options=storage_options(moto_server),
        environ=environ(moto_server),
        details={"server": moto_server, "bucket": BUCKET, "client": moto_server.client},
    )
