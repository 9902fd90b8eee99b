"""A large download through ``artifact-fs serve`` is concurrent ranged GETs of one version (issue #13).

A counting relay in front of the server records every request of ``get_file`` and the bytes each
answer carried: a file of K ranges is exactly K ranged GETs (plus server-info), pinned with
``If-Match``, and moves the file's bytes once; a file of one range is one GET. A file replaced
between ranges, or damaged behind the server, fails and leaves no local file. MLflow's own server
over S3 ignores ``Range``: the same client downloads from it with one GET, as before.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import artifact_fs
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from artifact_fs.integrity import DigestMismatchError
from conformance.helpers import MLFLOW_ARTIFACTS, RequestCountingProxy, counting_read_backs
from conformance.servers.artifact_server import ArtifactServer

pytestmark = [pytest.mark.server, pytest.mark.mlflow_artifacts]

RANGE = 1024 * 1024
"""The client's range size in these tests (``multipart_download_chunk_size``)."""
RANGES = 5
CLIENT = {
    "multipart_download_chunk_size": RANGE,
    "max_workers": 4,
    "http_options": {"max_retries": 1, "timeout": 60.0},
    "environ": {"MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"},
    "skip_instance_cache": True,
}


@pytest.fixture
def relayed(artifact_server_local: ArtifactServer) -> Iterator[tuple[RequestCountingProxy, str]]:
    """A counting relay in front of the server, and a fresh directory's path below its root."""
    proxy = RequestCountingProxy(artifact_server_local.port)
    try:
        yield proxy, f"ranged/{uuid.uuid4().hex[:12]}"
    finally:
        proxy.stop()


def client(proxy: RequestCountingProxy) -> MlflowArtifactsFileSystem:
    return MlflowArtifactsFileSystem(service_url=f"{proxy.url}/api/2.0", **CLIENT)


