"""An artifact store on the server's root URL, and the server and the store on the same tree.

``http://HOST:PORT/api/2.0/mlflow-artifacts/artifacts`` (with or without a trailing slash, and the
``/ajax-api/`` form) is the destination's root: what ``ArtifactStore`` and the ``artifact-fs`` command
log there lands at the root, is listed, downloaded and deleted there (it once landed under ``None/``).
And the server answers list and delete exactly as ``ArtifactStore`` does on the same local tree,
because its routes call the store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from artifact_fs import ArtifactStore
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from conformance.servers.artifact_server import ArtifactServer, artifact_fs_command, start_artifact_server

pytestmark = [pytest.mark.server, pytest.mark.mlflow_artifacts]


@pytest.fixture(scope="module")
def server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtifactServer]:
    destination = tmp_path_factory.mktemp("root-destination")
    started = start_artifact_server(server_log_dir, str(destination), name="artifact-server-root")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def destination(server: ArtifactServer) -> Iterator[Path]:
    root = Path(server.destination)
    yield root
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    MlflowArtifactsFileSystem.clear_instance_cache()


ROOT_FORMS = ["api", "api-slash", "ajax-api"]


def _root_url(server: ArtifactServer, form: str) -> str:
    prefix = "ajax-api" if form == "ajax-api" else "api"
    url = f"{server.url}/{prefix}/2.0/mlflow-artifacts/artifacts"
    return url + "/" if form == "api-slash" else url


def _tree(root: Path) -> dict[str, bytes | None]:
    return {
        path.relative_to(root).as_posix(): None if path.is_dir() else path.read_bytes()
        for path in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("form", ROOT_FORMS)
def test_a_store_on_the_server_root_logs_lists_downloads_and_deletes_at_the_root(
    server: ArtifactServer, destination: Path, tmp_path: Path, form: str
) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"at the root")
    store = ArtifactStore(_root_url(server, form))
    store.log_artifact(source, "a")
    store.log_artifact(source)
    assert _tree(destination) == {"a": None, "a/f.txt": b"at the root", "f.txt": b"at the root"}
    assert [(i.path, i.is_dir) for i in store.list_artifacts()] == [("a", True), ("f.txt", False)]
    assert [(i.path, i.file_size) for i in store.list_artifacts("a")] == [("a/f.txt", 11)]
    out = tmp_path / "out"
    out.mkdir()
    assert Path(store.download_artifacts("a", out)).joinpath("f.txt").read_bytes() == b"at the root"
    store.delete_artifacts("a")
    assert _tree(destination) == {"f.txt": b"at the root"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*artifact_fs_command(), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("form", ROOT_FORMS)
def test_the_cli_on_the_server_root_works_at_the_root(
    server: ArtifactServer, destination: Path, tmp_path: Path, form: str
) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"from the command")
    url = _root_url(server, form)
    logged = _cli("log", str(source), url, "-p", "a")
    assert logged.returncode == 0, logged.stderr
    assert _tree(destination) == {"a": None, "a/f.txt": b"from the command"}
    listed = _cli("ls", url, "a", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"path": "a/f.txt", "is_dir": False, "file_size": 16}]
    out = tmp_path / "out"
    out.mkdir()
    downloaded = _cli("download", url, "a", "--dst", str(out))
    assert downloaded.returncode == 0, downloaded.stderr
    assert (out / "a" / "f.txt").read_bytes() == b"from the command"
    removed = _cli("rm", url, "a")
    assert removed.returncode == 0, removed.stderr
    assert _tree(destination) == {}


def _plant_tree(root: Path) -> None:
    (root / "model" / "sub").mkdir(parents=True)
    (root / "model" / "empty").mkdir()
    (root / "model" / "MLmodel").write_bytes(b"flavors: {}\n")
    (root / "model" / "zero.bin").write_bytes(b"")
    (root / "model" / "sub" / "weights.bin").write_bytes(os.urandom(3000))
    (root / "model" / ".artifact.uploading.abc123").write_bytes(b"an upload in progress")
    (root / "model-sibling").mkdir()
    (root / "model-sibling" / "keep.txt").write_bytes(b"a sibling prefix survives")
    (root / "top.txt").write_bytes(b"top")


def _server_listing(server: ArtifactServer, path: str) -> list[dict[str, Any]]:
    response = requests.get(f"{server.artifacts_url}", params={"path": path} if path else None, timeout=30)
    response.raise_for_status()
    files: list[dict[str, Any]] = response.json().get("files", [])
    return files


def _store_listing(store: ArtifactStore, path: str) -> list[dict[str, Any]]:
    listed = []
    for info in store.list_artifacts(path):
        item: dict[str, Any] = {"path": info.path.rsplit("/", 1)[-1], "is_dir": info.is_dir}
        if not info.is_dir and info.file_size:
            item["file_size"] = info.file_size
        listed.append(item)
    return listed


@pytest.mark.parametrize("path", ["", "model", "model/sub", "model/empty", "model/MLmodel", "missing"])
def test_the_server_and_the_store_list_the_same_tree_identically(
    server: ArtifactServer, destination: Path, path: str
) -> None:
    _plant_tree(destination)
    assert _server_listing(server, path) == _store_listing(ArtifactStore(str(destination)), path)


DELETED = ["model/sub/weights.bin", "model/sub", "model", "missing/file", "model/empty"]


@pytest.mark.parametrize("path", DELETED)
def test_the_server_and_the_store_delete_identically(
    server: ArtifactServer, destination: Path, tmp_path: Path, path: str
) -> None:
    _plant_tree(destination)
    twin = tmp_path / "twin"
    shutil.copytree(destination, twin)
    response = requests.delete(f"{server.artifacts_url}/{path}", timeout=30)
    assert response.status_code == 200, response.text
    ArtifactStore(str(twin)).delete_artifacts(path)
    assert _tree(destination) == _tree(twin)
    assert path.split("/", maxsplit=1)[0] == "missing" or not (destination / path).exists()
    assert (destination / "model-sibling" / "keep.txt").exists()
