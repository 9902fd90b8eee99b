"""The artifact server's REST API in-process (httpx's ASGI transport) on a local destination."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from artifact_fs.server import Credentials, ServerConfig, create_app
from artifact_fs.server.auth import hash_password
from artifact_fs.server.transfer import parse_range, write_stream

API = "/api/2.0/mlflow-artifacts"
ROOT = f"{API}/artifacts/0/run/artifacts"


class Client:
    """A synchronous face on httpx's ASGI transport (a fresh event loop per request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    return tmp_path / "mlartifacts"


@pytest.fixture
def client(destination: Path) -> Client:
    return Client(create_app(str(destination), environ={}))


def test_put_then_get_round_trips_with_mlflow_download_headers(client: Client, destination: Path) -> None:
    assert client.put(f"{ROOT}/dir/a.txt", content=b"hello world").json() == {}
    assert (destination / "0/run/artifacts/dir/a.txt").read_bytes() == b"hello world"
    response = client.get(f"{ROOT}/dir/a.txt")
    assert response.status_code == 200
    assert response.content == b"hello world"
    assert response.headers["content-length"] == "11"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-disposition"] == "attachment; filename=a.txt"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("MLmodel", "text/plain"),
        ("conda.yaml", "text/plain"),
        ("model.pkl", "application/octet-stream"),
        ("image.png", "image/png"),
        ("noext", "application/octet-stream"),
    ],
)
def test_download_content_type_follows_mlflow_mime_rules(client: Client, name: str, mime: str) -> None:
    client.put(f"{ROOT}/{name}", content=b"x")
    assert client.get(f"{ROOT}/{name}").headers["content-type"] == mime


def test_non_ascii_file_name_gets_rfc5987_disposition(client: Client) -> None:
    client.put(f"{ROOT}/r%C3%A9sum%C3%A9.txt", content=b"x")
    disposition = client.get(f"{ROOT}/r%C3%A9sum%C3%A9.txt").headers["content-disposition"]
    assert disposition == "attachment; filename=resume.txt; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"


def test_list_gives_basenames_in_mlflow_json_shape(client: Client) -> None:
    client.put(f"{ROOT}/a.txt", content=b"a")
    client.put(f"{ROOT}/dir/b.txt", content=b"bb")
    client.put(f"{ROOT}/empty", content=b"")
    listing = client.get(f"{API}/artifacts", params={"path": "0/run/artifacts"}).json()
    digests = {item["path"]: item.pop("digest") for item in listing["files"] if "digest" in item}
    assert listing == {
        "files": [
            {"path": "a.txt", "is_dir": False, "file_size": 1},
            {"path": "dir", "is_dir": True},
            {"path": "empty", "is_dir": False},
        ]
    }
    # an extra field MLflow's clients ignore, where the store lists digests cheaply (local xattrs)
    assert digests in ({}, {"a.txt": _sha256_field(b"a"), "empty": _sha256_field(b"")})
    nested = client.get(f"{API}/artifacts", params={"path": "0/run/artifacts/dir"}).json()
    for item in nested["files"]:
        item.pop("digest", None)
    assert nested == {"files": [{"path": "b.txt", "is_dir": False, "file_size": 2}]}


def _sha256_field(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


@pytest.mark.parametrize("path", ["0/run/artifacts/a.txt", "0/run/artifacts/missing", "nowhere"])
def test_list_of_a_file_or_missing_path_is_empty_object(client: Client, path: str) -> None:
    client.put(f"{ROOT}/a.txt", content=b"a")
    assert client.get(f"{API}/artifacts", params={"path": path}).json() == {}


def test_list_of_the_destination_root(client: Client) -> None:
    client.put(f"{ROOT}/a.txt", content=b"a")
    assert client.get(f"{API}/artifacts").json() == {"files": [{"path": "0", "is_dir": True}]}


def test_ajax_prefix_serves_the_same_api(client: Client) -> None:
    client.put("/ajax-api/2.0/mlflow-artifacts/artifacts/x/a.txt", content=b"a")
    assert client.get(f"{API}/artifacts/x/a.txt").content == b"a"
    assert client.get("/ajax-api/3.0/mlflow/server-info").status_code == 200


def test_get_of_a_directory_is_400_and_missing_is_404(client: Client) -> None:
    client.put(f"{ROOT}/dir/b.txt", content=b"b")
    directory = client.get(f"{ROOT}/dir")
    assert directory.status_code == 400
    assert directory.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Artifact path refers to a directory, not a file: '0/run/artifacts/dir'",
    }
    missing = client.get(f"{ROOT}/nope.txt")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_put_without_a_file_name_is_400(client: Client) -> None:
    response = client.put(f"{ROOT}/dir/", content=b"x")
    assert response.status_code == 400
    assert "must include a filename" in response.json()["message"]


