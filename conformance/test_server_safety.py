"""Every path-traversal input of reference §3.4 (and encoded variants) against a real ``artifact-fs serve``.

Requests are sent with ``http.client`` so the request target reaches the server byte for byte (httpx
and requests would normalise ``..`` away). Each must be answered with 400 and must not touch anything
outside the destination: a canary file beside the destination stays unread and undeleted.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.servers.artifact_server import ArtifactServer, start_artifact_server

pytestmark = pytest.mark.server

API = "/api/2.0/mlflow-artifacts"

# (id, the artifact path as it appears in the request URL). Each names the advisory it answers.
ATTACKS: list[tuple[str, str]] = [
    ("issue-7166-lfi", "../../../../../../etc/passwd"),
    ("dot-segments-encoded", "%2e%2e/%2e%2e/canary.txt"),
    ("slashes-encoded", "..%2f..%2fcanary.txt"),
    ("cve-2024-1560-double-encoded", "..%252f..%252fcanary.txt"),
    ("triple-encoded", "..%25252f..%25252fcanary.txt"),
    ("dots-double-encoded", "%252e%252e/%252e%252e/canary.txt"),
    ("inner-traversal", "a/../../canary.txt"),
    ("cve-2023-6831-delete-traversal", "run/../../canary.txt"),
    ("absolute", "/etc/passwd"),
    ("absolute-encoded", "%2fetc%2fpasswd"),
    ("cve-2023-6977-double-slash", "//proc/self/root"),
    ("cve-2023-2780-backslash", "%5c..%5c..%5ccanary.txt"),
    ("backslash-double-encoded", "..%255c..%255ccanary.txt"),
    ("windows-drive", "C:/Windows/win.ini"),
    ("windows-drive-encoded", "C%3a%5cWindows%5cwin.ini"),
    ("file-uri", "file:///etc/passwd"),
    ("cve-2023-6909-fragment", "x%23/../../canary.txt"),
    ("cve-2024-3848-fragment", "a%23b"),
    ("cve-2024-1483-fragment-location", "http:///%23/../../../../../../../../../etc/"),
    ("cve-2024-1593-params", "..;/..;/canary.txt"),
    ("params-encoded", "a%3bx=1/b"),
    ("nul", "a%00.txt"),
    ("nul-double-encoded", "a%2500.txt"),
    ("newline", "a%0a..%0a/b"),
    ("reserved-upload-name", "dir/.artifact.uploading.x"),
]
ROUTES = ["GET artifact", "PUT artifact", "DELETE artifact", "GET list", "GET presigned", "POST mpu/create"]


def attack_request(route: str, path: str) -> tuple[str, str, bytes | None]:
    """The (method, raw target, body) that sends ``path`` to ``route``."""
    method, name = route.split(" ")
    if name == "artifact":
        return method, f"{API}/artifacts/{path}", b"pwned" if method == "PUT" else None
    if name == "list":
        return method, f"{API}/artifacts?path={path}", None
    if name == "presigned":
        return method, f"{API}/presigned/{path}", None
    return method, f"{API}/mpu/create/{path}", json.dumps({"path": "f.bin", "num_parts": 1}).encode()


@pytest.fixture(scope="module")
def guarded_server(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArtifactServer]:
    base = tmp_path_factory.mktemp("safety")
    (base / "canary.txt").write_text("secret")
    (base / "destination").mkdir()
    server = start_artifact_server(server_log_dir, str(base / "destination"), name="artifact-server-safety")
    try:
        yield server
    finally:
        server.stop()


def _send(server: ArtifactServer, method: str, target: str, body: bytes | None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, target, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("attack", "path"), ATTACKS, ids=[a for a, _ in ATTACKS])
def test_attack_is_400_and_touches_nothing(
    guarded_server: ArtifactServer, route: str, attack: str, path: str
) -> None:
    base = Path(guarded_server.destination).parent
    method, target, body = attack_request(route, path)
    status, content = _send(guarded_server, method, target, body)
    assert status == 400, (attack, route, status, content[:200])
    assert json.loads(content)["error_code"] == "INVALID_PARAMETER_VALUE"
    assert b"secret" not in content
    assert (base / "canary.txt").read_text() == "secret"
    assert sorted(p.name for p in base.iterdir()) == ["canary.txt", "destination"]
    assert list(Path(guarded_server.destination).iterdir()) == []


@pytest.mark.parametrize(
    "name",
    ["..", ".", "", "C:\\Users\\me\\..", "a%2f..", "x%23y", ".artifact.uploading.1"],
)
def test_multipart_body_file_names_are_checked(guarded_server: ArtifactServer, name: str) -> None:
    body = json.dumps({"path": name, "num_parts": 1}).encode()
    status, content = _send(guarded_server, "POST", f"{API}/mpu/create/0/run/artifacts", body)
    assert status == 400, (name, content)


def test_a_plain_path_is_served(guarded_server: ArtifactServer) -> None:
    assert _send(guarded_server, "PUT", f"{API}/artifacts/ok/a.txt", b"fine")[0] == 200
    assert _send(guarded_server, "GET", f"{API}/artifacts/ok/a.txt", None) == (200, b"fine")
    assert _send(guarded_server, "DELETE", f"{API}/artifacts/ok", None)[0] == 200
