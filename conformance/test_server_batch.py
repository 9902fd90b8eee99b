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
from artifact_fs.backends.mlflow_artifacts.batch import BatchTransfers
from artifact_fs.integrity import DigestMismatchError
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.server import batch
from conformance.backends.artifact_server import S3_BUCKET, S3_PREFIX
from conformance.helpers import random_bytes
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.faulty_proxy import FaultyProxy
from conformance.servers.moto import MotoServer

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


def _resetting_batches(proxy: FaultyProxy, method: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The relay resets every exchange while the client's batches (``get_batched``/``put_batched``)
    run, and nothing else: listings and single requests pass untouched. Returns, once the batches
    ran, how many files they delivered."""
    original = getattr(BatchTransfers, method)
    delivered: list[int] = []

    def cut_batches(self: BatchTransfers, files: Any) -> set[str]:
        proxy.reset_rate = 1.0
        try:
            done: set[str] = original(self, files)
        finally:
            proxy.reset_rate = 0.0
        delivered.append(len(done))
        return done

    monkeypatch.setattr(BatchTransfers, method, cut_batches)
    return delivered


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
    delivered = _resetting_batches(proxy, "get_batched", monkeypatch)
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


# -- uploads ----------------------------------------------------------------------------------------
UPLOAD_ROUTE = "/api/2.0/mlflow-artifacts/batch/upload"


def _tar(entries: list[tuple[str, bytes, str | None]], *, kind: bytes = tarfile.REGTYPE) -> bytes:
    """A pax archive of ``(name, bytes, digest field or None)``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, digest in entries:
            member = tarfile.TarInfo(name)
            member.size, member.type = len(data), kind
            if digest is not None:
                member.pax_headers = {batch.DIGEST_KEY: digest}
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _record(data: bytes) -> str:
    return integrity.recorded_of(integrity.digests_of(data)).header()


def _upload(server: ArtifactServer, body: bytes) -> requests.Response:
    return requests.post(
        f"{server.url}{UPLOAD_ROUTE}", data=body, headers={"Content-Type": "application/x-tar"}, timeout=60
    )


def test_a_batch_upload_stores_each_entry_whole_and_says_what_it_stored(
    server: ArtifactServer, prefix: str
) -> None:
    good = {
        f"{prefix}/a.txt": b"a\n",
        f"{prefix}/d/b.bin": random_bytes(300_000, seed=3),
        f"{prefix}/e.txt": b"",
    }
    wrong = random_bytes(1000, seed=4)
    body = _tar(
        [
            *((name, data, _record(data)) for name, data in good.items()),
            (f"{prefix}/no-digest.txt", b"trusted as sent", None),
            (f"{prefix}/wrong.bin", wrong, _record(wrong + b"x")),  # claims other bytes: not stored
            ("../outside.txt", b"x", None),
            (f"{prefix}/%2e%2e/%2e%2e/outside.txt", b"x", None),
            (f"{prefix}/{DIGEST_DIRECTORY}/forged.txt", b"x", None),
            (f"{prefix}/a.txt", b"a second a.txt", None),  # a repeat: refused, the first one stays
            (f"{prefix}/large.bin", bytes(batch.MAX_FILE_SIZE + 1), None),
        ]
    )

    response = _upload(server, body)

    assert response.status_code == 200, response.text
    answer = response.json()
    stored = {entry["path"]: entry["digest"] for entry in answer["files"]}
    assert set(stored) == {*good, f"{prefix}/no-digest.txt"}
    failed = {entry["path"]: entry["error_code"] for entry in answer["failed"]}
    assert failed == {
        f"{prefix}/wrong.bin": "INVALID_PARAMETER_VALUE",
        "../outside.txt": "INVALID_PARAMETER_VALUE",
        f"{prefix}/%2e%2e/%2e%2e/outside.txt": "INVALID_PARAMETER_VALUE",
        f"{prefix}/{DIGEST_DIRECTORY}/forged.txt": "INVALID_PARAMETER_VALUE",
        f"{prefix}/a.txt": "INVALID_PARAMETER_VALUE",
        f"{prefix}/large.bin": "INVALID_PARAMETER_VALUE",
    }, answer["failed"]
    for name, data in {**good, f"{prefix}/no-digest.txt": b"trusted as sent"}.items():
        got = requests.get(f"{server.artifacts_url}/{name}", timeout=30)
        assert got.status_code == 200 and got.content == data, name
        assert got.headers["Repr-Digest"] == stored[name] == _record(data), name
    for name in (f"{prefix}/wrong.bin", f"{prefix}/large.bin"):
        assert requests.get(f"{server.artifacts_url}/{name}", timeout=30).status_code == 404, name
    destination = Path(server.destination)
    assert not (destination.parent / "outside.txt").exists()
    assert not (destination / f"{prefix}/{DIGEST_DIRECTORY}/forged.txt").exists()


@pytest.mark.parametrize(
    ("cut", "status"),
    [(None, 400), (1000, 400), (1540, 400), (2236, 200), (3260, 400)],
    ids=["not-a-tar", "first-header-cut", "first-data-cut", "second-header-cut", "second-data-cut"],
)
def test_a_body_cut_short_stores_only_the_entries_it_holds_whole(
    server: ArtifactServer, prefix: str, cut: int | None, status: int
) -> None:
    """The archive: the first entry (its pax header, 1,024 bytes, its header, its 9 bytes padded to
    512), then the second's header (512) and 4,000 bytes. Not a tar, or cut inside an entry's
    header or bytes: a 400, with the entries before the cut stored whole. Cut inside a later header:
    tar readers take that as the archive's end, so the answer lists the first entry alone (the
    client sends the rest on its own)."""
    first = b"complete\n"
    archive = _tar(
        [(f"{prefix}/first.txt", first, _record(first)), (f"{prefix}/second.bin", bytes(4000), None)]
    )
    assert len(archive) >= 2048 + 512 + 4096
    body = b"this is not a tar archive at all" * 40 if cut is None else archive[:cut]

    response = _upload(server, body)

    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    else:
        assert [entry["path"] for entry in response.json()["files"]] == [f"{prefix}/first.txt"]
    assert requests.get(f"{server.artifacts_url}/{prefix}/second.bin", timeout=30).status_code == 404
    first_get = requests.get(f"{server.artifacts_url}/{prefix}/first.txt", timeout=30)
    assert first_get.status_code == (404 if cut in (None, 1000, 1540) else 200)
    if first_get.status_code == 200:
        assert first_get.content == first


def test_a_batch_of_more_than_the_limit_is_a_400(server: ArtifactServer, prefix: str) -> None:
    body = _tar([(f"{prefix}/f{i}.txt", b"", None) for i in range(batch.MAX_FILES + 1)])
    response = _upload(server, body)
    assert response.status_code == 400, response.text
    assert str(batch.MAX_FILES) in response.json()["message"]


def test_the_client_uploads_small_files_in_a_batch_and_large_ones_alone(
    server: ArtifactServer, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    for i in range(120):
        path = source / f"d{i % 4}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(100 + i * 13, seed=i))
    (source / "large.bin").write_bytes(random_bytes(batch.MAX_FILE_SIZE + 10, seed=99))
    sent: list[str] = []
    real_request = requests.Session.request

    def request(
        self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        sent.append(method)
        return real_request(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    ArtifactStore(
        f"{server.artifacts_url}/{prefix}", environ=CLIENT_ENVIRON, skip_instance_cache=True
    ).log_artifacts(str(source))

    assert sent.count("PUT") == 1 and sent.count("POST") == 2, sent  # the large file; two batches of 60
    expected = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    stored = Path(server.destination) / prefix
    assert {
        p.relative_to(stored).as_posix(): p.read_bytes() for p in stored.rglob("*") if p.is_file()
    } == expected
    for name, data in list(expected.items())[:5]:
        got = requests.get(f"{server.artifacts_url}/{prefix}/{name}", timeout=30)
        assert got.headers["Repr-Digest"] == _record(data), name


def test_a_tree_uploads_whole_when_its_batches_are_cut_mid_stream(
    server: ArtifactServer, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every batch upload is reset by a relay: the client sends each file it cannot count as stored
    again with its own PUT (the relay quiet again), and the tree is whole."""
    source = tmp_path / "source"
    for i in range(200):
        path = source / f"d{i % 5}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(2000 + i * 11, seed=i))
    proxy = FaultyProxy(server.port, reset_within=200 * 1024, seed=11)
    delivered = _resetting_batches(proxy, "put_batched", monkeypatch)
    try:
        url = f"{proxy.url}/api/2.0/mlflow-artifacts/artifacts/{prefix}"
        ArtifactStore(url, environ=CLIENT_ENVIRON, skip_instance_cache=True).log_artifacts(str(source))
    finally:
        proxy.stop()
    assert proxy.resets >= 1 and delivered == [0], (proxy.resets, delivered)
    expected = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    stored = Path(server.destination) / prefix
    assert {
        p.relative_to(stored).as_posix(): p.read_bytes() for p in stored.rglob("*") if p.is_file()
    } == expected


class _FirstExchangesCut(FaultyProxy):
    """Resets the first ``cuts`` exchanges once :attr:`armed` (50 KB into each), passes the rest."""

    armed = False
    cuts = 0

    def _roll(self, relayed: int) -> int | None:
        with self._lock:
            self.exchanges += 1
            if not self.armed or self.cuts <= 0:
                return None
            self.cuts -= 1
        return relayed + 50_000


def test_a_retried_batch_upload_sends_the_whole_batch_again(
    server: ArtifactServer, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's retry policy sends a request cut by a reset again: a streamed batch starts again
    from its first entry (a spent generator would send only its rest, a tar of the files it had not
    yet read), so both batches are stored whole by their second attempt and no file goes alone."""
    source = tmp_path / "source"
    for i in range(200):
        path = source / f"d{i % 5}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(2000 + i * 11, seed=i))
    proxy = _FirstExchangesCut(server.port)
    original = BatchTransfers.put_batched
    delivered: list[int] = []

    def cut_first_attempts(self: BatchTransfers, files: Any) -> set[str]:
        proxy.armed, proxy.cuts = True, 2  # the first attempt of each of the two batches
        try:
            done: set[str] = original(self, files)
        finally:
            proxy.armed = False
        delivered.append(len(done))
        return done

    monkeypatch.setattr(BatchTransfers, "put_batched", cut_first_attempts)
    try:
        url = f"{proxy.url}/api/2.0/mlflow-artifacts/artifacts/{prefix}"
        store = ArtifactStore(url, environ=CLIENT_ENVIRON, skip_instance_cache=True)
        store.backend_fs.server_info()  # asked once, before the cuts are armed: they are for batches
        store.log_artifacts(str(source))
    finally:
        proxy.stop()
    assert proxy.resets == 2 and delivered == [200], (proxy.resets, delivered)
    expected = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    stored = Path(server.destination) / prefix
    assert {
        p.relative_to(stored).as_posix(): p.read_bytes() for p in stored.rglob("*") if p.is_file()
    } == expected


@pytest.mark.s3
def test_a_batch_upload_to_s3_is_checked_before_anything_is_stored(
    artifact_server_s3: ArtifactServer,
) -> None:
    """On an async store the entries are written as coroutines on its loop (``awrite_whole``): the
    same answer, the same checks, the record kept and served back."""
    prefix = f"batch-s3-{uuid.uuid4().hex[:8]}"
    good = {f"{prefix}/a.txt": b"a\n", f"{prefix}/d/b.bin": random_bytes(200_000, seed=5)}
    wrong = random_bytes(500, seed=6)
    body = _tar(
        [
            *((name, data, _record(data)) for name, data in good.items()),
            (f"{prefix}/wrong.bin", wrong, _record(wrong[:-1])),
            (f"{prefix}/../../escape.txt", b"x", None),
        ]
    )

    response = _upload(artifact_server_s3, body)

    assert response.status_code == 200, response.text
    assert {entry["path"] for entry in response.json()["files"]} == set(good)
    assert {entry["path"] for entry in response.json()["failed"]} == {
        f"{prefix}/wrong.bin",
        f"{prefix}/../../escape.txt",
    }
    for name, data in good.items():
        got = requests.get(f"{artifact_server_s3.artifacts_url}/{name}", timeout=30)
        assert got.content == data and got.headers["Repr-Digest"] == _record(data), name
    assert (
        requests.get(f"{artifact_server_s3.artifacts_url}/{prefix}/wrong.bin", timeout=30).status_code == 404
    )


@pytest.mark.s3
def test_a_batch_download_from_s3_reads_each_file_once_and_leaves_out_a_changed_one(
    artifact_server_s3: ArtifactServer, moto_server: MotoServer
) -> None:
    """On S3 each file of a batch is one GET on the store's loop (its headers name the version):
    the entries carry the ETag a file's own GET sends and the record checked against their bytes;
    an empty file goes too; a file over the limit and one whose bytes no longer match its record
    (replaced behind the server's back) are left out, and the changed one's own GET is cut short."""
    prefix = f"batch-s3-down-{uuid.uuid4().hex[:8]}"
    files = {f"{prefix}/f{i}.bin": random_bytes(3000 + i, seed=40 + i) for i in range(5)}
    files[f"{prefix}/empty.txt"] = b""
    assert _upload(artifact_server_s3, _tar([(name, data, _record(data)) for name, data in files.items()])).ok
    big = f"{prefix}/big.bin"
    _put(artifact_server_s3, big, random_bytes(batch.MAX_FILE_SIZE + 1, seed=49))
    changed = f"{prefix}/f0.bin"
    moto_server.client().put_object(
        Bucket=S3_BUCKET, Key=f"{S3_PREFIX}/{changed}", Body=random_bytes(3000, seed=99)
    )

    entries = _entries(_post(artifact_server_s3, {"paths": [*files, big]}))

    assert set(entries) == set(files) - {changed}
    for name, (data, headers) in entries.items():
        own = requests.head(f"{artifact_server_s3.artifacts_url}/{name}", timeout=30)
        assert data == files[name], name
        assert headers[batch.ETAG_KEY] == own.headers["ETag"], name
        assert headers[batch.DIGEST_KEY] == _record(files[name]), name
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{artifact_server_s3.artifacts_url}/{changed}", timeout=30)
