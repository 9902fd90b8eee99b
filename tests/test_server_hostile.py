"""The artifact server against hostile input: every bad request is a 4xx in MLflow's JSON shape.

In-process (httpx's ASGI transport) for the property-based corpus, and a real uvicorn on a socket
for what only a socket shows: password guessing does not stall others. The protocol's own guards (a
slow header sender is dropped, oversized headers are a 431) are ``tests/test_server_protocol.py``'s,
against both protocols.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn_thread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artifact_fs.server import Credentials, create_app
from artifact_fs.server.auth import hash_password
from artifact_fs.server.protocol import GuardedH11Protocol

API = "/api/2.0/mlflow-artifacts"
ROOT = f"{API}/artifacts"


def _sync(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(send())


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """A destination with a canary beside it, a symlink out of it, and an app over it."""
    base = tmp_path_factory.mktemp("hostile")
    (base / "canary.txt").write_text("secret")
    outside = base / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    destination = base / "destination"
    destination.mkdir()
    (destination / "escape").symlink_to(outside)
    (destination / "ok.txt").write_text("fine")
    return base, destination, create_app(str(destination), environ={})


def _untouched(base: Path) -> None:
    assert (base / "canary.txt").read_text() == "secret"
    assert (base / "outside" / "victim.txt").read_text() == "keep me"
    assert sorted(p.name for p in base.iterdir()) == ["canary.txt", "destination", "outside"]
    assert sorted(p.name for p in (base / "outside").iterdir()) == ["victim.txt"]


def _is_mlflow_4xx(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error_code", "message"}


# -- named cases ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("PUT", f"{ROOT}/{'n' * 256}", {"content": b"x"}),
        ("GET", f"{ROOT}/{'n' * 300}", {}),
        ("GET", f"{ROOT}/{'é' * 130}", {}),  # 260 bytes in UTF-8
        ("PUT", f"{ROOT}/{'a/' * 2100}f", {"content": b"x"}),
        ("GET", f"{ROOT}/{'a/' * 2100}f", {}),
        ("DELETE", f"{ROOT}/{'a/' * 2100}f", {}),
        ("GET", f"{API}/artifacts?path={'a/' * 2100}", {}),
        ("PUT", f"{ROOT}/{'a/' * 200}f", {"content": b"x"}),
        ("POST", f"{API}/mpu/create/d", {"content": b"[" * 100_000 + b"]" * 100_000}),
        ("POST", f"{API}/mpu/create/d", {"content": b'{"a":' * 5_000 + b"1" + b"}" * 5_000}),
        ("POST", f"{API}/mpu/create/d", {"content": b'{"path": "' + b"x" * (5 * 1024 * 1024) + b'"}'}),
        ("POST", f"{API}/mpu/create/d", {"json": {"path": "n" * 300, "num_parts": 1}}),
        ("DELETE", f"{ROOT}/escape/victim.txt", {}),
        ("DELETE", f"{ROOT}/escape", {}),
        ("GET", f"{ROOT}/escape/victim.txt", {}),
        ("PUT", f"{ROOT}/escape/new.txt", {"content": b"x"}),
    ],
)
def test_bad_input_is_an_mlflow_4xx_and_touches_nothing_outside(
    sandbox: tuple[Path, Path, Any], method: str, url: str, kwargs: dict[str, Any]
) -> None:
    base, _, app = sandbox
    _is_mlflow_4xx(_sync(app, method, url, **kwargs))
    _untouched(base)


def test_errors_never_show_the_servers_paths(sandbox: tuple[Path, Path, Any]) -> None:
    base, destination, app = sandbox
    for method in ("GET", "DELETE", "PUT"):
        response = _sync(app, method, f"{ROOT}/escape/victim.txt", content=b"x" if method == "PUT" else None)
        assert response.status_code == 400
        assert str(base) not in response.text and str(destination) not in response.text, response.text
        assert os.path.realpath(base) not in response.text


def test_a_client_hanging_up_mid_upload_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(str(tmp_path / "d"), environ={})

    async def run() -> None:
        sent: list[dict[str, Any]] = []
        messages = iter([{"type": "http.request", "body": b"part", "more_body": True}])

        async def receive() -> dict[str, Any]:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "PUT",
            "path": f"{ROOT}/cut.bin",
            "raw_path": f"{ROOT}/cut.bin".encode(),
            "query_string": b"",
            "headers": [],
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
            "http_version": "1.1",
        }
        await app(scope, receive, send)

    with caplog.at_level(logging.WARNING, logger="artifact_fs.server"):
        asyncio.run(run())
    records = [r for r in caplog.records if r.name == "artifact_fs.server"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING and not records[0].exc_info
    assert not any(p.name == "cut.bin" for p in (tmp_path / "d").rglob("*"))


# -- a property-based corpus ------------------------------------------------------------------------
SEGMENTS = st.one_of(
    st.sampled_from(
        ["..", ".", "", "%2e%2e", "%252e%252e", "escape", "ok.txt", "a;b", "%00", "%0a", "\\", "C:"]
    ),
    st.text(min_size=1, max_size=300),
    st.text(alphabet="./%2abcef5c", min_size=1, max_size=20),
)
PATHS = st.lists(SEGMENTS, min_size=1, max_size=12).map("/".join)
BODIES = st.one_of(
    st.binary(max_size=64),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=30,
    ).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {
            "path": PATHS,
            "num_parts": st.integers(-3, 20_000),
            "upload_id": st.one_of(st.none(), st.text(max_size=9)),
        },
        optional={
            "parts": st.lists(st.dictionaries(st.text(max_size=12), st.integers() | st.text(max_size=5)))
        },
    ).map(lambda value: json.dumps(value).encode()),
)
ROUTES = st.sampled_from(
    [
        ("GET", "artifacts/{}"),
        ("HEAD", "artifacts/{}"),
        ("PUT", "artifacts/{}"),
        ("DELETE", "artifacts/{}"),
        ("GET", "artifacts?path={}"),
        ("GET", "presigned/{}"),
        ("POST", "mpu/create/{}"),
        ("POST", "mpu/complete/{}"),
        ("POST", "mpu/abort/{}"),
    ]
)
HEADERS = st.dictionaries(
    st.sampled_from(["range", "if-range", "if-match", "if-none-match", "content-type"]),
    st.text(alphabet='bytes=-0123456789,*" W/abc', max_size=30),
    max_size=3,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=ROUTES, path=PATHS, body=BODIES, headers=HEADERS)
def test_hostile_corpus_gets_no_5xx_and_touches_nothing_outside(
    sandbox: tuple[Path, Path, Any], route: tuple[str, str], path: str, body: bytes, headers: dict[str, str]
) -> None:
    base, _, app = sandbox
    method, template = route
    target = f"{API}/{template.format(path)}"
    try:
        response = _sync(
            app, method, target, content=body if method in {"PUT", "POST"} else None, headers=headers
        )
    except (httpx.InvalidURL, UnicodeEncodeError):
        return  # not a request a client can send
    assert response.status_code < 500 or response.status_code == 501, (target, response.text[:300])
    if response.status_code >= 400 and method != "HEAD":
        assert set(response.json()) == {"error_code", "message"}
    _untouched(base)


# -- real sockets -----------------------------------------------------------------------------------
class FastDeadline(GuardedH11Protocol):
    header_timeout = 1.0


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    """uvicorn in a thread, with the server's protocol (a short header deadline), on a free port."""
    with uvicorn_thread.serving(app, FastDeadline, lifespan="on") as (port, _):
        yield port


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_password_guessing_neither_stalls_others_nor_tells_who_exists(tmp_path: Path) -> None:
    # 200k iterations: ~100 ms a check here, so 8 guessers keep 2 verifier threads busy throughout
    credentials = Credentials(users={"alice": hash_password("right", iterations=200_000)})
    app = create_app(str(tmp_path / "d"), environ={}, credentials=credentials)
    with serving(app) as port:
        url = f"http://127.0.0.1:{port}{ROOT}/x.txt"
        with httpx.Client() as legit:
            assert legit.put(url, content=b"hello", headers=_basic("alice", "right")).status_code == 200
        stop = threading.Event()
        statuses: list[int] = []

        def guess(worker: int) -> None:
            with httpx.Client() as client:
                number = 0
                while not stop.is_set():
                    number += 1
                    user = "alice" if worker % 2 else f"nobody{worker}"
                    statuses.append(client.get(url, headers=_basic(user, f"guess{number}")).status_code)

        with ThreadPoolExecutor(8) as pool:
            for worker in range(8):
                pool.submit(guess, worker)
            time.sleep(1.0)
            timings = []
            with httpx.Client() as legit:
                for _ in range(5):
                    started = time.monotonic()
                    response = legit.get(url, headers=_basic("alice", "right"))
                    timings.append(time.monotonic() - started)
                    assert response.status_code == 200 and response.content == b"hello"
            deadline = time.monotonic() + 15
            while 429 not in statuses and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
        print(f"authenticated GETs, 8 guessing: {[round(t, 3) for t in timings]} s ({len(statuses)} guesses)")
        assert max(timings) < 0.5, timings
        assert 401 in statuses and 429 in statuses  # guessers are refused, then told to wait

    # an unknown user costs a hash as a known one does (no early exit that times who exists)
    fresh = Credentials(users={"alice": hash_password("right", iterations=200_000)})

    def cost(user: str) -> float:
        started = time.perf_counter()
        assert not fresh.allows(_basic(user, "wrong")["Authorization"])
        return time.perf_counter() - started

    known = min(cost("alice") for _ in range(3))
    unknown = min(cost("mallory") for _ in range(3))
    assert unknown > known / 3, (known, unknown)
