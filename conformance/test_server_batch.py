"""Many small files in one request (issue #13): ``POST .../mlflow-artifacts/batch/download``.

``artifact-fs serve`` answers a list of files with one tar stream (``artifact_fs/server/batch.py``);
artifact_fs's client downloads a tree's small files that way where the server advertises it. The
archive is read here with Python's own ``tarfile``, and every downloaded tree is compared with its
source byte for byte. A file the batch cannot send whole (missing, a directory, too large, changed
in the store) gets no entry, and the client's own GET of it reports what is wrong.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from artifact_fs import ArtifactStore, integrity
from artifact_fs.backends.mlflow_artifacts.batch import BatchDownloads
from artifact_fs.integrity import DigestMismatchError
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.server import batch
from conformance.helpers import random_bytes
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.faulty_proxy import FaultyProxy

pytestmark = pytest.mark.server

ROUTE = "/api/2.0/mlflow-artifacts/batch/download"
CLIENT_ENVIRON = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}


@pytest.fixture(scope="module")
def server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtifactServer]:
    destination = tmp_path_factory.mktemp("batch-destination")
    started = start_artifact_server(server_log_dir, str(destination), name="artifact-server-batch")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def prefix() -> str:
    return f"batch-{uuid.uuid4().hex[:10]}"


def _put(server: ArtifactServer, path: str, data: bytes) -> None:
    response = requests.put(f"{server.artifacts_url}/{path}", data=data, timeout=60)
    assert response.status_code == 200, response.text


def _post(server: ArtifactServer, body: Any) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{server.url}{ROUTE}", data=raw, timeout=60)


def _entries(response: requests.Response) -> dict[str, tuple[bytes, dict[str, str]]]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/x-tar"
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:") as archive:
        for member in archive:
            assert member.isreg(), member
            source = archive.extractfile(member)
            assert source is not None
            entries[member.name] = (source.read(), dict(member.pax_headers))
    return entries


def _tamper(server: ArtifactServer, path: str) -> None:
    """One byte changed in place behind the server's back (same size)."""
    with open(Path(server.destination) / path, "r+b") as stored:
        stored.seek(3)
        byte = stored.read(1)
        stored.seek(3)
        stored.write(bytes([byte[0] ^ 0xFF]))


def test_server_info_advertises_the_route_and_its_limits(server: ArtifactServer) -> None:
    info = requests.get(f"{server.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["artifact_fs"]["batch_download"] == {
        "path": "batch/download",
        "max_files": batch.MAX_FILES,
        "max_file_size": batch.MAX_FILE_SIZE,
    }


