"""Small helpers shared by the conformance test families."""

from __future__ import annotations

import http.client
import pickle
import random
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conformance.servers.launcher import free_port


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible incompressible data."""
    return random.Random(seed).randbytes(size)


def write_tree(source: Path, tree: Mapping[str, int]) -> dict[str, bytes]:
    """Small files of distinct sizes under ``source`` (``{directory: count}``), by relative path."""
    expected = {}
    for directory, count in tree.items():
        for index in range(count):
            relative = f"{directory}/f{index:03d}.bin".lstrip("/")
            data = random_bytes(1024 + index, seed=index)
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            (source / relative).write_bytes(data)
            expected[relative] = data
    return expected


def counting_read_backs(monkeypatch: Any) -> list[str]:
    """The local files a download reads back to check them (``integrity.file_digests``), from now on."""
    from artifact_fs import integrity

    read_back: list[str] = []
    hashed = integrity.file_digests

    def counted(path: Any, *args: Any) -> Any:
        read_back.append(str(path))
        return hashed(path, *args)

    monkeypatch.setattr(integrity, "file_digests", counted)
    return read_back


def run_python(code: str, timeout: float = 120.0, **values: Any) -> None:
    """Run ``code`` in a fresh interpreter with ``values`` (pickled) bound as globals; fail with its
    output unless it exits 0.

    Fork and kill scenarios run there rather than in pytest's own process: a fork of a process with
    many threads (every backend's servers and clients) can deadlock on any lock held at fork time,
    which would test the test process instead of the backend.
    """
    prelude = "import os, pickle, sys\nglobals().update(pickle.loads(sys.stdin.buffer.read()))\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        input=pickle.dumps(values),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout.decode(errors='replace')[-3000:]}\n"
        f"stderr:\n{result.stderr.decode(errors='replace')[-3000:]}"
    )


FORK_AND_CHECK = """
def run_in_fork(child):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, b"ok" if child() else b"the child's check failed")
            code = 0
        except BaseException as exc:
            os.write(write_end, repr(exc).encode()[:1000])
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    if message != b"ok":
        sys.exit("forked child: " + message.decode(errors="replace"))
"""
"""Source of ``run_in_fork(child)`` for :func:`run_python` scripts: the child ends with ``os._exit``."""


MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

COLUMN_BYTES_LIMIT = 1.2
"""Issue #13: a one-column Parquet read moves at most 1.2x the column's bytes on every leg."""
PARQUET_FOOTER_READ = 64 * 1024
"""pyarrow's first read of a Parquet file: its last 64 KiB, which hold the footer."""
BEYOND_FOOTER_LIMIT = 16 * 1024
"""What a one-column read may fetch beyond the column and the footer read (a read-ahead block past
each range, 256-512 KiB, exceeds it)."""


def column_bytes_beyond_footer(received: int, column: int) -> int:
    """What a one-column read fetched beyond the column and pyarrow's footer read: ~0 when every
    range is fetched as asked, a read-ahead block per range when a cache reads past it."""
    return received - column - PARQUET_FOOTER_READ


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "expect"}


def mlflow_artifacts_kind(method: str, target: str) -> str:
    """The kind of an MLflow artifacts request: list, download, presigned, batch (-upload), server-info,
    or other."""
    parts = urlsplit(target)
    if method == "POST" and parts.path.endswith("/mlflow-artifacts/batch/download"):
        return "batch"
    if method == "POST" and parts.path.endswith("/mlflow-artifacts/batch/upload"):
        return "batch-upload"
    if method == "GET" and parts.path.rstrip("/") == MLFLOW_ARTIFACTS and "path" in parse_qs(parts.query):
        return "list"
    if method == "GET" and parts.path.startswith(MLFLOW_ARTIFACTS + "/"):
        return "download"
    if method == "GET" and "/mlflow-artifacts/presigned/" in parts.path:
        return "presigned"
    if parts.path.endswith("/server-info"):
        return "server-info"
    return f"{method} other"


