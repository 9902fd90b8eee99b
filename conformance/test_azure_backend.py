"""Azure-specific behaviour on Azurite: block uploads, failed writes, presigned Put Block, errors."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
import requests

import artifact_fs
from artifact_fs.backends import azure
from conformance.harness import BackendUnderTest

pytestmark = pytest.mark.azure

MIB = 1024 * 1024


def _block_list(backend: BackendUnderTest, fs_path: str) -> list[int]:
    """Sizes of the committed blocks of a blob, from the service itself."""
    from azure.storage.blob import BlobServiceClient

    container, blob = fs_path.split("/", 1)
    client = BlobServiceClient.from_connection_string(backend.details["connection_string"])
    committed, _ = client.get_blob_client(container, blob).get_block_list("committed")
    return [block.size for block in committed]


@pytest.fixture(params=["backend_azure_wasbs", "backend_azure_abfss"])
def azure_backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    backend: BackendUnderTest = request.getfixturevalue(request.param)
    return backend


def test_large_put_file_is_a_multi_block_upload(azure_backend: BackendUnderTest, tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 12345)
    local = tmp_path / "model.bin"
    local.write_bytes(data)
    fs, root = artifact_fs.url_to_fs(
        azure_backend.fresh_url(),
        **azure_backend.storage_options,
        max_single_put_size=MIB,
        max_block_size=MIB,
        max_concurrency=2,
    )
    fs.put_file(str(local), f"{root}/model.bin")
    assert fs.cat_file(f"{root}/model.bin") == data
    assert _block_list(azure_backend, f"{root}/model.bin") == [MIB, MIB, MIB, 12345]


def test_buffered_write_stages_one_block_per_buffer(backend_azure_wasbs: BackendUnderTest) -> None:
    data = os.urandom(2 * MIB + 7)
    fs, root = artifact_fs.url_to_fs(backend_azure_wasbs.fresh_url(), **backend_azure_wasbs.storage_options)
    with fs.open(f"{root}/stream.bin", "wb", block_size=MIB) as handle:
        handle.write(data)
    assert fs.cat_file(f"{root}/stream.bin") == data
    assert len(_block_list(backend_azure_wasbs, f"{root}/stream.bin")) >= 2


def test_a_failed_write_leaves_no_blob(azure_backend: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(azure_backend.fresh_url(), **azure_backend.storage_options)
    path = f"{root}/partial.bin"
    with pytest.raises(RuntimeError, match="producer died"), fs.open(path, "wb", block_size=MIB) as handle:
        handle.write(os.urandom(2 * MIB + 1))  # at least one block is already staged
        raise RuntimeError("producer died")
    fs.invalidate_cache()
    assert not fs.exists(path)


def test_exclusive_create_refuses_an_existing_blob(backend_azure_wasbs: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(backend_azure_wasbs.fresh_url(), **backend_azure_wasbs.storage_options)
    fs.pipe_file(f"{root}/once", b"first")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{root}/once", b"second", mode="create")
    assert fs.cat_file(f"{root}/once") == b"first"


def test_sas_token_from_the_environment_serves_abfss(
    backend_azure_abfss: BackendUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", backend_azure_abfss.details["sas_token"])
    fs, root = artifact_fs.url_to_fs(
        backend_azure_abfss.fresh_url(), account_url=backend_azure_abfss.details["endpoint"]
    )
    fs.pipe_file(f"{root}/dir/a.txt", b"via sas")
    assert fs.cat_file(f"{root}/dir/a.txt") == b"via sas"


def test_connection_string_from_the_environment_serves_wasbs(
    backend_azure_wasbs: BackendUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", backend_azure_wasbs.details["connection_string"])
    fs, root = artifact_fs.url_to_fs(backend_azure_wasbs.fresh_url())
    fs.pipe_file(f"{root}/a.txt", b"via env")
    assert fs.ls(root, detail=False) == [f"{root}/a.txt"]


def test_presigned_put_block_upload_then_presigned_download(backend_azure_wasbs: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(backend_azure_wasbs.fresh_url(), **backend_azure_wasbs.storage_options)
    path = f"{root}/mpu/weights.bin"
    parts = [os.urandom(MIB), os.urandom(MIB), os.urandom(1234)]
    upload = azure.create_multipart_upload(fs, path, len(parts), {})
    assert upload["upload_id"] is None
    done = []
    # Parts may arrive in any order; the commit follows part numbers.
    for credential in reversed(upload["credentials"]):
        body = parts[credential["part_number"] - 1]
        response = requests.put(credential["url"], data=body, headers=credential["headers"], timeout=30)
        assert response.status_code == 201, response.text
        done.append(
            {
                "part_number": credential["part_number"],
                "etag": response.headers.get("ETag"),
                "url": credential["url"],
            }
        )
    assert not fs.exists(path)  # staged blocks are invisible until committed
    azure.complete_multipart_upload(fs, path, None, done, {})
    assert fs.cat_file(path) == b"".join(parts)
    azure.abort_multipart_upload(fs, path, None, {})  # a no-op, never an error

    presigned = azure.presigned_download_url(fs, path, 60, {})
    assert presigned["file_size"] == 2 * MIB + 1234
    ranged = requests.get(presigned["url"], headers={"Range": "bytes=10-19"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == parts[0][10:20]
    assert requests.get(presigned["url"], timeout=30).content == b"".join(parts)
    refused = requests.put(presigned["url"] + "&comp=block&blockid=eA%3D%3D", data=b"x", timeout=30)
    assert refused.status_code == 403  # the download URL is read-only


def test_sas_token_credentials_cannot_presign(backend_azure_abfss: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(backend_azure_abfss.fresh_url(), **backend_azure_abfss.storage_options)
    with pytest.raises(NotImplementedError, match="account key"):
        azure.create_multipart_upload(fs, f"{root}/x.bin", 2, {})


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("wasb://artifacts@devstoreaccount1.blob.core.windows.net/p", "wasbs"),
        ("wasbs://devstoreaccount1.blob.core.windows.net/p", "wasbs://<container>@<account>"),
        ("wasbs://artifacts@devstoreaccount1.blob.example.com/p", "blob.core.windows.net"),
        ("wasbs://artifacts@dev-store.blob.core.windows.net/p", "alphanumeric"),
    ],
)
def test_malformed_wasbs_uri_is_refused_before_any_request(uri: str, fragment: str) -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match=fragment):
        artifact_fs.url_to_fs(uri, connection_string="AccountName=x;AccountKey=eA==")
    assert time.monotonic() - started < 1


def test_unreachable_endpoint_fails_quickly_with_connection_error() -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=eA==;"
        "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
    )
    fs, root = artifact_fs.url_to_fs(
        "wasbs://artifacts@devstoreaccount1.blob.core.windows.net/p", connection_string=dead, retry_total=1
    )
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1"):
        fs.cat_file(f"{root}/{uuid.uuid4().hex}")
    assert time.monotonic() - started < 15


def test_missing_credential_is_a_bounded_permission_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    # No network here: DefaultAzureCredential finds nothing, and says which sources it tried.
    fs, root = artifact_fs.url_to_fs(
        "wasbs://artifacts@nosuchaccount0.blob.core.windows.net/p", retry_total=0
    )
    started = time.monotonic()
    with pytest.raises(PermissionError, match="DefaultAzureCredential"):
        fs.ls(root)
    assert time.monotonic() - started < 60
