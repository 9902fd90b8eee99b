"""Digests on the wire (issue #18): ``artifact-fs serve`` and artifact_fs's proxied client.

* GET and HEAD carry ``Repr-Digest`` (RFC 9530) of what is stored; a whole body that no longer
  matches it (bytes changed on disk behind the server) is never delivered complete.
* A PUT with a wrong ``Content-Digest`` / ``Repr-Digest`` / ``Content-MD5`` is a 400 and nothing is
  stored; a malformed one is a 400; a right one is stored and answered with its ``Repr-Digest``.
* artifact_fs's client sends ``Content-Digest`` with every PUT and checks ``Repr-Digest`` on whole
  reads: a damaged download is ``DigestMismatchError`` naming the file, with no local file left.
* MLflow's own client logs, lists and downloads through the server unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
import requests

from artifact_fs import ArtifactStore, integrity
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from artifact_fs.integrity import DigestMismatchError
from artifact_fs.paths import DIGEST_DIRECTORY
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.mlflow_env import mlflow_python, run_mlflow_python

pytestmark = pytest.mark.server

API = "/api/2.0/mlflow-artifacts"
CLIENT_ENVIRON = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
MLFLOW_CLIENT_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "GIT_PYTHON_REFRESH": "quiet"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sha256_field(data: bytes) -> str:
    return f"sha-256=:{b64(hashlib.sha256(data).digest())}:"


def is_digest_of(field: str, data: bytes, *, identity: bool = True) -> bool:
    """Every member of an RFC 9530 field is the digest of ``data``; ``identity``: SHA-256 is one."""
    members = integrity.parse_field(field)
    for algorithm, digest in members.items():
        hasher = integrity.Hasher(algorithm)
        hasher.update(data)
        if hasher.digest() != digest:
            return False
    return bool(members) and (not identity or "sha-256" in members)


@pytest.fixture(scope="module")
def server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtifactServer]:
    destination = tmp_path_factory.mktemp("integrity-wire-destination")
    started = start_artifact_server(server_log_dir, str(destination), name="artifact-server-integrity")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A fresh directory per test."""
    return request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:80]


@pytest.fixture
def client(server: ArtifactServer) -> MlflowArtifactsFileSystem:
    return MlflowArtifactsFileSystem(
        service_url=f"{server.url}/api/2.0", environ=CLIENT_ENVIRON, skip_instance_cache=True
    )


def url(server: ArtifactServer, path: str) -> str:
    return f"{server.artifacts_url}/{path}"


def listing(server: ArtifactServer, path: str) -> list[dict[str, Any]]:
    response = requests.get(f"{server.url}{API}/artifacts", params={"path": path}, timeout=30)
    response.raise_for_status()
    files: list[dict[str, Any]] = response.json().get("files", [])
    return files


def tamper(server: ArtifactServer, path: str, offset: int = 10) -> None:
    """Change one byte of a stored file in place, behind the server's back (same size, same inode)."""
    with open(Path(server.destination) / path, "r+b") as stored:
        stored.seek(offset)
        byte = stored.read(1)
        stored.seek(offset)
        stored.write(bytes([byte[0] ^ 0xFF]))


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__


