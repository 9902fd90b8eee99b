"""``artifact-fs serve`` stopped by SIGTERM or SIGINT with a request in flight: a clean stop.

The real server runs as a subprocess on a local destination. An upload whose body never finishes, or
a download whose client never reads, holds a request open; the signal makes uvicorn wait its graceful
timeout (5 s), cancel the request and shut down. The log then holds one warning line for the
request and no traceback, and the process exits with status 0 within the bound.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from conformance.servers.artifact_server import ArtifactServer, start_artifact_server

pytestmark = pytest.mark.server

MIB = 1024 * 1024
GRACEFUL = 5
"""uvicorn's ``timeout_graceful_shutdown`` as ``artifact-fs serve`` sets it."""
BOUND = GRACEFUL + 10


def hold_upload(server: ArtifactServer) -> socket.socket:
    """A PUT that has sent 1 MiB of a 64 MiB body and sends no more."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"PUT /api/2.0/mlflow-artifacts/artifacts/held.bin HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {64 * MIB}\r\n\r\n".encode()
    )
    sock.sendall(os.urandom(MIB))
    return sock


def hold_download(server: ArtifactServer, destination: Path) -> socket.socket:
    """A GET of 64 MiB whose client reads the first bytes and then nothing."""
    (destination / "big.bin").write_bytes(os.urandom(64 * MIB))
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /api/2.0/mlflow-artifacts/artifacts/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(12).startswith(b"HTTP/1.1 200")
    return sock


@pytest.mark.parametrize("held", ["upload", "download"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_with_a_request_in_flight_stops_the_server_cleanly(
    server_log_dir: Path, tmp_path: Path, held: str, signum: signal.Signals
) -> None:
    destination = tmp_path / "artifacts"
    destination.mkdir()
    server = start_artifact_server(server_log_dir, str(destination), name=f"artifact-server-{held}-stop")
    process = server.process.process
    assert process is not None
    try:
        sock = hold_upload(server) if held == "upload" else hold_download(server, destination)
        with sock:
            time.sleep(0.5)  # the request is running in the server
            started = time.monotonic()
            os.kill(server.pid, signum)
            status = process.wait(timeout=BOUND)
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    log = server.log_text()
    print(f"{held}, {signum.name}: exited {status} after {elapsed:.1f}s")
    assert status == 0, log
    assert elapsed < BOUND
    assert "Traceback" not in log, log
    assert "Exception in ASGI application" not in log, log
    warnings = [line for line in log.splitlines() if "cancelled: the server shut down" in line]
    assert len(warnings) == 1, log
    assert not any(name.startswith(".") for name in os.listdir(destination)), "a temporary was left"
