"""GCS-specific behaviour on fake-gcs-server: resumable chunked uploads, failed writes, errors."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

import artifact_fs
from conformance.harness import BackendUnderTest

pytestmark = pytest.mark.gcs

KIB = 1024
MIB = 1024 * KIB


def _chunk_requests(backend: BackendUnderTest, object_name: str) -> list[str]:
    """The resumable-upload requests the server logged for one object (initiation excluded)."""
    log = Path(backend.details["server"].log_path).read_text(errors="replace")
    pattern = re.compile(r'"(?:PUT|POST) /upload/storage/v1/b/[^ ]*upload_id=[^ ]* HTTP/1\.1\\?" (\d+)')
    return [
        match.group(1)
        for line in log.splitlines()
        if f"name={object_name}&" in line or f"name={object_name} " in line
        for match in [pattern.search(line)]
        if match
    ]


def test_large_put_file_is_a_multi_chunk_resumable_upload(
    backend_gcs: BackendUnderTest, tmp_path: Path
) -> None:
    data = os.urandom(6 * MIB + 123)
    local = tmp_path / "model.bin"
    local.write_bytes(data)
    fs, root = artifact_fs.url_to_fs(
        backend_gcs.fresh_url(), **backend_gcs.storage_options, upload_chunk_size=MIB
    )
    fs.put_file(str(local), f"{root}/model.bin")
    assert fs.cat_file(f"{root}/model.bin") == data
    object_name = f"{root}/model.bin".split("/", 1)[1]
    statuses = _chunk_requests(backend_gcs, object_name)
    # Seven chunks of 1 MiB: six answered "308 resume incomplete", the last one 200.
    assert statuses == ["308"] * 6 + ["200"], statuses


def test_environment_chunk_size_drives_buffered_writes(
    backend_gcs: BackendUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_GCS_UPLOAD_CHUNK_SIZE", str(512 * KIB))
    monkeypatch.setenv("MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE", str(256 * KIB))
    data = os.urandom(MIB + 5)
    fs, root = artifact_fs.url_to_fs(backend_gcs.fresh_url(), **backend_gcs.storage_options)
    with fs.open(f"{root}/stream.bin", "wb") as handle:
        assert handle.blocksize == 512 * KIB
        for offset in range(0, len(data), 128 * KIB):
            handle.write(data[offset : offset + 128 * KIB])
    with fs.open(f"{root}/stream.bin", "rb") as handle:
        assert handle.blocksize == 256 * KIB
        assert handle.read() == data
    object_name = f"{root}/stream.bin".split("/", 1)[1]
    assert _chunk_requests(backend_gcs, object_name) == ["308", "308", "200"]


def test_a_failed_write_leaves_no_object(backend_gcs: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(
        backend_gcs.fresh_url(), **backend_gcs.storage_options, upload_chunk_size=256 * KIB
    )
    path = f"{root}/partial.bin"
    with pytest.raises(RuntimeError, match="producer died"), fs.open(path, "wb") as handle:
        handle.write(os.urandom(MIB))  # several chunks are already on the server
        raise RuntimeError("producer died")
    fs.invalidate_cache()
    assert not fs.exists(path)


def test_emulator_host_from_the_environment(
    backend_gcs: BackendUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", backend_gcs.details["endpoint"])
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    # No credentials anywhere: MLflow falls back to anonymous access, and so do we.
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(Path(backend_gcs.details["server"].log_dir) / "no-gcloud"))
    fs, root = artifact_fs.url_to_fs(backend_gcs.fresh_url())
    assert fs.credentials.method == "anon"
    fs.pipe_file(f"{root}/a.txt", b"anonymous")
    assert fs.cat_file(f"{root}/a.txt") == b"anonymous"


def test_bad_chunk_size_is_refused_naming_the_variable(
    backend_gcs: BackendUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_GCS_UPLOAD_CHUNK_SIZE", str(100 * KIB))
    started = time.monotonic()
    with pytest.raises(
        ValueError, match="MLFLOW_GCS_UPLOAD_CHUNK_SIZE.*256 KiB|MLFLOW_GCS_UPLOAD_CHUNK_SIZE"
    ):
        artifact_fs.url_to_fs(backend_gcs.fresh_url(), **backend_gcs.storage_options)
    assert time.monotonic() - started < 1


def test_unreachable_endpoint_fails_quickly_with_connection_error() -> None:
    fs, root = artifact_fs.url_to_fs(
        "gs://artifacts/p", endpoint_url="http://127.0.0.1:1", token="anon", retries=2
    )
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:1"):
        fs.cat_file(f"{root}/missing")
    assert time.monotonic() - started < 10


def test_missing_object_is_file_not_found(backend_gcs: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(backend_gcs.fresh_url(), **backend_gcs.storage_options)
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{root}/nothing-here")
