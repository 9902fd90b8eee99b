"""The launcher every server fixture relies on: ports, readiness, failure reports, shutdown."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conformance.servers import launcher


def test_free_ports_are_below_the_ephemeral_range_and_never_repeat() -> None:
    ports = [launcher.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(launcher.LOW_PORT <= port < 32768 for port in ports)
    first, last = launcher.free_port_range(5)
    assert last - first == 4 and last < 32768


def test_a_server_is_ready_when_its_probe_answers_and_stops_cleanly(tmp_path: Path) -> None:
    server = launcher.ServerProcess(
        name="http",
        command=lambda ports: [
            sys.executable,
            "-m",
            "http.server",
            str(ports["port"]),
            "--bind",
            "127.0.0.1",
        ],
        ready=lambda ports: launcher.http_ok(f"http://127.0.0.1:{ports['port']}/"),
        log_dir=tmp_path,
        cwd=tmp_path,
        timeout=30,
    ).start()
    try:
        assert server.process is not None and server.process.poll() is None
        assert launcher.tcp_open(server.port)()
    finally:
        server.stop()
    assert server.process.returncode is not None
    assert not launcher.tcp_open(server.port)()


def test_a_server_that_dies_fails_with_its_log(tmp_path: Path) -> None:
    server = launcher.ServerProcess(
        name="broken",
        command=lambda ports: [
            sys.executable,
            "-c",
            "import sys; print('bad config', flush=True); sys.exit(3)",
        ],
        ready=lambda ports: launcher.tcp_open(ports["port"]),
        log_dir=tmp_path,
        timeout=30,
    )
    with pytest.raises(launcher.ServerStartError, match="exited with 3") as caught:
        server.start(attempts=2)
    assert "bad config" in str(caught.value)
    assert "attempt 2" in str(caught.value)
