"""Stateless: a multipart upload created through one server process completes through another.

Two ``artifact-fs serve`` processes share one S3 (SeaweedFS) destination and nothing else, as
replicas behind a load balancer would; a third runs ``--workers 2``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conformance.backends.artifact_server import S3_PREFIX, s3_destination_environ
from conformance.backends.s3 import BUCKET
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.seaweedfs import SeaweedFS

pytestmark = [pytest.mark.server, pytest.mark.s3]

MIB = 1024 * 1024
API = "/api/2.0/mlflow-artifacts"


@pytest.fixture(scope="module")
def second_replica(server_log_dir: Path, seaweedfs_server: SeaweedFS) -> Iterator[ArtifactServer]:
    server = start_artifact_server(
        server_log_dir,
        f"s3://{BUCKET}/{S3_PREFIX}",
        env=s3_destination_environ(seaweedfs_server),
        workers=2,
        name="artifact-server-replica",
    )
    try:
        yield server
    finally:
        server.stop()


def test_multipart_upload_created_on_one_replica_completes_on_another(
    artifact_server_seaweedfs: ArtifactServer, second_replica: ArtifactServer, seaweedfs_server: SeaweedFS
) -> None:
    parts = [bytes([n]) * (5 * MIB) for n in range(1, 3)] + [b"tail" * 1000]
    directory = "replicas/run/artifacts"
    create = requests.post(
        f"{artifact_server_seaweedfs.url}{API}/mpu/create/{directory}",
        json={"path": "model.bin", "num_parts": len(parts)},
        timeout=60,
    )
    create.raise_for_status()
    body = create.json()
    assert [c["part_number"] for c in body["credentials"]] == [1, 2, 3]
    uploaded = []
    for credential, data in zip(body["credentials"], parts, strict=True):
        put = requests.put(credential["url"], data=data, headers=credential.get("headers", {}), timeout=60)
        put.raise_for_status()
        uploaded.append(
            {"part_number": credential["part_number"], "etag": put.headers["ETag"], "url": credential["url"]}
        )
    complete = requests.post(
        f"{second_replica.url}{API}/mpu/complete/{directory}",
        json={"path": "model.bin", "upload_id": body["upload_id"], "parts": uploaded},
        timeout=60,
    )
    assert complete.status_code == 200, complete.text
    whole = b"".join(parts)
    for server in (artifact_server_seaweedfs, second_replica):
        download = requests.get(f"{server.artifacts_url}/{directory}/model.bin", timeout=60)
        assert download.status_code == 200
        assert hashlib.sha256(download.content).digest() == hashlib.sha256(whole).digest()
    head = seaweedfs_server.client().head_object(Bucket=BUCKET, Key=f"{S3_PREFIX}/{directory}/model.bin")
    assert head["ETag"].strip('"').endswith("-3")


def test_abort_on_another_replica_discards_the_upload(
    artifact_server_seaweedfs: ArtifactServer, second_replica: ArtifactServer
) -> None:
    directory = "replicas/run/artifacts"
    create = requests.post(
        f"{artifact_server_seaweedfs.url}{API}/mpu/create/{directory}",
        json={"path": "aborted.bin", "num_parts": 1},
        timeout=60,
    )
    create.raise_for_status()
    abort = requests.post(
        f"{second_replica.url}{API}/mpu/abort/{directory}",
        json={"path": "aborted.bin", "upload_id": create.json()["upload_id"]},
        timeout=60,
    )
    assert abort.json() == {}
    listing = requests.get(
        f"{second_replica.url}{API}/artifacts", params={"path": directory}, timeout=60
    ).json()
    assert "aborted.bin" not in [f["path"] for f in listing.get("files", [])]


def test_every_worker_of_a_multi_worker_server_answers(second_replica: ArtifactServer) -> None:
    for n in range(8):  # new connections spread over both workers
        put = requests.put(
            f"{second_replica.artifacts_url}/workers/f{n}.txt", data=f"{n}".encode(), timeout=60
        )
        put.raise_for_status()
    for n in range(8):
        assert requests.get(f"{second_replica.artifacts_url}/workers/f{n}.txt", timeout=60).text == f"{n}"