def test_a_batch_is_one_tar_of_the_files_it_can_send_whole(server: ArtifactServer, prefix: str) -> None:
    small, nested, large = (
        b"hello\n",
        random_bytes(200_000, seed=1),
        random_bytes(batch.MAX_FILE_SIZE + 1, seed=2),
    )
    _put(server, f"{prefix}/a.txt", small)
    _put(server, f"{prefix}/d/b.bin", nested)
    _put(server, f"{prefix}/large.bin", large)
    _put(server, f"{prefix}/ünïcode name.txt", b"named")
    _put(server, f"{prefix}/empty.txt", b"")
    asked = [
        f"{prefix}/a.txt",
        f"{prefix}/d/b.bin",
        f"{prefix}/large.bin",  # over the limit: left to its own GET
        f"{prefix}/missing.txt",  # no such file: left to its own GET (a 404)
        f"{prefix}/d",  # a directory
        f"{prefix}/ünïcode name.txt",
        f"{prefix}/empty.txt",
    ]

    entries = _entries(_post(server, {"paths": asked}))

    assert {name: data for name, (data, _) in entries.items()} == {
        f"{prefix}/a.txt": small,
        f"{prefix}/d/b.bin": nested,
        f"{prefix}/ünïcode name.txt": b"named",
        f"{prefix}/empty.txt": b"",
    }
    for name, (data, pax) in entries.items():
        get = requests.get(f"{server.artifacts_url}/{name}", timeout=30)
        assert pax[batch.ETAG_KEY] == get.headers["ETag"], name  # the version the entry holds
        assert pax[batch.DIGEST_KEY] == get.headers["Repr-Digest"], name
        members = integrity.parse_field(pax[batch.DIGEST_KEY])
        assert "sha-256" in members and all(
            integrity.digest_of(data, algorithm) == digest for algorithm, digest in members.items()
        ), name


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        {},
        {"paths": []},
        {"paths": "a.txt"},
        {"paths": [1]},
        {"paths": ["a.txt", "a.txt"]},
        {"paths": ["../outside.txt"]},
        {"paths": ["%2e%2e/outside.txt"]},
        {"paths": ["a/%252e%252e/%252e%252e/outside.txt"]},
        {"paths": ["/etc/passwd"]},
        {"paths": ["dir/"]},
        {"paths": [""]},
        {"paths": [f"{DIGEST_DIRECTORY}/a.txt"]},
        {"paths": ["x" * 5000]},
        {"paths": [f"f{i}.txt" for i in range(batch.MAX_FILES + 1)]},
    ],
    ids=lambda body: (body if isinstance(body, bytes) else json.dumps(body))[:40],
)
def test_a_bad_batch_request_is_a_400_with_mlflows_error_shape(server: ArtifactServer, body: Any) -> None:
    response = _post(server, body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE", response.text


def test_a_file_changed_in_the_store_is_left_out_and_its_own_get_reports_it(
    server: ArtifactServer, prefix: str, tmp_path: Path
) -> None:
    tree = {f"t/f{i:02d}.bin": random_bytes(3000 + i, seed=i) for i in range(12)}
    for name, data in tree.items():
        _put(server, f"{prefix}/{name}", data)
    _tamper(server, f"{prefix}/t/f05.bin")

    entries = _entries(_post(server, {"paths": [f"{prefix}/{name}" for name in tree]}))
    assert f"{prefix}/t/f05.bin" not in entries and len(entries) == len(tree) - 1

    out = tmp_path / "out"
    out.mkdir()
    store = ArtifactStore(f"{server.artifacts_url}/{prefix}", environ=CLIENT_ENVIRON)
    with pytest.raises(OSError, match="f05.bin") as caught:
        store.download_artifacts("t", str(out))
    assert any(isinstance(cause, DigestMismatchError) for cause in _causes(caught.value))
    downloaded = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert downloaded == {name: data for name, data in tree.items() if name != "t/f05.bin"}


def test_a_tree_downloads_whole_when_its_batches_are_cut_mid_stream(
    server: ArtifactServer, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every batch is reset by a relay (RST after a random number of bytes): the files a batch
    delivered whole are kept, the rest come one GET each (with the relay quiet again)."""
    source = tmp_path / "source"
    for i in range(300):
        path = source / f"d{i % 5}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(2000 + i * 7, seed=i))
    ArtifactStore(f"{server.artifacts_url}/{prefix}", environ=CLIENT_ENVIRON).log_artifacts(str(source))
    proxy = FaultyProxy(server.port, reset_within=300 * 1024, seed=7)
    original = BatchDownloads.get_batched
    delivered: list[int] = []

    def cut_batches(self: BatchDownloads, files: Any) -> set[str]:
        proxy.reset_rate = 1.0  # only while the batches run: listings and single GETs pass untouched
        try:
            done = original(self, files)
        finally:
            proxy.reset_rate = 0.0
        delivered.append(len(done))
        return done

    monkeypatch.setattr(BatchDownloads, "get_batched", cut_batches)
    try:
        out = tmp_path / "out"
        out.mkdir()
        url = f"{proxy.url}/api/2.0/mlflow-artifacts/artifacts/{prefix}"
        ArtifactStore(url, environ=CLIENT_ENVIRON, skip_instance_cache=True).download_artifacts("", str(out))
    finally:
        proxy.stop()
    assert proxy.resets >= 1, f"nothing was reset in {proxy.exchanges} exchanges"
    assert len(delivered) == 1 and delivered[0] < 300, delivered
    expected = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == expected


def test_mlflow_servers_that_advertise_nothing_get_one_get_per_file(
    server: ArtifactServer, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server-info without ``artifact_fs`` (MLflow's own server) leaves downloads as they were."""
    from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem

    for i in range(5):
        _put(server, f"{prefix}/f{i}.txt", f"file {i}".encode())
    original = MlflowArtifactsFileSystem.server_info

    def without_batches(self: MlflowArtifactsFileSystem) -> dict[str, Any]:
        return {key: value for key, value in original(self).items() if key != "artifact_fs"}

    monkeypatch.setattr(MlflowArtifactsFileSystem, "server_info", without_batches)
    posted: list[str] = []
    real_post = requests.Session.post

    def post(self: requests.Session, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        posted.append(url)
        return real_post(self, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "post", post)
    out = tmp_path / "out"
    out.mkdir()
    ArtifactStore(
        f"{server.artifacts_url}/{prefix}", environ=CLIENT_ENVIRON, skip_instance_cache=True
    ).download_artifacts("", str(out))
    assert posted == []
    assert sorted(os.listdir(out)) == [f"f{i}.txt" for i in range(5)]


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or (exc.__context__ if not exc.__suppress_context__ else None)
