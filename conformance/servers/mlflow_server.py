"""A real ``mlflow server`` (MLflow in its own virtual environment) for proxied-artifact tests.

Usage::

    server = start_mlflow_server(log_dir, tmp_dir, "s3://bucket/", env=seaweed.environ())
    try:
        ... server.url (the tracking URI), server.log_text() ...
    finally:
        server.stop()

The sqlite backend store costs ~12 s of migrations on a new file (far more on a busy machine), so the
first server's migrated database is kept as a template and copied for every later server of the
test process; fixtures are session-scoped.
Also here: :class:`CountingProxy`, a test-only TCP relay that counts the bytes a client really
receives, for "this read fetched only what it needed" assertions that do not trust the client.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.servers.launcher import ServerProcess, free_port, http_ok
from conformance.servers.mlflow_env import mlflow_bin


@dataclass
class MlflowServer:
    """A running tracking server; ``url`` is what ``MLFLOW_TRACKING_URI`` should be."""

    process: ServerProcess
    artifacts_destination: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.process.port}"

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def log_path(self) -> Path | None:
        return self.process.log_path

    def log_text(self) -> str:
        path = self.process.log_path
        return path.read_text(errors="replace") if path and path.exists() else ""

    def stop(self) -> None:
        self.process.stop()


def start_mlflow_server(
    log_dir: Path,
    tmp_dir: Path,
    artifacts_destination: str,
    env: Mapping[str, str] | None = None,
    *,
    serve_artifacts: bool = True,
    extra_args: Sequence[str] = (),
    name: str = "mlflow-server",
    timeout: float = 120.0,
) -> MlflowServer:
    """Start ``mlflow server`` on a free port with a fresh sqlite store under ``tmp_dir``.

    ``env`` adds to the server's environment (S3 endpoint and keys, ``MLFLOW_ENABLE_PROXY_*``).
    Uvicorn's access log goes to the server log, so tests can assert which routes were called.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    database = tmp_dir / "mlflow.db"
    if _migrated_template is not None and _migrated_template.exists() and not database.exists():
        _copy_database(_migrated_template, database)

    def command(ports: dict[str, int]) -> list[str]:
        argv = [
            mlflow_bin(),
            "server",
            "--backend-store-uri",
            f"sqlite:///{database}",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["port"]),
            "--workers",
            "1",
            "--serve-artifacts" if serve_artifacts else "--no-serve-artifacts",
        ]
        if serve_artifacts:
            argv += ["--artifacts-destination", artifacts_destination]
        return argv + list(extra_args)

    server_env = {
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "GIT_PYTHON_REFRESH": "quiet",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    process = ServerProcess(
        name=name,
        command=command,
        ready=lambda ports: http_ok(f"http://127.0.0.1:{ports['port']}/health"),
        log_dir=log_dir,
        env=server_env,
        cwd=tmp_dir,
        timeout=timeout,
        stop_grace=5.0,
    )
    process.start()
    _remember_template(database, tmp_dir)
    return MlflowServer(process=process, artifacts_destination=artifacts_destination)


_migrated_template: Path | None = None
_template_lock = threading.Lock()


def _copy_database(source: Path, destination: Path) -> None:
    """A consistent copy of a live sqlite database (sqlite's online backup API)."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(destination)) as dst,
    ):
        src.backup(dst)


def _remember_template(database: Path, tmp_dir: Path) -> None:
    global _migrated_template
    with _template_lock:
        if _migrated_template is None and database.exists():
            template = tmp_dir / "migrated-template.db"
            _copy_database(database, template)
            # The Default experiment carries this server's artifact root; without it each server
            # creates its own (MLflow's store adds experiment 0 when it is missing).
            with contextlib.closing(sqlite3.connect(template)) as db, db:
                db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
                db.execute("DELETE FROM experiments WHERE experiment_id = 0")
            _migrated_template = template


class CountingProxy:
    """A TCP relay ``127.0.0.1:<port> -> 127.0.0.1:<target_port>`` that counts bytes each way.

    Transparent to HTTP (the Host header, and so any signature over it, reaches the target as the
    client sent it). ``downstream`` is what the client received: headers and bodies on the wire.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.downstream = 0
        self.upstream = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"counting-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.downstream = self.upstream = 0

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=0.2):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                    with self._lock:
                        if source is upstream:
                            self.downstream += len(data)
                        else:
                            self.upstream += len(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._thread.join(timeout=2)