# -- GET / HEAD ---------------------------------------------------------------------------------------
def test_get_and_head_carry_the_repr_digest_of_the_body(server: ArtifactServer, prefix: str) -> None:
    data = os.urandom(300_000)
    put = requests.put(url(server, f"{prefix}/a.bin"), data=data, timeout=30)
    assert put.status_code == 200
    assert put.json() == {}
    assert is_digest_of(put.headers["Repr-Digest"], data)

    got = requests.get(url(server, f"{prefix}/a.bin"), timeout=30)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Content-Length"] == str(len(data))
    assert is_digest_of(got.headers["Repr-Digest"], got.content)

    head = requests.head(url(server, f"{prefix}/a.bin"), timeout=30)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert is_digest_of(head.headers["Repr-Digest"], data)

    # a range is pinned, not hashed: it still names the whole representation's digest
    ranged = requests.get(url(server, f"{prefix}/a.bin"), headers={"Range": "bytes=10-19"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    assert is_digest_of(ranged.headers["Repr-Digest"], data)


def test_the_listing_carries_what_the_store_lists_cheaply(server: ArtifactServer, prefix: str) -> None:
    data = b"listed bytes"
    assert requests.put(url(server, f"{prefix}/listed.txt"), data=data, timeout=30).status_code == 200
    store = ArtifactStore(server.destination)
    expected = {info.path.rsplit("/", 1)[-1]: info.digest for info in store.list_artifacts(prefix)}
    files = listing(server, prefix)
    assert [item["path"] for item in files] == ["listed.txt"]  # the digest records stay hidden
    assert files[0].get("digest") == expected["listed.txt"]
    if "digest" in files[0]:
        assert is_digest_of(files[0]["digest"], data)


# -- PUT ----------------------------------------------------------------------------------------------
def _right_headers(data: bytes) -> dict[str, dict[str, str]]:
    crc = google_crc32c.Checksum()
    crc.update(data)
    return {
        "content-digest-sha256": {"Content-Digest": sha256_field(data)},
        "repr-digest-sha512": {"Repr-Digest": f"sha-512=:{b64(hashlib.sha512(data).digest())}:"},
        "content-md5": {"Content-MD5": b64(hashlib.md5(data).digest())},
        "crc32c-and-unknown": {"Content-Digest": f"crc32c=:{b64(crc.digest())}:, unixsum=:AAAA:"},
        "only-unknown": {"Repr-Digest": "sha-384=:AAAA:"},
        "all": {
            "Content-Digest": sha256_field(data),
            "Repr-Digest": sha256_field(data),
            "Content-MD5": b64(hashlib.md5(data).digest()),
        },
    }


@pytest.mark.parametrize("case", list(_right_headers(b"")))
def test_a_put_with_right_digests_is_stored(server: ArtifactServer, prefix: str, case: str) -> None:
    data = os.urandom(50_000)
    put = requests.put(
        url(server, f"{prefix}/ok.bin"), data=data, headers=_right_headers(data)[case], timeout=30
    )
    assert put.status_code == 200, put.text
    assert is_digest_of(put.headers["Repr-Digest"], data)
    assert requests.get(url(server, f"{prefix}/ok.bin"), timeout=30).content == data


WRONG = {
    "content-digest": {"Content-Digest": sha256_field(b"other bytes")},
    "repr-digest": {"Repr-Digest": sha256_field(b"other bytes")},
    "content-md5": {"Content-MD5": b64(hashlib.md5(b"other bytes").digest())},
    "one-of-two-wrong": {"Content-Digest": "sha-512=:" + b64(bytes(64)) + ":"},
}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_put_with_a_wrong_digest_is_refused_and_nothing_is_stored(
    server: ArtifactServer, prefix: str, case: str
) -> None:
    data = os.urandom(100_000)
    headers = dict(WRONG[case])
    if case == "one-of-two-wrong":
        headers["Repr-Digest"] = sha256_field(data)
    put = requests.put(url(server, f"{prefix}/bad.bin"), data=data, headers=headers, timeout=30)
    assert put.status_code == 400
    body = put.json()
    assert body["error_code"] in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}
    assert "bad.bin" in body["message"]
    assert listing(server, prefix) == []
    assert requests.get(url(server, f"{prefix}/bad.bin"), timeout=30).status_code == 404
    assert not (Path(server.destination) / prefix).exists() or not any(
        (Path(server.destination) / prefix).rglob("*bad.bin*")
    )


MALFORMED = {
    "not-a-dictionary": {"Content-Digest": "sha-256=abc"},
    "not-base64": {"Repr-Digest": "sha-256=:not base64!:"},
    "wrong-length": {"Content-Digest": "sha-256=:" + b64(b"short") + ":"},
    "content-md5": {"Content-MD5": "xyz"},
    "headers-disagree": {"Content-Digest": sha256_field(b"a"), "Repr-Digest": sha256_field(b"b")},
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_digest_header_is_a_400(server: ArtifactServer, prefix: str, case: str) -> None:
    put = requests.put(url(server, f"{prefix}/m.bin"), data=b"a", headers=MALFORMED[case], timeout=30)
    assert put.status_code == 400
    assert put.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert requests.get(url(server, f"{prefix}/m.bin"), timeout=30).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"d/{DIGEST_DIRECTORY}/x.bin"),
        ("GET", f"d/{DIGEST_DIRECTORY}/x.bin"),
        ("DELETE", f"d/{DIGEST_DIRECTORY}"),
        ("PUT", f"{DIGEST_DIRECTORY}"),
    ],
)
def test_the_digest_directory_is_not_an_artifact_name(server: ArtifactServer, method: str, path: str) -> None:
    response = requests.request(method, url(server, path), data=b"x" if method == "PUT" else None, timeout=30)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    listed = requests.get(
        f"{server.url}{API}/artifacts", params={"path": f"d/{DIGEST_DIRECTORY}"}, timeout=30
    )
    assert listed.status_code == 400