def test_delete_file_directory_missing_and_refuses_the_destination_root(
    client: Client, destination: Path
) -> None:
    client.put(f"{ROOT}/a.txt", content=b"a")
    client.put(f"{ROOT}/dir/b.txt", content=b"b")
    client.put(f"{API}/artifacts/0/run/artifactsfoo/keep.txt", content=b"k")
    assert client.delete(f"{ROOT}/dir").json() == {}
    assert client.delete(f"{ROOT}/a.txt").json() == {}
    assert client.delete(f"{ROOT}/never-existed").json() == {}
    assert not (destination / "0/run/artifacts/dir").exists()
    assert client.delete(f"{ROOT}/").json() == {}
    assert not (destination / "0/run/artifacts").exists()
    assert (destination / "0/run/artifactsfoo/keep.txt").exists()  # a sibling prefix is untouched
    root = client.delete(f"{API}/artifacts/")
    assert root.status_code == 400
    assert (destination / "0/run/artifactsfoo/keep.txt").exists()


def test_multipart_and_presigned_on_a_local_destination_answer_501_so_clients_fall_back(
    client: Client,
) -> None:
    client.put(f"{ROOT}/a.txt", content=b"a")
    create = client.post(f"{API}/mpu/create/0/run/artifacts", json={"path": "/tmp/big.bin", "num_parts": 2})
    assert create.status_code == 501
    # MLflow 3.17 clients fall back to a plain PUT only on this message prefix.
    assert create.json()["message"].startswith(
        "Multipart upload is not supported for the current artifact repository"
    )
    assert create.json()["error_code"] == "NOT_IMPLEMENTED"
    presigned = client.get(f"{API}/presigned/0/run/artifacts/a.txt")
    assert presigned.status_code == 501


def test_server_info_advertises_only_what_the_destination_can_do(tmp_path: Path) -> None:
    environ = {
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "true",
    }
    info = Client(create_app(str(tmp_path), environ=environ)).get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False  # local cannot presign, whatever the flag says
    assert info["multipart_downloads_enabled"] is False
    assert info["artifact_serving_enabled"] is True
    assert info["artifacts_presigned_only"] is False


def test_presigned_only_needs_a_presigning_destination(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="presigned-only needs a destination that can presign"):
        create_app(str(tmp_path), environ={"MLFLOW_ARTIFACTS_PRESIGNED_ONLY": "true"})


def test_config_reads_mlflow_variables() -> None:
    config = ServerConfig.from_environment(
        {
            "MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/x",
            "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS": "60",
            "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "1",
        }
    )
    assert (config.destination, config.presigned_url_ttl, config.proxy_multipart_upload) == (
        "s3://bucket/x",
        60,
        True,
    )
    with pytest.raises(ValueError, match="MLFLOW_ARTIFACTS_PRESIGNED_ONLY"):
        ServerConfig.from_environment({"MLFLOW_ARTIFACTS_PRESIGNED_ONLY": "yes"})