def recording_range_headers(fs: MlflowArtifactsFileSystem, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The headers of every GET the client sends for artifact bytes."""
    seen: list[dict[str, str]] = []
    original = fs.session.get

    def get(url: str, **kwargs: Any) -> requests.Response:
        if f"{MLFLOW_ARTIFACTS}/" in url:
            seen.append(dict(kwargs.get("headers") or {}))
        return original(url, **kwargs)

    monkeypatch.setattr(fs.session, "get", get)
    return seen


def test_a_file_of_k_ranges_is_k_pinned_ranged_gets_moving_its_bytes_once(
    relayed: tuple[RequestCountingProxy, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, prefix = relayed
    fs = client(proxy)
    data = os.urandom(RANGES * RANGE - 123)  # the last range is short
    fs.pipe_file(f"{prefix}/big.bin", data)
    headers = recording_range_headers(fs, monkeypatch)
    read_back = counting_read_backs(monkeypatch)
    proxy.reset()

    fs.get_file(f"{prefix}/big.bin", str(tmp_path / "big.bin"))

    received = proxy.received["download"]
    kinds = proxy.reset()
    assert read_back == []  # checked against Repr-Digest as the ranges arrived, nothing read back
    assert (tmp_path / "big.bin").read_bytes() == data
    assert kinds["download"] == RANGES, kinds
    assert sum(kinds.values()) == RANGES + kinds["server-info"], kinds
    assert received == len(data)
    starts = sorted(int(h["Range"].removeprefix("bytes=").split("-")[0]) for h in headers)
    assert starts == [index * RANGE for index in range(RANGES)]
    assert "If-Match" not in headers[0]
    etag = requests.head(f"{proxy.url}{MLFLOW_ARTIFACTS}/{prefix}/big.bin", timeout=30).headers["ETag"]
    assert all(h.get("If-Match") == etag for h in headers[1:]), headers


def test_a_file_of_one_range_is_one_get(relayed: tuple[RequestCountingProxy, str], tmp_path: Path) -> None:
    proxy, prefix = relayed
    fs = client(proxy)
    data = os.urandom(RANGE - 1)
    fs.pipe_file(f"{prefix}/small.bin", data)
    fs.pipe_file(f"{prefix}/empty.bin", b"")
    proxy.reset()

    fs.get_file(f"{prefix}/small.bin", str(tmp_path / "small.bin"))
    fs.get_file(f"{prefix}/empty.bin", str(tmp_path / "empty.bin"))

    received = proxy.received["download"]
    kinds = proxy.reset()
    assert (tmp_path / "small.bin").read_bytes() == data
    assert (tmp_path / "empty.bin").read_bytes() == b""
    assert kinds["download"] == 2 and kinds["list"] == 0, kinds
    assert received == len(data)


def test_a_store_download_of_a_large_file_is_ranged(
    relayed: tuple[RequestCountingProxy, str], tmp_path: Path
) -> None:
    proxy, prefix = relayed
    data = os.urandom(3 * RANGE + 1)
    client(proxy).pipe_file(f"{prefix}/model/weights.bin", data)
    store = artifact_fs.ArtifactStore(f"{proxy.url}{MLFLOW_ARTIFACTS}/{prefix}", **CLIENT)
    proxy.reset()

    store.download_artifacts("", str(tmp_path))

    received = proxy.received["download"]
    kinds = proxy.reset()
    assert (tmp_path / "model" / "weights.bin").read_bytes() == data
    assert kinds["download"] == 4, kinds
    assert received == len(data)


def test_a_range_cut_mid_body_asks_again_for_its_rest_only(
    relayed: tuple[RequestCountingProxy, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, prefix = relayed
    fs = client(proxy)
    data = os.urandom(RANGES * RANGE)
    fs.pipe_file(f"{prefix}/cut.bin", data)
    original = fs.open_stream
    asked: list[tuple[int, str | None]] = []
    delivered: list[int] = []

    def open_stream(path: str, start: int = 0, end: int | None = None, etag: str | None = None, **kw: Any):
        response, offset = original(path, start, end, etag, **kw)
        asked.append((start, etag))
        if start == 2 * RANGE and not delivered:  # the third range: half its body, then the cut
            whole = response.iter_content

            def iter_content(chunk_size: int = 1, decode_unicode: bool = False) -> Iterator[bytes]:
                chunk = next(whole(chunk_size))
                delivered.append(len(chunk) // 2)
                yield chunk[: len(chunk) // 2]
                raise requests.exceptions.ConnectionError("connection reset mid-body")

            response.iter_content = iter_content  # type: ignore[method-assign]
        return response, offset

    monkeypatch.setattr(fs, "open_stream", open_stream)
    proxy.reset()
    fs.get_file(f"{prefix}/cut.bin", str(tmp_path / "cut.bin"))

    kinds = proxy.reset()
    assert (tmp_path / "cut.bin").read_bytes() == data
    assert kinds["download"] == RANGES + 1, kinds
    resumed = [(start, etag) for start, etag in asked if start == 2 * RANGE + delivered[0]]
    assert len(resumed) == 1 and resumed[0][1] is not None, asked


def test_a_file_replaced_between_ranges_fails_and_leaves_no_file(
    relayed: tuple[RequestCountingProxy, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, prefix = relayed
    fs = client(proxy)
    fs.pipe_file(f"{prefix}/model.bin", os.urandom(RANGES * RANGE))
    replacement = os.urandom(RANGES * RANGE)
    original = fs.open_stream
    replaced = threading.Event()

    def open_stream(path: str, start: int = 0, end: int | None = None, etag: str | None = None, **kw: Any):
        if start > 0 and not replaced.is_set():  # after the first range: another version lands
            replaced.set()
            other = MlflowArtifactsFileSystem(service_url=f"{proxy.url}/api/2.0", skip_instance_cache=True)
            other.pipe_file(f"{prefix}/model.bin", replacement)
        return original(path, start, end, etag, **kw)

    monkeypatch.setattr(fs, "open_stream", open_stream)
    local = tmp_path / "model.bin"
    with pytest.raises(OSError, match="changed") as caught:
        fs.get_file(f"{prefix}/model.bin", str(local))
    assert replaced.is_set()
    assert not isinstance(caught.value, DigestMismatchError)
    assert not local.exists()


def test_a_file_damaged_behind_the_server_fails_its_digest_and_leaves_no_file(
    artifact_server_local: ArtifactServer, relayed: tuple[RequestCountingProxy, str], tmp_path: Path
) -> None:
    proxy, prefix = relayed
    fs = client(proxy)
    data = os.urandom(RANGES * RANGE)
    fs.pipe_file(f"{prefix}/damaged.bin", data)
    fs.pipe_file(f"{prefix}/damaged-small.bin", data[:1000])
    for name, offset in (("damaged.bin", 3 * RANGE + 7), ("damaged-small.bin", 10)):
        with open(Path(artifact_server_local.destination) / prefix / name, "r+b") as stored:
            stored.seek(offset)
            stored.write(bytes([data[offset] ^ 0xFF]))

    for name in ("damaged.bin", "damaged-small.bin"):
        local = tmp_path / name
        with pytest.raises(DigestMismatchError, match=name):
            fs.get_file(f"{prefix}/{name}", str(local))
        assert not local.exists()


@pytest.mark.mlflow
def test_mlflow_server_over_s3_ignores_range_and_is_one_get(
    backend_mlflow_server_s3: Any, tmp_path: Path
) -> None:
    """MLflow's proxy over a remote store answers 200, chunked, whatever the ``Range``: one stream."""
    backend = backend_mlflow_server_s3
    fs, root = artifact_fs.url_to_fs(
        backend.fresh_url(),
        **{**backend.storage_options, "multipart_download_chunk_size": RANGE},
        enable_multipart_download=False,
        skip_instance_cache=True,
    )
    data = os.urandom(3 * RANGE + 5)
    fs.pipe_file(f"{root}/big.bin", data)
    gets: list[int] = []
    original = fs.session.get

    def get(url: str, **kwargs: Any) -> requests.Response:
        response = original(url, **kwargs)
        if "/mlflow-artifacts/artifacts/" in url:
            gets.append(response.status_code)
        return response

    fs.session.get = get  # type: ignore[method-assign]
    fs.get_file(f"{root}/big.bin", str(tmp_path / "big.bin"))
    assert (tmp_path / "big.bin").read_bytes() == data
    assert gets == [200]
    assert fs.proxy_honours_range is False