# -- bytes changed behind the server ------------------------------------------------------------------
def test_a_changed_file_is_never_served_complete(server: ArtifactServer, prefix: str) -> None:
    data = os.urandom(3 * 1024 * 1024)
    assert requests.put(url(server, f"{prefix}/model.bin"), data=data, timeout=60).status_code == 200
    tamper(server, f"{prefix}/model.bin", offset=len(data) // 2)

    with requests.get(url(server, f"{prefix}/model.bin"), stream=True, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["Content-Length"] == str(len(data))
        received = bytearray()
        with pytest.raises(requests.RequestException):
            for chunk in response.iter_content(64 * 1024):
                received += chunk
    assert len(received) < len(data)
    assert f"{prefix}/model.bin" in server.log_text()

    # a range is not hashed: a client resuming with If-Match gets those bytes (and checks the whole)
    ranged = requests.get(url(server, f"{prefix}/model.bin"), headers={"Range": "bytes=0-9"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.content == data[:10]


def test_the_client_refuses_a_changed_file_and_leaves_nothing(
    server: ArtifactServer, client: MlflowArtifactsFileSystem, prefix: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * 1024 * 1024 + 123)
    client.pipe_file(f"{prefix}/weights.bin", data)
    client.pipe_file(f"{prefix}/small.txt", b"small and fine")
    tamper(server, f"{prefix}/weights.bin")
    tamper(server, f"{prefix}/small.txt", offset=2)

    local = tmp_path / "weights.bin"
    with pytest.raises(DigestMismatchError, match="weights.bin"):
        client.get_file(f"{prefix}/weights.bin", str(local))
    assert not local.exists()

    with pytest.raises(DigestMismatchError, match="small.txt"):
        client.cat_file(f"{prefix}/small.txt")
    # a forward-only stream does not resume: the server's withheld end is its error
    with pytest.raises(OSError, match="small.txt"), client.open(f"{prefix}/small.txt", block_size=0) as f:
        f.read()

    store = ArtifactStore(url(server, prefix), environ=CLIENT_ENVIRON)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="weights.bin") as caught:
        store.download_artifacts("weights.bin", str(out))
    assert any(isinstance(cause, DigestMismatchError) for cause in causes(caught.value))
    assert list(out.rglob("*")) == []

    # ranges stay readable (pinned by ETag, not hashed)
    assert client.cat_file(f"{prefix}/weights.bin", start=0, end=5) == data[:5]


# -- the client's uploads -----------------------------------------------------------------------------
def _capturing(client: MlflowArtifactsFileSystem, monkeypatch: pytest.MonkeyPatch, damage: bool) -> list[Any]:
    """Record each PUT's headers and body as sent; with ``damage``, flip a byte of the body on the way."""
    sent: list[Any] = []
    original = client.session.request

    def request(method: str, target: str, **kwargs: Any) -> requests.Response:
        if method == "PUT":
            body = kwargs.get("data")
            raw = body.read() if hasattr(body, "read") else bytes(body or b"")
            if damage and raw:
                raw = bytes([raw[0] ^ 0xFF]) + raw[1:]
            kwargs["data"] = raw
            sent.append((dict(kwargs.get("headers") or {}), raw))
        return original(method, target, **kwargs)

    monkeypatch.setattr(client.session, "request", request)
    return sent


def test_client_uploads_carry_content_digest(
    server: ArtifactServer,
    client: MlflowArtifactsFileSystem,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = _capturing(client, monkeypatch, damage=False)
    local = tmp_path / "file.bin"
    local.write_bytes(os.urandom(70_000))
    client.put_file(str(local), f"{prefix}/put.bin")
    client.pipe_file(f"{prefix}/pipe.bin", b"piped")
    with client.open(f"{prefix}/written.bin", "wb") as f:
        f.write(b"a" * 10)
        f.write(b"b" * 10)
    assert all(is_digest_of(headers["Content-Digest"], raw, identity=False) for headers, raw in sent)
    assert [raw for _, raw in sent] == [local.read_bytes(), b"piped", b"a" * 10 + b"b" * 10]


def test_a_body_damaged_on_the_way_is_refused(
    server: ArtifactServer,
    client: MlflowArtifactsFileSystem,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _capturing(client, monkeypatch, damage=True)
    local = tmp_path / "file.bin"
    local.write_bytes(os.urandom(70_000))
    with pytest.raises(OSError, match="does not match"):
        client.put_file(str(local), f"{prefix}/damaged.bin")
    assert requests.get(url(server, f"{prefix}/damaged.bin"), timeout=30).status_code == 404
    assert listing(server, prefix) == []


def test_with_digests_off_the_client_sends_and_checks_nothing(
    server: ArtifactServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = MlflowArtifactsFileSystem(
        service_url=f"{server.url}/api/2.0",
        environ={**CLIENT_ENVIRON, "ARTIFACT_FS_DIGESTS": "false"},
        skip_instance_cache=True,
    )
    sent = _capturing(off, monkeypatch, damage=False)
    off.pipe_file(f"{prefix}/off.bin", b"unchecked bytes")
    assert "Content-Digest" not in sent[0][0]
    tamper(server, f"{prefix}/off.bin", offset=0)
    # the server still withholds the whole body; the client's ranged resume gets it, unchecked
    damaged = off.cat_file(f"{prefix}/off.bin")
    assert len(damaged) == len(b"unchecked bytes")
    assert damaged != b"unchecked bytes"


# -- MLflow's client, unchanged -------------------------------------------------------------------------
MLFLOW_ROUND_TRIP = """
import filecmp, json, sys
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
repo = get_artifact_repository(sys.argv[1])
repo.log_artifacts(sys.argv[2], "model")
listing = sorted((f.path, f.is_dir, f.file_size) for f in repo.list_artifacts("model"))
local = repo.download_artifacts("model", sys.argv[3])
same = filecmp.dircmp(sys.argv[2], local)
print(json.dumps({"listing": listing, "diff": same.diff_files + same.left_only + same.right_only}))
"""


@pytest.mark.mlflow
def test_mlflow_logs_lists_and_downloads_unchanged(
    server: ArtifactServer, prefix: str, tmp_path: Path
) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "MLmodel").write_text("flavors: {}\n")
    (source / "weights.bin").write_bytes(os.urandom(400_000))
    script = tmp_path / "round_trip.py"
    script.write_text(MLFLOW_ROUND_TRIP)
    out = tmp_path / "out"
    out.mkdir()
    uri = f"mlflow-artifacts:/{prefix}/run/artifacts"
    done = subprocess.run(
        [mlflow_python(), str(script), uri, str(source), str(out)],
        env={**os.environ, **MLFLOW_CLIENT_ENV, "MLFLOW_TRACKING_URI": server.url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["listing"] == [["model/MLmodel", False, 12], ["model/weights.bin", False, 400_000]]
    assert result["diff"] == []
    # what MLflow logged carries a digest the server serves
    got = requests.head(url(server, f"{prefix}/run/artifacts/model/weights.bin"), timeout=30)
    assert is_digest_of(got.headers["Repr-Digest"], (source / "weights.bin").read_bytes())


@pytest.mark.mlflow
def test_mlflow_cannot_download_a_changed_file_as_if_complete(
    server: ArtifactServer, prefix: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    path = f"{prefix}/run/artifacts/model.bin"
    assert requests.put(url(server, path), data=data, timeout=60).status_code == 200
    tamper(server, path)
    code = f"""
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
repo = get_artifact_repository("mlflow-artifacts:/{prefix}/run/artifacts")
try:
    repo.download_artifacts("model.bin", {str(tmp_path)!r})
except Exception as exc:
    print("FAILED", type(exc).__name__)
else:
    print("DOWNLOADED")
"""
    env = {**MLFLOW_CLIENT_ENV, "MLFLOW_TRACKING_URI": server.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    output = run_mlflow_python(code, env=env).stdout
    assert "FAILED" in output, output
    local = tmp_path / "model.bin"
    assert not local.exists() or local.stat().st_size < len(data)  # never a complete-looking file


def test_the_client_reads_the_servers_record_of_one_file(
    client: MlflowArtifactsFileSystem, prefix: str
) -> None:
    client.pipe_file(f"{prefix}/one.bin", b"one file")
    field = client.repr_digest(f"{prefix}/one.bin")
    assert field is not None
    assert is_digest_of(field, b"one file")
