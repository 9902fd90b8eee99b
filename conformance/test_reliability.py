"""Reliability of ``artifact-fs serve`` and its client under faults and races (issue #14).

* A :class:`FaultyProxy` resetting ~10 % of connections mid-stream sits between the client and the
  server, or between the server and SeaweedFS: every operation succeeds and every byte is right.
* Writers and readers race on the same names (local and S3 destinations): every body read is one
  complete version, or the read fails clearly; never bytes that no writer wrote.
* ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` bounds the client's uploads and downloads through a
  proxy that stalls.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from conformance.backends.s3 import BUCKET
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.faulty_proxy import FaultyProxy
from conformance.servers.seaweedfs import SeaweedFS

pytestmark = [pytest.mark.server, pytest.mark.timeout(240)]

MIB = 1024 * 1024
CLIENT_ENVIRON = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def client(url: str, **environ: str) -> MlflowArtifactsFileSystem:
    """The proxied client on ``url`` (no multipart: a plain streamed PUT and GET)."""
    return MlflowArtifactsFileSystem(
        service_url=f"{url}/api/2.0",
        environ={**CLIENT_ENVIRON, **environ},
        enable_multipart_upload=False,
        enable_multipart_download=False,
        skip_instance_cache=True,
    )


@pytest.fixture(scope="module")
def local_server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtifactServer]:
    destination = tmp_path_factory.mktemp("reliability-local")
    server = start_artifact_server(server_log_dir, str(destination), name="artifact-server-reliability")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_proxy(seaweedfs_server: SeaweedFS) -> Iterator[FaultyProxy]:
    """A proxy in front of SeaweedFS's S3 port; faults are switched on per test."""
    proxy = FaultyProxy(seaweedfs_server.process.ports["s3"])
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def s3_server(
    server_log_dir: Path, seaweedfs_server: SeaweedFS, s3_proxy: FaultyProxy
) -> Iterator[ArtifactServer]:
    """``artifact-fs serve`` on SeaweedFS, reaching it through :func:`s3_proxy`."""
    seaweedfs_server.create_bucket(BUCKET)
    environ = {**seaweedfs_server.environ(), "MLFLOW_S3_ENDPOINT_URL": s3_proxy.url}
    server = start_artifact_server(
        server_log_dir,
        f"s3://{BUCKET}/reliability-{uuid.uuid4().hex[:8]}",
        env=environ,
        name="artifact-server-reliability-s3",
    )
    try:
        yield server
    finally:
        server.stop()


def _payloads(count: int) -> dict[str, bytes]:
    generator = random.Random(1414)
    return {
        f"faults/{index:02d}.bin": generator.randbytes(generator.choice([0, 1, 700, 300_000, 2 * MIB + 3]))
        for index in range(count)
    }


def _exercise(fs: MlflowArtifactsFileSystem, prefix: str, tmp_path: Path) -> dict[str, int]:
    """Put, list, read (whole, ranged, downloaded) and delete; count failures and wrong bytes."""
    failed = wrong = 0
    failures: list[str] = []
    payloads = {f"{prefix}/{name}": data for name, data in _payloads(16).items()}

    def attempt(action: Any) -> Any:
        nonlocal failed
        try:
            return action()
        except OSError as exc:
            failed += 1
            failures.append(f"{exc!r} <- {exc.__cause__!r}")
            return None

    for path, data in payloads.items():
        attempt(lambda path=path, data=data: fs.pipe_file(path, data))
    listed = attempt(lambda: fs.ls(f"{prefix}/faults", detail=False)) or []
    wrong += len(payloads) != len(listed)
    for index, (path, data) in enumerate(payloads.items()):
        wrong += attempt(lambda path=path: fs.cat_file(path)) != data
        if len(data) > 10:
            start, end = len(data) // 3, len(data) // 3 + len(data) // 2
            wrong += attempt(lambda path=path, s=start, e=end: fs.cat_file(path, s, e)) != data[start:end]
        local = tmp_path / f"{index}.bin"
        attempt(lambda path=path, local=local: fs.get_file(path, str(local)))
        wrong += not local.exists() or local.read_bytes() != data
    attempt(lambda: fs.rm(f"{prefix}/faults", recursive=True))
    fs.invalidate_cache()
    wrong += bool(attempt(lambda: fs.exists(f"{prefix}/faults")))
    if failures:
        print("\n".join(failures))
    return {"failed": failed, "wrong": wrong}


