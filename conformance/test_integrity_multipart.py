"""Presigned multipart uploads through ``artifact-fs serve`` get a digest record, and a whole-file
digest the client claims at ``mpu/complete`` is checked against what the store completed.

The parts never pass the server: the store checks each part (S3 compares every part's ETag at
completion) and the server reads the completed object back once, records it, and deletes it with a
400 when the client's claim (artifact_fs's client sends the CRC-32C combined from its parts') does not
match. Runs on the S3 (moto) destination, where the server advertises proxied multipart uploads.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import uuid
from pathlib import Path

import pytest
import requests

from artifact_fs import integrity
from artifact_fs.store import ArtifactStore
from conformance.servers.artifact_server import ArtifactServer

pytestmark = [pytest.mark.server, pytest.mark.s3]
PART = 5 * 1024 * 1024
ENVIRON = {
    "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(PART),
    "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(PART),
}


def _prefix() -> str:
    return f"integrity-mpu/{uuid.uuid4().hex[:12]}"


def _repr_digest(server: ArtifactServer, path: str) -> dict[str, integrity.Digest]:
    response = requests.head(f"{server.artifacts_url}/{path}", timeout=30)
    response.raise_for_status()
    return integrity.parse_field(response.headers.get("Repr-Digest"))


def test_a_multipart_upload_by_artifact_fs_is_recorded_and_its_claim_checked(
    artifact_server_s3: ArtifactServer, tmp_path: Path
) -> None:
    prefix = _prefix()
    local = tmp_path / "weights.bin"
    data = os.urandom(2 * PART + 4321)
    local.write_bytes(data)
    store = ArtifactStore(f"{artifact_server_s3.artifacts_url}/{prefix}", environ={**os.environ, **ENVIRON})
    store.log_artifact(local, "model")

    log = artifact_server_s3.log_text()
    assert f"mpu/complete/{prefix}/model" in log, "the upload did not go through mpu"
    digests = _repr_digest(artifact_server_s3, f"{prefix}/model/weights.bin")
    assert digests["sha-256"].value == hashlib.sha256(data).digest()
    (tmp_path / "back").mkdir()
    back = store.download_artifacts("model/weights.bin", str(tmp_path / "back"))
    assert Path(back).read_bytes() == data


def _start(server: ArtifactServer, directory: str, name: str, parts: int) -> dict[str, object]:
    response = requests.post(
        f"{server.url}/api/2.0/mlflow-artifacts/mpu/create/{directory}",
        json={"path": name, "num_parts": parts},
        timeout=30,
    )
    response.raise_for_status()
    created: dict[str, object] = response.json()
    return created


def _put_parts(created: dict[str, object], data: bytes) -> list[dict[str, object]]:
    parts = []
    credentials = sorted(created["credentials"], key=lambda c: c["part_number"])  # type: ignore[arg-type,index]
    for index, credential in enumerate(credentials):
        chunk = data[index * PART : (index + 1) * PART]
        response = requests.put(
            credential["url"], data=chunk, headers=credential.get("headers") or {}, timeout=60
        )
        response.raise_for_status()
        parts.append({"part_number": credential["part_number"], "etag": response.headers["ETag"]})
    return parts


@pytest.mark.parametrize("claim", ["none", "right", "wrong"])
def test_mpu_complete_checks_the_claimed_digest_and_records_the_file(
    artifact_server_s3: ArtifactServer, claim: str
) -> None:
    directory, name = _prefix(), "blob.bin"
    path = posixpath.join(directory, name)
    data = os.urandom(PART + 999)
    created = _start(artifact_server_s3, directory, name, 2)
    parts = _put_parts(created, data)
    body: dict[str, object] = {"path": name, "parts": parts, "upload_id": created.get("upload_id")}
    crc = integrity.crc32c_of(data)
    if claim != "none":
        value = crc if claim == "right" else crc ^ 1
        body["digest"] = integrity.Digest("crc32c", value.to_bytes(4, "big")).header()

    response = requests.post(
        f"{artifact_server_s3.url}/api/2.0/mlflow-artifacts/mpu/complete/{directory}", json=body, timeout=60
    )

    if claim == "wrong":
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert requests.get(f"{artifact_server_s3.artifacts_url}/{path}", timeout=30).status_code == 404
        return
    assert response.status_code == 200, response.text
    digests = _repr_digest(artifact_server_s3, path)  # MLflow's client claims nothing: recorded anyway
    assert digests["sha-256"].value == hashlib.sha256(data).digest()
    assert digests["crc32c"].value == crc.to_bytes(4, "big")


def test_a_malformed_claim_is_a_400(artifact_server_s3: ArtifactServer) -> None:
    directory, name = _prefix(), "blob.bin"
    created = _start(artifact_server_s3, directory, name, 1)
    parts = _put_parts(created, b"x" * 10)
    body = {"path": name, "parts": parts, "upload_id": created.get("upload_id"), "digest": "crc32c=:@@:"}
    response = requests.post(
        f"{artifact_server_s3.url}/api/2.0/mlflow-artifacts/mpu/complete/{directory}", json=body, timeout=60
    )
    assert response.status_code == 400, response.text
