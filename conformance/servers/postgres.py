"""A throw-away PostgreSQL server (Debian's ``postgresql`` package) for backend-store tests.

``scripts/install/15-postgres.sh`` installs the package. The cluster lives in a fresh temporary
directory, listens on 127.0.0.1 on a free port (no Unix socket outside that directory), trusts local
connections and runs without fsync. ``initdb`` and ``postgres`` refuse to run as root, so as root
they run as the package's ``postgres`` user through ``runuser``. A server that cannot start raises
:class:`ServerStartError`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conformance.servers.launcher import ServerProcess, ServerStartError

USER = "mlflow"
SYSTEM_USER = "postgres"


def postgres_bin_dir() -> Path:
    """The newest installed ``/usr/lib/postgresql/<version>/bin``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise ServerStartError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
            "run scripts/install/15-postgres.sh as root"
        )
    return Path(found[-1]).parent


def _as_server_user() -> list[str]:
    """``runuser -u postgres --`` when running as root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServerStartError("running as root and runuser is missing: cannot start PostgreSQL")
    return [runuser, "-u", SYSTEM_USER, "--"]


@dataclass
class PostgresServer:
    process: ServerProcess
    data_dir: Path

    @property
    def port(self) -> int:
        return self.process.port

    def url(self, database: str = "mlflow", driver: str = "") -> str:
        """A SQLAlchemy URL (``driver`` like ``+psycopg``) for ``database`` as the trusted user."""
        return f"postgresql{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self.process.stop()


def _ready(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        import psycopg

        try:
            with psycopg.connect(f"postgresql://{USER}@127.0.0.1:{port}/postgres", connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    return probe


def start_postgres(log_dir: Path, *, databases: tuple[str, ...] = ("mlflow",)) -> PostgresServer:
    """initdb in a fresh directory, start ``postgres`` on a free port, create ``databases``."""
    import psycopg

    bin_dir = postgres_bin_dir()
    prefix = _as_server_user()
    # Not under pytest's tmp_path: its parents are private to root, the server user must enter.
    data_dir = Path(tempfile.mkdtemp(prefix="artifact-fs-postgres-"))
    if prefix:
        shutil.chown(data_dir, SYSTEM_USER, SYSTEM_USER)
    cluster = data_dir / "cluster"
    init = subprocess.run(
        [
            *prefix,
            str(bin_dir / "initdb"),
            "-D",
            str(cluster),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise ServerStartError(
            f"initdb failed ({init.returncode}):\n{init.stdout[-2000:]}{init.stderr[-2000:]}"
        )

    def command(ports: dict[str, int]) -> list[str]:
        return [
            *prefix,
            str(bin_dir / "postgres"),
            "-D",
            str(cluster),
            "-h",
            "127.0.0.1",
            "-p",
            str(ports["port"]),
            "-k",
            str(data_dir),
            "-F",  # no fsync: a test cluster
            "-c",
            "max_connections=50",
        ]

    process = ServerProcess(
        name="postgres",
        command=command,
        ready=lambda ports: _ready(ports["port"]),
        log_dir=log_dir,
        timeout=60,
        stop_grace=10.0,
        after_stop=lambda _ports: shutil.rmtree(data_dir, ignore_errors=True),
    )
    try:
        process.start()
        with psycopg.connect(
            f"postgresql://{USER}@127.0.0.1:{process.port}/postgres", autocommit=True
        ) as connection:
            for database in databases:
                connection.execute(f'CREATE DATABASE "{database}"')
    except BaseException:
        with contextlib.suppress(Exception):
            process.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return PostgresServer(process=process, data_dir=data_dir)