# -- ranges -----------------------------------------------------------------------------------------
DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def data_client(client: Client) -> Client:
    client.put(f"{ROOT}/data.bin", content=DATA)
    return client


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-99999", 10200, 10239),
        ("bytes=-99999", 0, 10239),
    ],
)
def test_single_range_is_206_with_exact_bytes(data_client: Client, header: str, start: int, end: int) -> None:
    response = data_client.get(f"{ROOT}/data.bin", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
def test_unsatisfiable_range_is_416(data_client: Client, header: str) -> None:
    response = data_client.get(f"{ROOT}/data.bin", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=5-2", "bytes=a-b", "bytes"])
def test_malformed_or_multi_range_gets_the_whole_file(data_client: Client, header: str) -> None:
    response = data_client.get(f"{ROOT}/data.bin", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == DATA


def test_if_range_and_if_none_match_use_the_etag(data_client: Client) -> None:
    etag = data_client.get(f"{ROOT}/data.bin").headers["etag"]
    assert (
        data_client.get(f"{ROOT}/data.bin", headers={"Range": "bytes=0-9", "If-Range": etag}).status_code
        == 206
    )
    stale = data_client.get(f"{ROOT}/data.bin", headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200
    assert stale.content == DATA
    assert data_client.get(f"{ROOT}/data.bin", headers={"If-None-Match": etag}).status_code == 304


def test_head_gives_headers_without_body(data_client: Client) -> None:
    response = data_client.request("HEAD", f"{ROOT}/data.bin")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.content == b""


def test_parse_range_of_an_empty_file_is_unsatisfiable() -> None:
    from artifact_fs.server.transfer import RangeNotSatisfiableError

    with pytest.raises(RangeNotSatisfiableError):
        parse_range("bytes=0-", 0)
    assert parse_range(None, 0) is None


# -- uploads ----------------------------------------------------------------------------------------
def test_large_upload_streams_in_batches_and_round_trips(tmp_path: Path) -> None:
    app = create_app(str(tmp_path), config=ServerConfig(destination=str(tmp_path), upload_batch_size=1024))
    client = Client(app)
    payload = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: many batches and a short last one

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 3000):
            yield payload[start : start + 3000]

    assert client.put(f"{ROOT}/big.bin", content=body()).status_code == 200
    assert (tmp_path / "0/run/artifacts/big.bin").read_bytes() == payload


def test_a_batch_is_written_while_the_next_is_received(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch's write waits (up to 10 s) for the body to go on arriving: it does only if
    the server keeps reading while a worker thread writes; the bytes are stored whole, in order."""
    from artifact_fs import ArtifactStore
    from artifact_fs.server import transfer

    more_arrived, overlapped = threading.Event(), threading.Event()
    write = transfer._Upload.write

    def first_batch_waits(upload: Any, chunks: Any) -> None:
        if upload.written == 0 and more_arrived.wait(10):
            overlapped.set()
        write(upload, chunks)

    monkeypatch.setattr(transfer._Upload, "write", first_batch_waits)

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 1500  # the first batch (over 1,000 bytes)
        yield b"b" * 400
        more_arrived.set()  # asked for only while the first batch is being written
        yield b"c" * 700  # completes the second batch
        yield b"d" * 10

    store = ArtifactStore(str(tmp_path))
    stored = asyncio.run(write_stream(store, "dir/overlap.bin", body(), batch_size=1000))
    assert overlapped.is_set()
    assert stored.size == 2610
    assert (tmp_path / "dir/overlap.bin").read_bytes() == b"a" * 1500 + b"b" * 400 + b"c" * 700 + b"d" * 10


def test_a_batch_that_fails_to_write_fails_the_upload_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artifact_fs import ArtifactStore
    from artifact_fs.server import transfer

    write = transfer._Upload.write

    def second_batch_fails(upload: Any, chunks: Any) -> None:
        if upload.written:
            raise OSError(28, "No space left on device")
        write(upload, chunks)

    monkeypatch.setattr(transfer._Upload, "write", second_batch_fails)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"z" * 600

    store = ArtifactStore(str(tmp_path))
    with pytest.raises(OSError, match="No space left"):
        asyncio.run(write_stream(store, "dir/full.bin", body(), batch_size=1000))
    assert not (tmp_path / "dir/full.bin").exists()
    assert [p.name for p in (tmp_path / "dir").iterdir() if not p.name.startswith(".")] == []


def test_an_upload_cancelled_while_a_batch_is_written_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request is cancelled (the client went away, a shutdown) while a worker thread writes a
    batch: the write ends first, then the upload is abandoned, and nothing is stored."""
    from artifact_fs import ArtifactStore
    from artifact_fs.server import transfer

    in_write, release = threading.Event(), threading.Event()
    write = transfer._Upload.write

    def slow_second_batch(upload: Any, chunks: Any) -> None:
        if upload.written:
            in_write.set()
            release.wait(10)
        write(upload, chunks)

    monkeypatch.setattr(transfer._Upload, "write", slow_second_batch)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"w" * 600

    async def cancelled_mid_write() -> None:
        store = ArtifactStore(str(tmp_path))
        task = asyncio.ensure_future(write_stream(store, "dir/cut.bin", body(), batch_size=1000))
        while not in_write.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_mid_write())
    assert not (tmp_path / "dir/cut.bin").exists()
    assert [p.name for p in (tmp_path / "dir").iterdir() if not p.name.startswith(".")] == []


def test_aborted_upload_leaves_nothing_behind(tmp_path: Path) -> None:
    from fsspec.implementations.local import LocalFileSystem

    from artifact_fs import ArtifactStore

    # fsspec's plain local files cannot discard: the server removes what such a file wrote
    plain = LocalFileSystem(auto_mkdir=True, skip_instance_cache=True)
    store = ArtifactStore(str(tmp_path), filesystem=plain)
    target = tmp_path / "dir" / "partial.bin"

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 5000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(write_stream(store, "dir/partial.bin", broken(), batch_size=1000))
    assert not target.exists()
    assert list((tmp_path / "dir").iterdir()) == []


# -- access control ---------------------------------------------------------------------------------
def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def guarded(tmp_path: Path) -> Client:
    credentials = Credentials(
        users={"alice": "wonderland", "bob": hash_password("builder", iterations=1000)},
        tokens=frozenset({"s3cr3t-token"}),
    )
    return Client(create_app(str(tmp_path), credentials=credentials, environ={}))


def test_requests_without_credentials_get_401_with_challenges(guarded: Client) -> None:
    response = guarded.get(f"{API}/artifacts")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "Basic" in response.headers["www-authenticate"]
    assert "Bearer" in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "headers",
    [_basic("alice", "wonderland"), _basic("bob", "builder"), {"Authorization": "Bearer s3cr3t-token"}],
)
def test_valid_basic_or_bearer_credentials_pass(guarded: Client, headers: dict[str, str]) -> None:
    assert guarded.put(f"{ROOT}/a.txt", content=b"a", headers=headers).status_code == 200
    assert guarded.get(f"{ROOT}/a.txt", headers=headers).content == b"a"


@pytest.mark.parametrize(
    "headers",
    [
        _basic("alice", "wrong"),
        _basic("mallory", "wonderland"),
        _basic("bob", "pbkdf2_sha256$1000$x$y"),
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Digest whatever"},
    ],
)
def test_wrong_credentials_get_401(guarded: Client, headers: dict[str, str]) -> None:
    assert guarded.get(f"{API}/artifacts", headers=headers).status_code == 401


def test_discovery_endpoints_stay_public(guarded: Client) -> None:
    assert guarded.get("/api/3.0/mlflow/server-info").status_code == 200
    assert guarded.get("/health").status_code == 200


def test_credentials_load_from_files_and_environment(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# comment\nalice:wonderland\n\nbob:" + hash_password("builder", iterations=1000) + "\n")
    tokens = tmp_path / "tokens"
    tokens.write_text("t1\n# not a token\nt2\n")
    credentials = Credentials.load(
        users, tokens, environ={"ARTIFACT_FS_SERVER_USERS": "carol:c", "ARTIFACT_FS_SERVER_TOKENS": "t3"}
    )
    assert set(credentials.users) == {"alice", "bob", "carol"}
    assert credentials.tokens == {"t1", "t2", "t3"}
    assert credentials.allows(_basic("bob", "builder")["Authorization"])
    assert not Credentials.load(environ={}).enabled
    users.write_text("no-colon-here\n")
    with pytest.raises(ValueError, match="line 1"):
        Credentials.load(users, environ={})
