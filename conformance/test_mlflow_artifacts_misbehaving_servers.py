"""The client against servers that misbehave on purpose: unsafe listings, hangs, flaky server-info.

These servers are tiny real HTTP servers on free ports (``http.server`` in a thread), because a real
MLflow server never does these things; the point is what the client does when one does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from artifact_fs.errors import InvalidArtifactPathError
from conformance.servers.launcher import free_port

pytestmark = pytest.mark.mlflow_artifacts

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def fake_server() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []
    release = threading.Event()

    def start(handle: Handler) -> str:
        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", free_port()), RequestHandler)
        server.daemon_threads = True
        server.release = release  # type: ignore[attr-defined]
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}/api/2.0"

    yield start
    release.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def _json(handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _client(service: str, **options: object) -> MlflowArtifactsFileSystem:
    http_options = {"max_retries": 0, "timeout": 2.0, **options}
    return MlflowArtifactsFileSystem(service, http_options=http_options, skip_instance_cache=True)


@pytest.mark.parametrize("name", ["../x", "..", "a/../../b", "/etc/passwd", "%2e%2e/x", "a\\..\\b"])
def test_a_server_that_lists_an_unsafe_name_is_refused(
    fake_server: Callable[[Handler], str], name: str
) -> None:
    service = fake_server(
        lambda h: _json(h, 200, {"files": [{"path": name, "is_dir": False, "file_size": 1}]})
    )
    with pytest.raises(InvalidArtifactPathError, match="listed an unsafe artifact name"):
        _client(service).ls("run/artifacts")


def test_a_server_that_hangs_gives_a_timeout_naming_the_variable(
    fake_server: Callable[[Handler], str],
) -> None:
    def hang(handler: BaseHTTPRequestHandler) -> None:
        handler.server.release.wait(30)  # type: ignore[attr-defined]

    service = fake_server(hang)
    with pytest.raises(TimeoutError, match="MLFLOW_HTTP_REQUEST_TIMEOUT"):
        _client(service, timeout=0.5).ls("x")


def test_a_refused_connection_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError, match="cannot reach"):
        _client(f"http://127.0.0.1:{free_port()}/api/2.0").cat_file("a/b")


def test_server_info_is_cached_but_failures_are_not(fake_server: Callable[[Handler], str]) -> None:
    calls: list[str] = []

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        calls.append(handler.path)
        if len(calls) == 1:
            _json(handler, 500, {"error_code": "INTERNAL_ERROR", "message": "warming up"})
        else:
            _json(handler, 200, {"multipart_uploads_enabled": True, "artifacts_presigned_only": False})

    fs = _client(fake_server(flaky))
    assert fs.server_info() == {}
    assert fs.server_info()["multipart_uploads_enabled"] is True
    assert fs.server_info()["multipart_uploads_enabled"] is True
    assert calls == ["/api/3.0/mlflow/server-info"] * 2
    assert fs.multipart_upload_enabled() is True
    assert _client(fs.service_url, max_retries=0).multipart_upload_enabled() is True


def test_the_client_variable_overrides_the_advertisement(
    fake_server: Callable[[Handler], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = fake_server(lambda h: _json(h, 200, {"multipart_uploads_enabled": True}))
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    assert _client(service).multipart_upload_enabled() is False


def test_an_old_server_without_server_info_advertises_nothing(fake_server: Callable[[Handler], str]) -> None:
    fs = _client(fake_server(lambda h: _json(h, 404, {})))
    assert fs.multipart_upload_enabled() is False and fs.multipart_download_enabled() is False
    assert fs._server_info == {}  # a definitive answer, cached


def test_a_missing_file_is_file_not_found(fake_server: Callable[[Handler], str]) -> None:
    def handler(h: BaseHTTPRequestHandler) -> None:
        if "server-info" in h.path:
            _json(h, 404, {})
        elif "?path=" in h.path:
            _json(h, 200, {})
        else:
            _json(h, 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such artifact"})

    fs = _client(fake_server(handler))
    with pytest.raises(FileNotFoundError):
        fs.info("run/missing.txt")
    with pytest.raises(FileNotFoundError, match="no such artifact"):
        fs.cat_file("run/missing.txt")
