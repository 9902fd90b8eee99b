"""GCS-specific behaviour on fake-gcs-server: resumable chunked uploads, failed writes, presigned composite
uploads and downloads, errors."""

from __future__ import annotations

import os
import posixpath
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

import artifact_fs
from artifact_fs.backends import gcs
from artifact_fs.errors import MultipartUnsupportedError
from artifact_fs.paths import RESERVED_PREFIX
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


# -- presign hooks (what the artifact server calls) -------------------------------------------------------
@pytest.fixture
def signing_fs(backend_gcs: BackendUnderTest, gcs_service_account_key: Path) -> tuple[Any, str]:
    options = {**backend_gcs.storage_options, "token": str(gcs_service_account_key)}
    fs, root = artifact_fs.url_to_fs(backend_gcs.fresh_url(), **options)
    assert fs.credentials.credentials is not None  # a service account: it can sign
    return fs, root


def _put_parts(upload: dict[str, Any], parts: list[bytes]) -> list[dict[str, Any]]:
    done = []
    for credential in reversed(upload["credentials"]):  # any order: completion follows part numbers
        body = parts[credential["part_number"] - 1]
        response = requests.put(credential["url"], data=body, headers=credential["headers"], timeout=30)
        assert response.status_code == 200, response.text
        done.append({"part_number": credential["part_number"], "etag": "", "url": credential["url"]})
    return done


def _scratch_objects(fs: Any, root: str) -> list[str]:
    fs.invalidate_cache()
    return [name for name in fs.find(root) if RESERVED_PREFIX in name]


def test_presigned_composite_upload_then_presigned_download(signing_fs: tuple[Any, str]) -> None:
    fs, root = signing_fs
    path = f"{root}/mpu/weights.bin"
    parts = [os.urandom(300 * KIB), os.urandom(300 * KIB), os.urandom(1234)]
    upload = gcs.create_multipart_upload(fs, path, len(parts), {})
    assert re.fullmatch(r"[0-9a-f]{32}", upload["upload_id"])
    assert [c["part_number"] for c in upload["credentials"]] == [1, 2, 3]
    assert all("X-Goog-Signature=" in c["url"] for c in upload["credentials"])
    done = _put_parts(upload, parts)
    fs.invalidate_cache()
    assert not fs.exists(path)
    # The parts are objects beside the destination, under the server's reserved (never listed) prefix.
    staged = sorted(posixpath.basename(name) for name in fs.ls(f"{root}/mpu"))
    assert staged == [f".artifact.uploading.{upload['upload_id']}.part-0000{n}" for n in (1, 2, 3)]

    gcs.complete_multipart_upload(fs, path, upload["upload_id"], done, {})
    assert fs.cat_file(path) == b"".join(parts)
    assert _scratch_objects(fs, root) == []
    gcs.abort_multipart_upload(fs, path, upload["upload_id"], {})  # nothing left to delete: no error
    assert fs.cat_file(path) == b"".join(parts)

    presigned = gcs.presigned_download_url(fs, path, 60, {})
    assert presigned["file_size"] == len(b"".join(parts))
    assert "X-Goog-Signature=" in presigned["url"]
    ranged = requests.get(
        presigned["url"], headers={**presigned["headers"], "Range": "bytes=10-19"}, timeout=30
    )
    assert ranged.status_code == 206 and ranged.content == parts[0][10:20]
    assert requests.get(presigned["url"], timeout=30).content == b"".join(parts)


def test_more_than_32_parts_are_composed_in_levels(signing_fs: tuple[Any, str]) -> None:
    fs, root = signing_fs
    path = f"{root}/many.bin"
    parts = [f"<part {n:03d}>".encode() * (n + 1) for n in range(65)]  # 32 + 32 + 1 sources
    upload = gcs.create_multipart_upload(fs, path, len(parts), {})
    done = _put_parts(upload, parts)
    gcs.complete_multipart_upload(fs, path, upload["upload_id"], done, {})
    assert fs.cat_file(path) == b"".join(parts)
    assert _scratch_objects(fs, root) == []


def test_a_single_part_upload(signing_fs: tuple[Any, str]) -> None:
    fs, root = signing_fs
    upload = gcs.create_multipart_upload(fs, f"{root}/one.bin", 1, {})
    done = _put_parts(upload, [b"only part"])
    gcs.complete_multipart_upload(fs, f"{root}/one.bin", upload["upload_id"], done, {})
    assert fs.cat_file(f"{root}/one.bin") == b"only part"
    assert _scratch_objects(fs, root) == []


def test_an_aborted_presigned_upload_leaves_nothing(signing_fs: tuple[Any, str]) -> None:
    fs, root = signing_fs
    path = f"{root}/aborted.bin"
    upload = gcs.create_multipart_upload(fs, path, 3, {})
    for credential in upload["credentials"][:2]:
        requests.put(credential["url"], data=b"p" * KIB, timeout=30).raise_for_status()
    assert len(_scratch_objects(fs, root)) == 2
    other = gcs.create_multipart_upload(fs, f"{root}/other.bin", 1, {})  # another upload is untouched
    requests.put(other["credentials"][0]["url"], data=b"o", timeout=30).raise_for_status()
    gcs.abort_multipart_upload(fs, path, upload["upload_id"], {})
    assert _scratch_objects(fs, root) == [f"{root}/.artifact.uploading.{other['upload_id']}.part-00001"]
    fs.invalidate_cache()
    assert not fs.exists(path)
    gcs.abort_multipart_upload(fs, f"{root}/other.bin", other["upload_id"], {})
    assert _scratch_objects(fs, root) == []


@pytest.mark.parametrize("upload_id", [None, "", "../../etc", "A" * 32, "0" * 31, "0" * 32 + "/x"])
def test_malformed_upload_ids_are_refused(signing_fs: tuple[Any, str], upload_id: str | None) -> None:
    fs, root = signing_fs
    parts = [{"part_number": 1, "etag": "", "url": ""}]
    with pytest.raises(ValueError, match="upload_id"):
        gcs.complete_multipart_upload(fs, f"{root}/x.bin", upload_id, parts, {})
    with pytest.raises(ValueError, match="upload_id"):
        gcs.abort_multipart_upload(fs, f"{root}/x.bin", upload_id, {})


def test_completing_with_a_missing_part_fails_before_composing(signing_fs: tuple[Any, str]) -> None:
    fs, root = signing_fs
    upload = gcs.create_multipart_upload(fs, f"{root}/gap.bin", 2, {})
    done = _put_parts({"credentials": upload["credentials"][:1]}, [b"first"])
    with pytest.raises(FileNotFoundError, match=r"no uploaded part\(s\) \[2\]"):
        gcs.complete_multipart_upload(
            fs, f"{root}/gap.bin", upload["upload_id"], [*done, {"part_number": 2}], {}
        )
    fs.invalidate_cache()
    assert not fs.exists(f"{root}/gap.bin")
    gcs.abort_multipart_upload(fs, f"{root}/gap.bin", upload["upload_id"], {})
    assert _scratch_objects(fs, root) == []


def test_anonymous_credentials_cannot_presign(backend_gcs: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(backend_gcs.fresh_url(), **backend_gcs.storage_options)
    assert fs.credentials.credentials is None
    with pytest.raises(MultipartUnsupportedError, match="anonymous"):
        gcs.create_multipart_upload(fs, f"{root}/x.bin", 2, {})
    fs.pipe_file(f"{root}/x.bin", b"x")
    with pytest.raises(MultipartUnsupportedError, match="anonymous"):
        gcs.presigned_download_url(fs, f"{root}/x.bin", 60, {})
