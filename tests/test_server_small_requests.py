"""A small artifact costs the server one worker-thread call per request (issue #13).

The server's per-request overhead for small files is mostly hops to the thread pool; a small PUT
is opened, written, committed and its cached listing dropped in one call, a small GET opened, read
and closed in one. The app runs in-process (httpx's ASGI transport) on a local destination, and
every ``anyio.to_thread.run_sync`` (Starlette's ``run_in_threadpool`` and
``iterate_in_threadpool`` both go through it) is counted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest

from artifact_fs.integrity import DigestMismatchError
from artifact_fs.server import ServerConfig, create_app
from artifact_fs.server.transfer import InFlightUploads

ROOT = "/api/2.0/mlflow-artifacts/artifacts/small"
LIST = "/api/2.0/mlflow-artifacts/artifacts"
DATA = bytes(range(256)) * 64  # 16 KiB
BATCH = CHUNK = 4096


class Hops:
    """Counts the worker-thread calls made while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = anyio.to_thread.run_sync

        async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(func, *args, **kwargs)

        monkeypatch.setattr(anyio.to_thread, "run_sync", counting)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Hops:
    return Hops(monkeypatch)


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def app(destination: Path) -> Any:
    config = ServerConfig(destination=str(destination), upload_batch_size=BATCH, download_chunk_size=CHUNK)
    return create_app(str(destination), config=config, environ={})


def send(app: Any, hops: Hops, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, int]:
    """One request and the worker-thread calls it made."""

    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, url, **kwargs)

    before = hops.count
    response = asyncio.run(request())
    return response, hops.count - before


def sha256_field(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def test_a_small_put_is_one_thread_call_and_is_listed_at_once(
    app: Any, hops: Hops, destination: Path
) -> None:
    send(app, hops, "GET", LIST, params={"path": "small"})  # a listing the PUT must not leave stale
    response, calls = send(app, hops, "PUT", f"{ROOT}/a.bin", content=DATA[:BATCH])
    assert response.status_code == 200, response.text
    assert calls == 1
    assert (destination / "small/a.bin").read_bytes() == DATA[:BATCH]
    assert response.headers["Repr-Digest"].startswith("sha-256=:")
    listed, _ = send(app, hops, "GET", LIST, params={"path": "small"})
    assert [(item["path"], item["file_size"]) for item in listed.json()["files"]] == [("a.bin", BATCH)]


def test_a_small_streamed_put_without_a_length_is_one_thread_call(
    app: Any, hops: Hops, destination: Path
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for start in range(0, 3000, 1000):
            yield DATA[start : start + 1000]

    response, calls = send(app, hops, "PUT", f"{ROOT}/chunked.bin", content=body())
    assert response.status_code == 200, response.text
    assert calls == 1
    assert (destination / "small/chunked.bin").read_bytes() == DATA[:3000]


def test_an_empty_put_is_one_thread_call(app: Any, hops: Hops, destination: Path) -> None:
    response, calls = send(app, hops, "PUT", f"{ROOT}/empty.bin", content=b"")
    assert response.status_code == 200 and calls == 1
    assert (destination / "small/empty.bin").read_bytes() == b""


def test_a_small_put_with_a_wrong_digest_stores_nothing(app: Any, hops: Hops, destination: Path) -> None:
    headers = {"Content-Digest": sha256_field(b"something else")}
    response, calls = send(app, hops, "PUT", f"{ROOT}/wrong.bin", content=DATA[:100], headers=headers)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert calls == 1
    assert not (destination / "small/wrong.bin").exists()
    assert [path.name for path in (destination / "small").iterdir() if not path.name.startswith(".")] == []


def test_a_put_larger_than_a_batch_is_written_batch_by_batch(app: Any, hops: Hops, destination: Path) -> None:
    headers = {"Content-Digest": sha256_field(DATA)}
    response, calls = send(app, hops, "PUT", f"{ROOT}/large.bin", content=DATA, headers=headers)
    assert response.status_code == 200, response.text
    assert (destination / "small/large.bin").read_bytes() == DATA
    assert calls <= len(DATA) // BATCH + 1  # open with the first batch, then a call per batch


def test_a_small_get_is_one_thread_call_with_every_header(app: Any, hops: Hops) -> None:
    send(app, hops, "PUT", f"{ROOT}/b.txt", content=DATA[:CHUNK])
    response, calls = send(app, hops, "GET", f"{ROOT}/b.txt")
    assert response.status_code == 200
    assert calls == 1
    assert response.content == DATA[:CHUNK]
    assert response.headers["Content-Length"] == str(CHUNK)
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Repr-Digest"].startswith("sha-256=:")
    etag = response.headers["ETag"]

    ranged, calls = send(app, hops, "GET", f"{ROOT}/b.txt", headers={"Range": "bytes=10-19"})
    assert (ranged.status_code, ranged.content, calls) == (206, DATA[10:20], 1)
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{CHUNK}"
    for headers, status in (
        ({"If-None-Match": etag}, 304),
        ({"If-Match": '"another"'}, 412),
        ({"Range": f"bytes={CHUNK}-"}, 416),
    ):
        answered, calls = send(app, hops, "GET", f"{ROOT}/b.txt", headers=headers)
        assert (answered.status_code, calls) == (status, 1), headers
    head, calls = send(app, hops, "HEAD", f"{ROOT}/b.txt")
    assert (head.status_code, head.headers["Content-Length"], calls) == (200, str(CHUNK), 1)


def test_a_get_larger_than_a_chunk_is_streamed_whole(app: Any, hops: Hops) -> None:
    send(app, hops, "PUT", f"{ROOT}/c.bin", content=DATA)
    response, calls = send(app, hops, "GET", f"{ROOT}/c.bin")
    assert response.status_code == 200
    assert response.content == DATA
    assert calls > 1


def test_a_damaged_small_file_is_never_answered_complete(app: Any, hops: Hops, destination: Path) -> None:
    send(app, hops, "PUT", f"{ROOT}/d.bin", content=DATA[:1000])
    stored = destination / "small/d.bin"
    damaged = bytearray(stored.read_bytes())
    damaged[10] ^= 0xFF
    stored.write_bytes(damaged)  # same size, behind the server's back

    # the headers go, then the body is cut (httpx's ASGI transport raises what the app raised)
    with pytest.raises(DigestMismatchError, match="d.bin"):
        send(app, hops, "GET", f"{ROOT}/d.bin")
    ranged, _ = send(app, hops, "GET", f"{ROOT}/d.bin", headers={"Range": "bytes=0-99"})
    assert (ranged.status_code, ranged.content) == (206, bytes(damaged[:100]))


def test_a_shutdown_waits_for_an_upload_being_committed_in_one_call() -> None:
    uploads = InFlightUploads()
    entered, release = threading.Event(), threading.Event()

    def committing() -> None:
        with uploads.completing():
            entered.set()
            release.wait(10)

    writer = threading.Thread(target=committing)
    writer.start()
    assert entered.wait(10)
    assert len(uploads) == 1
    shutdown = threading.Thread(target=uploads.abandon_all)
    shutdown.start()
    shutdown.join(0.2)
    assert shutdown.is_alive()  # nothing to abort, but it waits for the commit
    release.set()
    shutdown.join(10)
    writer.join(10)
    assert not shutdown.is_alive()
    assert len(uploads) == 0
