"""Both server protocols (httptools, the default, and the h11 fallback) on real sockets, same guarantees.

Each test runs uvicorn in a thread with one of the two classes (a 1 s header deadline) and speaks
raw HTTP/1.1 to it: heads over 16 KiB are a 431 whole or in pieces, a malformed request a 400,
both in MLflow's JSON shape; a slow or silent client is dropped at the deadline, on a new connection
and between keep-alive requests, but a slow app is not; a shutdown that cancels a request is one
warning and a 503 (or a hang-up once the response has started).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uvicorn_thread import serving

from artifact_fs.server import create_app
from artifact_fs.server.httptools_protocol import GuardedHttpToolsProtocol
from artifact_fs.server.protocol import GuardedH11Protocol, ProtocolGuards, default_protocol

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
LIMIT = 16 * 1024


class FastH11(GuardedH11Protocol):
    header_timeout = 1.0


class FastHttpTools(GuardedHttpToolsProtocol):
    header_timeout = 1.0


@pytest.fixture(params=[FastHttpTools, FastH11], ids=["httptools", "h11"])
def protocol(request: pytest.FixtureRequest) -> type[ProtocolGuards]:
    return request.param  # type: ignore[no-any-return]


async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/slow`` answers after 1.5 s (past the header deadline); ``/stuck`` starts a body, never ends it."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/stuck":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        await asyncio.sleep(60)
    await asyncio.sleep(1.5 if scope["path"] == "/slow" else 60)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"OK"})


@pytest.fixture
def live(protocol: type[ProtocolGuards], tmp_path: Path) -> Iterator[int]:
    with serving(create_app(str(tmp_path), environ={}), protocol) as (port, _):
        yield port


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def exchange(port: int, *pieces: bytes, pause: float = 0.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(pause)
        return read_all(sock)


def error_code(reply: bytes) -> str:
    return str(json.loads(reply.split(b"\r\n\r\n", 1)[1])["error_code"])


def test_a_head_over_the_limit_in_one_piece_is_a_431(live: int) -> None:
    reply = exchange(live, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert error_code(reply) == "INVALID_PARAMETER_VALUE"


def test_a_head_over_the_limit_in_pieces_is_a_431(live: int) -> None:
    pieces = [b"GET /health HTTP/1.1\r\nHost: x\r\n"] + [b"X-Fill: " + b"a" * 1000 + b"\r\n"] * 20
    reply = exchange(live, *pieces, pause=0.01)
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert error_code(reply) == "INVALID_PARAMETER_VALUE"


def test_a_head_just_under_the_limit_is_served(live: int) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Fill: "
    reply = exchange(live, head + b"a" * (LIMIT - len(head) - 100) + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ")


def test_a_malformed_request_is_a_400_in_mlflow_shape(live: int) -> None:
    reply = exchange(live, b"GET /health HTTP/1.1\r\nHost x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert error_code(reply) == "BAD_REQUEST"


def test_a_slow_header_sender_is_dropped_at_the_deadline(live: int) -> None:
    started = time.monotonic()
    reply = exchange(live, b"GET /health HTTP/1.1\r\n", *[b"X"] * 20, pause=0.2)
    assert time.monotonic() - started < 4
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert error_code(reply) == "REQUEST_TIMEOUT"
    assert exchange(live, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").endswith(b"OK")


def test_a_silent_connection_is_closed_at_the_deadline(live: int) -> None:
    with socket.create_connection(("127.0.0.1", live), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 3


def test_the_deadline_holds_for_the_next_request_on_a_kept_alive_connection(live: int) -> None:
    with socket.create_connection(("127.0.0.1", live), timeout=5) as sock:
        sock.sendall(HEALTH)
        time.sleep(0.3)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            for _ in range(20):
                sock.sendall(b"X")
                time.sleep(0.2)
        reply = read_all(sock)
        assert time.monotonic() - started < 4
        assert reply == b"" or reply.startswith(b"HTTP/1.1 408 ")  # a reset may discard the 408


def test_pipelined_requests_are_each_answered(live: int) -> None:
    reply = exchange(live, HEALTH * 2 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 ") == 3


def test_an_app_slower_than_the_deadline_is_not_cut(protocol: type[ProtocolGuards]) -> None:
    with serving(slow_app, protocol, lifespan="off") as (port, _):
        reply = exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b"OK")


@pytest.mark.parametrize(("path", "expected"), [("/wait", b"HTTP/1.1 503 "), ("/stuck", b"HTTP/1.1 200 ")])
def test_a_request_cancelled_by_shutdown_is_one_warning(
    protocol: type[ProtocolGuards], path: str, expected: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="artifact_fs.server")
    with serving(slow_app, protocol, lifespan="off", timeout_graceful_shutdown=1) as (port, server):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.3)
        server.should_exit = True
        with sock:
            reply = read_all(sock)
    assert reply.startswith(expected)
    if path == "/wait":
        assert b'"error_code": "TEMPORARILY_UNAVAILABLE"' in reply
    else:  # the response had started: cut short, never complete-looking
        assert reply.endswith(b"12345")
    warnings = [r for r in caplog.records if "cancelled: the server shut down" in r.getMessage()]
    assert len(warnings) == 1


def test_httptools_is_the_default_and_h11_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_protocol().endswith(":GuardedHttpToolsProtocol")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "httptools" else real(name))
    assert default_protocol() == "artifact_fs.server.protocol:GuardedH11Protocol"


async def echo_body_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers ``<length>,<length>,...\n<body>``: each ``http.request`` message's length, then the body."""
    if scope["type"] != "http":
        return
    body, lengths = [], []
    while True:
        message = await receive()
        assert type(message["body"]) is bytes  # what ASGI promises the app
        body.append(message["body"])
        lengths.append(b"%d" % len(message["body"]))
        if not message.get("more_body"):
            break
    answer = b",".join(lengths) + b"\n" + b"".join(body)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]}
    )
    await send({"type": "http.response.body", "body": answer})


def test_a_body_in_many_reads_reaches_the_app_whole_and_in_order(protocol: type[ProtocolGuards]) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: past uvicorn's 64 KiB high-water mark, in pieces
    head = b"PUT /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(payload)
    pieces = [head] + [payload[start : start + 70_000] for start in range(0, len(payload), 70_000)]
    with serving(echo_body_app, protocol, lifespan="off") as (port, _):
        reply = exchange(port, *pieces, pause=0.001)
    assert reply.startswith(b"HTTP/1.1 200 ")
    lengths, _, body = reply.split(b"\r\n\r\n", 1)[1].partition(b"\n")
    assert body == payload
    assert sum(int(length) for length in lengths.split(b",")) == len(payload)


def test_body_pieces_give_the_parser_s_own_bytes_to_the_app() -> None:
    from artifact_fs.server.httptools_protocol import BodyPieces

    one = b"x" * 100_000
    pieces = BodyPieces()
    pieces += one
    assert len(pieces) == len(one)
    assert bytes(pieces) is one  # no copy: what the parser made is what the app gets
    pieces += b"yz"
    assert bytes(pieces) == one + b"yz"
    assert bytes(BodyPieces(bytearray(b"kept"))) == b"kept"  # what uvicorn held before the first piece
