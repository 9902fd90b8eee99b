"""Start ``artifact-fs serve`` as a real subprocess on a free port, ready when server-info answers."""

from __future__ import annotations

import contextlib
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.servers.launcher import ServerProcess

SERVER_INFO = "/api/3.0/mlflow/server-info"


def artifact_fs_command() -> list[str]:
    """``artifact-fs`` from this interpreter's environment."""
    script = Path(sys.executable).parent / "artifact-fs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "artifact_fs.cli"]


@dataclass
class ArtifactServer:
    process: ServerProcess
    destination: str
    scheme: str = "http"

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def artifacts_url(self) -> str:
        """The ``http://.../api/2.0/mlflow-artifacts/artifacts`` root MLflow clients address."""
        return f"{self.url}/api/2.0/mlflow-artifacts/artifacts"

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def log_text(self) -> str:
        path = self.process.log_path
        return path.read_text(errors="replace") if path and path.exists() else ""

    def stop(self) -> None:
        self.process.stop()


def _server_info_probe(url: str, ca_file: str | None) -> Callable[[], bool]:
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def probe() -> bool:
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2, context=context) as response,
        ):
            return bool(response.status == 200)
        return False

    return probe


def start_artifact_server(
    log_dir: Path,
    destination: str,
    env: Mapping[str, str] | None = None,
    *,
    workers: int = 1,
    extra_args: Sequence[str] = (),
    tls: tuple[str, str, str] | None = None,
    name: str = "artifact-server",
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> ArtifactServer:
    """Serve ``destination``; ``tls`` is (certificate, key, CA file) for an https server."""
    scheme = "https" if tls else "http"

    def command(ports: dict[str, int]) -> list[str]:
        argv = [
            *artifact_fs_command(),
            "serve",
            "--artifacts-destination",
            destination,
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["port"]),
            "--workers",
            str(workers),
            *extra_args,
        ]
        if tls:
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        return argv

    process = ServerProcess(
        name=name,
        command=command,
        ready=lambda ports: _server_info_probe(
            f"{scheme}://127.0.0.1:{ports['port']}{SERVER_INFO}", tls[2] if tls else None
        ),
        log_dir=log_dir,
        env={"PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=cwd,
        timeout=timeout,
        stop_grace=5.0,
    )
    process.start()
    return ArtifactServer(process=process, destination=destination, scheme=scheme)
