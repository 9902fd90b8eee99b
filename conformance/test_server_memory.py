"""Bounded memory and no temp files: a 1 GiB artifact up and down through a real ``artifact-fs serve``.

The body is generated on the fly (never held in memory by the test either); the server's peak RSS is
read from ``/proc/<pid>/status`` (``VmHWM``). MLflow's own server spools whole bodies to a temp dir
(reference §7 items 1-3); this one must stay flat and leave nothing behind, even when a client
disconnects mid-upload.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conformance.servers.artifact_server import ArtifactServer, start_artifact_server

pytestmark = pytest.mark.server

MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = hashlib.sha256(b"artifact-fs").digest() * (MIB // 32)  # 1 MiB, deterministic, not compressible


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture
def private_tmp(tmp_path: Path) -> Path:
    path = tmp_path / "server-tmp"
    path.mkdir()
    return path


@pytest.fixture
def fresh_server(server_log_dir: Path, tmp_path: Path, private_tmp: Path) -> Iterator[ArtifactServer]:
    """A server of its own (so its peak RSS is this test's), with a private TMPDIR to inspect."""
    destination = tmp_path / "destination"
    env = {"TMPDIR": str(private_tmp), "TEMP": str(private_tmp), "TMP": str(private_tmp)}
    server = start_artifact_server(server_log_dir, str(destination), env=env, name="artifact-server-memory")
    try:
        yield server
    finally:
        server.stop()


def _generated(size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    for _ in range(size // MIB):
        digest.update(BLOCK)
        yield BLOCK


def test_one_gib_up_and_down_keeps_server_rss_flat(fresh_server: ArtifactServer, private_tmp: Path) -> None:
    url = f"{fresh_server.artifacts_url}/big/run/artifacts/model.bin"
    requests.put(f"{fresh_server.artifacts_url}/warm/a.txt", data=b"x", timeout=30).raise_for_status()
    baseline = peak_rss_mib(fresh_server.pid)

    sent = hashlib.sha256()
    started = time.monotonic()
    requests.put(url, data=_generated(GIB, sent), timeout=300).raise_for_status()
    upload_seconds = time.monotonic() - started
    stored = Path(fresh_server.destination) / "big/run/artifacts/model.bin"
    assert stored.stat().st_size == GIB

    received = hashlib.sha256()
    started = time.monotonic()
    with requests.get(url, stream=True, timeout=300) as response:
        response.raise_for_status()
        assert response.headers["Content-Length"] == str(GIB)
        assert "chunked" not in response.headers.get("Transfer-Encoding", "")
        for chunk in response.iter_content(MIB):
            received.update(chunk)
    download_seconds = time.monotonic() - started
    assert received.hexdigest() == sent.hexdigest()

    middle = requests.get(url, headers={"Range": f"bytes={512 * MIB}-{512 * MIB + 99}"}, timeout=30)
    assert middle.status_code == 206
    assert middle.content == BLOCK[:100]
    assert middle.headers["Content-Range"] == f"bytes {512 * MIB}-{512 * MIB + 99}/{GIB}"

    peak = peak_rss_mib(fresh_server.pid)
    print(
        f"\nserver peak RSS {peak:.0f} MiB (baseline {baseline:.0f} MiB); "
        f"1 GiB up {GIB / MIB / upload_seconds:.0f} MiB/s, down {GIB / MIB / download_seconds:.0f} MiB/s"
    )
    assert peak - baseline < 64, f"peak RSS grew {peak - baseline:.0f} MiB while moving 1 GiB"
    assert peak < 200
    assert list(private_tmp.iterdir()) == []


def _written(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.stat().st_size > 0] if directory.exists() else []


def test_client_disconnect_mid_upload_leaves_nothing(fresh_server: ArtifactServer, private_tmp: Path) -> None:
    target = Path(fresh_server.destination) / "cut/run/artifacts/partial.bin"
    request = (
        "PUT /api/2.0/mlflow-artifacts/artifacts/cut/run/artifacts/partial.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{fresh_server.port}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = f"{len(BLOCK):x}\r\n".encode() + BLOCK + b"\r\n"
    with socket.create_connection(("127.0.0.1", fresh_server.port), timeout=30) as connection:
        connection.sendall(request)
        for _ in range(24):  # 24 MiB: several write batches reach the destination
            connection.sendall(chunk)
        deadline = time.monotonic() + 30
        while not _written(target.parent) and time.monotonic() < deadline:
            time.sleep(0.05)  # poll for the server to have started writing (a hidden temp file)
        assert _written(target.parent), "the server never started writing"
    # The client is gone: the server must drop the partial upload and publish nothing.
    deadline = time.monotonic() + 30
    while _written(target.parent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    assert list(private_tmp.iterdir()) == []
    assert (
        requests.get(f"{fresh_server.artifacts_url}/cut/run/artifacts/partial.bin", timeout=30).status_code
        == 404
    )