def test_client_survives_resets_between_it_and_the_server(
    local_server: ArtifactServer, tmp_path: Path
) -> None:
    proxy = FaultyProxy(local_server.port, reset_rate=0.10, reset_within=256 * 1024)
    try:
        outcome = _exercise(client(proxy.url), f"client-faults-{uuid.uuid4().hex[:6]}", tmp_path)
    finally:
        proxy.stop()
    print(f"client<->server: {outcome}, {proxy.resets} of {proxy.exchanges} exchanges reset")
    assert outcome == {"failed": 0, "wrong": 0}, outcome
    assert proxy.resets >= 3, f"only {proxy.resets} of {proxy.exchanges} exchanges were reset"


@pytest.mark.s3
def test_server_survives_resets_between_it_and_seaweedfs(
    s3_server: ArtifactServer, s3_proxy: FaultyProxy, tmp_path: Path
) -> None:
    s3_proxy.reset_rate, s3_proxy.reset_within = 0.10, 256 * 1024
    s3_proxy.resets = 0
    try:
        outcome = _exercise(client(s3_server.url), f"server-faults-{uuid.uuid4().hex[:6]}", tmp_path)
    finally:
        s3_proxy.reset_rate = 0.0
    print(f"server<->SeaweedFS: {outcome}, {s3_proxy.resets} of {s3_proxy.exchanges} exchanges reset")
    assert outcome == {"failed": 0, "wrong": 0}, outcome
    assert s3_proxy.resets >= 3, f"only {s3_proxy.resets} of {s3_proxy.exchanges} exchanges were reset"


@pytest.mark.s3
def test_streamed_answers_survive_resets_between_the_server_and_seaweedfs(
    s3_server: ArtifactServer, s3_proxy: FaultyProxy
) -> None:
    """A streamed answer (13 MiB, more than the server's chunk) is one GET to S3; a reset in its
    body asks again for the missing bytes, pinned to the same version, so every answer is whole."""
    data = random.Random(7).randbytes(13 * MIB)
    path = f"streamed-faults-{uuid.uuid4().hex[:6]}/big.bin"
    client(s3_server.url).pipe_file(path, data)
    url = f"{s3_server.artifacts_url}/{path}"
    s3_proxy.reset_rate, s3_proxy.reset_within = 0.10, 4 * MIB
    s3_proxy.resets, s3_proxy.exchanges = 0, 0
    try:
        with requests.Session() as session:
            answers = [session.get(url, timeout=60) for _ in range(24)]
    finally:
        s3_proxy.reset_rate = 0.0
    print(f"streamed: {s3_proxy.resets} of {s3_proxy.exchanges} exchanges reset")
    assert [(answer.status_code, answer.content == data) for answer in answers] == [(200, True)] * 24
    assert s3_proxy.resets >= 2, f"only {s3_proxy.resets} of {s3_proxy.exchanges} exchanges were reset"


# -- races ------------------------------------------------------------------------------------------
def _version(number: int) -> bytes:
    """Version ``number``: one byte value throughout, 1 MiB when it is odd (the server reads it in
    the call that opens it), 5 MiB when it is even (more than the server's 4 MiB chunk: streamed,
    on S3 as one GET pinned to the version the server opened)."""
    value = number % 250 + 1
    return bytes([value]) * (MIB if value % 2 else 5 * MIB)


def _is_a_version(body: bytes) -> bool:
    return bool(body) and body == _version(body[0] - 1)