def s3_kind(method: str, target: str) -> str:
    """The S3 operation of a path-style request (``/bucket/key?query``)."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    is_bucket = parts.path.strip("/").count("/") == 0
    if method == "GET":
        return "list" if is_bucket else "get"
    if method == "HEAD":
        return "head-bucket" if is_bucket else "head"
    if method == "PUT":
        return "upload-part" if "uploadId" in query else "put"
    if method == "POST":
        if "uploads" in query:
            return "create-multipart"
        if "uploadId" in query:
            return "complete-multipart"
        return "delete-objects" if "delete" in query else "POST other"
    return method.lower()


class RequestCountingProxy:
    """An HTTP relay on 127.0.0.1 that counts requests by kind and the body bytes of each kind.

    ``classify(method, target)`` names the kind (:func:`mlflow_artifacts_kind`, :func:`s3_kind`).
    Headers reach the target as sent (Host included, so S3 signatures stay valid); bodies are
    buffered, so it suits tests, not large transfers. ``received`` counts response bodies (what the
    client downloaded), ``sent`` request bodies.
    """

    def __init__(self, target_port: int, classify: Callable[[str, str], str] = mlflow_artifacts_kind) -> None:
        self.kinds: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.headers: Counter[tuple[str, str]] = Counter()
        """Requests by kind and each header name they sent (lower case): what rode with them."""
        self.peak_in_flight: Counter[str] = Counter()
        """The most requests of each kind the relay held at once (parts sent concurrently show > 1)."""
        self.lock = threading.Condition()
        self.gates: dict[str, int] = {}
        """Kinds whose requests wait, before they are relayed, until this many are held at once
        (:meth:`gather`): then a client that does keep them in flight shows it whatever the timing."""
        self.gate_timeout = 10.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                kind = classify(self.command, self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    body = self._chunked_body()  # relayed with its length (a streamed batch upload)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                proxy.started(kind, headers)
                try:
                    proxy.wait_at_gate(kind)
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    proxy.count(kind, len(body or b""), len(data))
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in HOP_BY_HOP:
                            self.send_header(key, value)
                    if self.command == "HEAD":
                        self.send_header("Content-Length", response.getheader("Content-Length") or "0")
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    proxy.finished(kind)
                    upstream.close()

            def _chunked_body(self) -> bytes:
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return bytes(body)
                    body += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def started(self, kind: str, headers: Mapping[str, str] = {}) -> None:
        with self.lock:
            self.headers.update((kind, name.lower()) for name in headers)
            self.in_flight[kind] += 1
            self.peak_in_flight[kind] = max(self.peak_in_flight[kind], self.in_flight[kind])
            if self.in_flight[kind] >= self.gates.get(kind, 0):
                self.gates.pop(kind, None)  # reached: this gate is open for good
                self.lock.notify_all()

    def gather(self, kind: str, count: int) -> None:
        """Hold requests of ``kind`` until ``count`` of them are in flight at once (or
        :attr:`gate_timeout` passes, when the client never sends that many together); once reached,
        the gate stays open. Concurrency is then asserted through ``peak_in_flight`` without
        depending on how fast the target answers the first of them."""
        with self.lock:
            self.gates[kind] = count

    def wait_at_gate(self, kind: str) -> None:
        with self.lock:
            self.lock.wait_for(lambda: kind not in self.gates, timeout=self.gate_timeout)

    def finished(self, kind: str) -> None:
        with self.lock:
            self.in_flight[kind] -= 1

    def count(self, kind: str, sent: int, received: int) -> None:
        with self.lock:
            self.kinds[kind] += 1
            self.sent[kind] += sent
            self.received[kind] += received

    def reset(self) -> Counter[str]:
        """The requests counted since the last reset, by kind; byte counters start again too."""
        with self.lock:
            seen, self.kinds = self.kinds, Counter()
            self.received, self.sent, self.peak_in_flight = Counter(), Counter(), Counter()
            self.headers = Counter()
            self.gates.clear()
            self.lock.notify_all()
        return seen

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> RequestCountingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
