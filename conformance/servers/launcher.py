"""Start real servers for the tests: free ports below 32768, readiness probes, captured logs.

One :class:`ServerProcess` per server process. ``start()`` retries on a port race (a server that
dies before it is ready is started again on fresh ports), ``stop()`` sends SIGTERM, waits, then
SIGKILL. The captured log is printed in the error when a server does not come up, so a CI failure
says why. A server that cannot start is a failure (``ServerStartError``), never a skip.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOW_PORT, HIGH_PORT = 20000, 32000  # below Linux's ephemeral range (32768-60999)
_handed_out: set[int] = set()


class ServerStartError(RuntimeError):
    """A test server did not become ready; the message carries its log tail."""


def installed_binary(name: str, package: str) -> str:
    """The ``name`` executable a pip package installed next to this interpreter (or on ``PATH``)."""
    candidates = [Path(sys.executable).parent / name, shutil.which(name)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise ServerStartError(f"{name} is missing; run scripts/install/10-python.sh ({package})")


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, below the ephemeral range, never handed out twice."""
    for _ in range(500):
        port = random.randint(LOW_PORT, HIGH_PORT)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise ServerStartError("no free port found below 32768")


def free_port_range(count: int) -> tuple[int, int]:
    """``count`` consecutive free ports (e.g. an FTP passive range)."""
    for _ in range(200):
        start = random.randint(LOW_PORT, HIGH_PORT - count)
        ports = range(start, start + count)
        if any(p in _handed_out for p in ports):
            continue
        if all(_bindable(p) for p in ports):
            _handed_out.update(ports)
            return start, start + count - 1
    raise ServerStartError(f"no {count} consecutive free ports found below 32768")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- readiness probes ------------------------------------------------------------------------------
# Probes go straight to 127.0.0.1: a CI machine's HTTP(S)_PROXY (set for package registries) must
# not capture them.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str, statuses: Sequence[int] = (200,)) -> Callable[[], bool]:
    """Probe: an HTTP GET of ``url`` answers with one of ``statuses``."""

    def probe() -> bool:
        try:
            with _direct.open(url, timeout=2) as response:
                return response.status in statuses
        except urllib.error.HTTPError as exc:
            return exc.code in statuses
        except OSError:
            return False

    return probe


def http_any(url: str) -> Callable[[], bool]:
    """Probe: anything answers HTTP at ``url`` (any status)."""

    def probe() -> bool:
        try:
            with _direct.open(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return probe


def tcp_banner(port: int, prefix: bytes, host: str = "127.0.0.1") -> Callable[[], bool]:
    """Probe: a TCP connection greets with ``prefix`` (SSH, FTP)."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=2) as connection:
                connection.settimeout(2)
                return connection.recv(len(prefix) + 64).startswith(prefix)
        except OSError:
            return False

    return probe


def tcp_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    return probe


@dataclass
class ServerProcess:
    """A real server run as a child process for the test session.

    ``command`` is called with a fresh dict of ports (``{name: port}`` for every name in
    ``port_names``) and returns the argv; ``ready`` is called with the same ports and returns a
    probe. Both are re-evaluated on every attempt so a port race just costs a retry.
    """

    name: str
    command: Callable[[dict[str, int]], Sequence[str]]
    ready: Callable[[dict[str, int]], Callable[[], bool]]
    log_dir: Path
    port_names: Sequence[str] = ("port",)
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    timeout: float = 60.0
    stop_grace: float = 3.0
    after_stop: Callable[[dict[str, int]], None] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, attempts: int = 3) -> ServerProcess:
        errors = []
        for attempt in range(1, attempts + 1):
            self.ports = {name: free_port() for name in self.port_names}
            argv = list(self.command(self.ports))
            self.log_path = self.log_dir / f"{self.name}-{attempt}.log"
            log = self.log_path.open("wb")
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                start_new_session=True,
            )
            log.close()
            probe = self.ready(self.ports)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    errors.append(f"attempt {attempt}: exited with {self.process.returncode}")
                    break
                if probe():
                    return self
                time.sleep(0.05)
            else:
                errors.append(f"attempt {attempt}: not ready after {self.timeout:.0f}s")
            self.stop()
        raise ServerStartError(
            f"{self.name} did not start ({'; '.join(errors)}).\ncommand: {' '.join(argv)}\n"
            f"log tail:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.after_stop is not None:
            self.after_stop(self.ports)

    @property
    def port(self) -> int:
        return self.ports[self.port_names[0]]