def _race(server: ArtifactServer, seconds: float) -> dict[str, int]:
    """One writer alternating versions of one name; readers through raw GETs, the client's whole and
    block-wise reads. Counts reads that were one version, wrong, or failed (cut short or 412)."""
    path = f"race/{uuid.uuid4().hex[:8]}.bin"
    fs = client(server.url)
    fs.pipe_file(path, _version(0))
    url = f"{server.artifacts_url}/{path}"
    counts = {"whole": 0, "wrong": 0, "failed": 0, "writes": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def count(key: str) -> None:
        with lock:
            counts[key] += 1

    def writer() -> None:
        number = 1
        while time.monotonic() < stop:
            fs.pipe_file(path, _version(number))
            number += 1
            count("writes")

    def raw_reader() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop:
                try:
                    body = session.get(url, timeout=30).content
                except requests.RequestException:
                    count("failed")
                    continue
                count("whole" if _is_a_version(body) else "wrong")

    def client_reader(block_size: int) -> None:
        reader = client(server.url)
        while time.monotonic() < stop:
            try:
                if block_size:
                    with reader.open(path, "rb", block_size=block_size) as handle:
                        body = handle.read()
                else:
                    body = reader.cat_file(path)
            except OSError as exc:
                assert exc.errno == errno.ESTALE or isinstance(exc, ConnectionError), repr(exc)
                count("failed")
                continue
            count("whole" if _is_a_version(body) else "wrong")

    threads = [
        threading.Thread(target=writer),
        threading.Thread(target=raw_reader),
        threading.Thread(target=client_reader, args=(0,)),
        threading.Thread(target=client_reader, args=(256 * 1024,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def test_racing_reads_of_a_local_destination_are_each_one_version(local_server: ArtifactServer) -> None:
    counts = _race(local_server, seconds=4)
    print("local race:", counts)
    assert counts["wrong"] == 0, counts
    assert counts["whole"] >= 10 and counts["writes"] >= 10, counts


@pytest.mark.s3
def test_racing_reads_of_an_s3_destination_are_each_one_version(s3_server: ArtifactServer) -> None:
    counts = _race(s3_server, seconds=4)
    print("s3 race:", counts)
    assert counts["wrong"] == 0, counts
    assert counts["whole"] >= 5 and counts["writes"] >= 5, counts


# -- timeouts ---------------------------------------------------------------------------------------
def test_transfer_timeout_bounds_the_clients_uploads_and_downloads(local_server: ArtifactServer) -> None:
    client(local_server.url).pipe_file("stall/there.bin", b"x" * MIB)
    proxy = FaultyProxy(local_server.port)
    try:
        fs = client(
            proxy.url,
            MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT="1",
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        )
        fs.server_info()  # discovery is a request (MLFLOW_HTTP_REQUEST_TIMEOUT), not a transfer
        proxy.stall = True
        for action in (
            lambda: fs.pipe_file("stall/up.bin", os.urandom(4 * MIB)),
            lambda: fs.cat_file("stall/there.bin"),
        ):
            started = time.monotonic()
            with pytest.raises(OSError) as caught:
                action()
            assert time.monotonic() - started < 8
            assert type(caught.value).__module__ == "builtins" and caught.value.__cause__ is not None
    finally:
        proxy.stop()


@pytest.mark.s3
def test_transfer_timeout_bounds_s3_uploads_and_downloads(
    seaweedfs_server: SeaweedFS, s3_proxy: FaultyProxy
) -> None:
    from artifact_fs.store import ArtifactStore

    seaweedfs_server.create_bucket(BUCKET)
    environ = {
        **seaweedfs_server.environ(),
        "MLFLOW_S3_ENDPOINT_URL": s3_proxy.url,
        "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "2",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    store = ArtifactStore(
        f"s3://{BUCKET}/timeouts-{uuid.uuid4().hex[:6]}",
        environ=environ,
        key=seaweedfs_server.access_key,
        secret=seaweedfs_server.secret_key,
    )
    with store.open("there.bin", "wb") as handle:
        handle.write(b"x" * MIB)

    def upload() -> None:
        with store.open("up.bin", "wb") as handle:
            handle.write(os.urandom(12 * MIB))

    def download() -> None:
        with store.open("there.bin", "rb") as handle:
            handle.read()

    s3_proxy.stall = True
    try:
        for action in (upload, download):
            started = time.monotonic()
            with pytest.raises(OSError):
                action()
            print(f"{action.__name__} failed after {time.monotonic() - started:.1f}s")
            assert time.monotonic() - started < 30
    finally:
        s3_proxy.stall = False


@pytest.mark.s3
def test_a_graceful_shutdown_aborts_the_multipart_uploads_the_server_started(
    server_log_dir: Path, seaweedfs_server: SeaweedFS
) -> None:
    seaweedfs_server.create_bucket(BUCKET)
    prefix = f"shutdown-{uuid.uuid4().hex[:8]}"
    server = start_artifact_server(
        server_log_dir,
        f"s3://{BUCKET}/{prefix}",
        env=seaweedfs_server.environ(),
        name="artifact-server-shutdown",
    )
    s3 = seaweedfs_server.client()

    def open_uploads() -> list[Any]:
        return s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])

    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                f"PUT /api/2.0/mlflow-artifacts/artifacts/big.bin HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {64 * MIB}\r\n\r\n".encode()
            )
            sock.sendall(os.urandom(20 * MIB))  # two 8 MiB batches: a multipart upload has started
            deadline = time.monotonic() + 20
            while not open_uploads():
                assert time.monotonic() < deadline, "the server never started a multipart upload"
                time.sleep(0.2)
            # SIGTERM: uvicorn waits 5 s for the request, cancels it, and the upload is aborted
            os.kill(server.pid, signal.SIGTERM)
            assert server.process.process is not None
            server.process.process.wait(timeout=30)
    finally:
        server.stop()
    assert open_uploads() == []
    assert "could not clean up" not in server.log_text()
