"""A tree download through an artifact server costs one listing per directory and one GET per file
(``ArtifactStore`` through ``artifact-fs serve``: a batch request per up to 1,000 small files instead).

Guards issue #13 item 1: ``get_file`` used to ask ``isdir`` (a listing of the whole parent) once per
file, so 1,000 files made ~1,000 listings of 1,000 entries. A counting HTTP proxy in front of
``artifact-fs serve`` records every request the client makes, by kind.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifact_fs
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from conformance.backends.mlflow_artifacts import CLIENT_OPTIONS
from conformance.helpers import MLFLOW_ARTIFACTS, RequestCountingProxy
from conformance.servers.artifact_server import ArtifactServer

pytestmark = pytest.mark.mlflow_artifacts

FILES = 50
TREE = {"": 20, "a": 15, "a/b": 10, "c": 5}
"""Files per directory: 50 files in 4 directories."""
SLACK = 3
"""Requests allowed beyond one per directory / file: the parent of the root, server-info."""
ARTIFACTS = MLFLOW_ARTIFACTS


@pytest.fixture(params=["artifact_server_local", "artifact_server_s3"])
def counted(request: pytest.FixtureRequest) -> Iterator[tuple[RequestCountingProxy, str]]:
    """A counting proxy in front of one artifact server, and a fresh artifact URL through it."""
    server: ArtifactServer = request.getfixturevalue(request.param)
    proxy = RequestCountingProxy(server.port)
    try:
        yield proxy, f"{proxy.url}{ARTIFACTS}/request-counts/{uuid.uuid4().hex[:12]}"
    finally:
        proxy.stop()


def _upload_tree(url: str, source: Path) -> dict[str, bytes]:
    expected = {}
    for directory, count in TREE.items():
        for index in range(count):
            relative = f"{directory}/f{index:02d}.txt".lstrip("/")
            data = f"{relative}\n".encode() * (index + 1)
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            (source / relative).write_bytes(data)
            expected[relative] = data
    artifact_fs.ArtifactStore(url, **CLIENT_OPTIONS).log_artifacts(str(source))
    assert len(expected) == FILES
    return expected


def _downloaded(root: Path) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"): Path(
            folder, name
        ).read_bytes()
        for folder, _, names in os.walk(root)
        for name in names
    }


def _per_file_requests(kinds: Counter[str]) -> int:
    return kinds["download"] + kinds["presigned"]


def test_fsspec_get_of_a_tree_lists_each_directory_once_and_gets_each_file_once(
    counted: tuple[RequestCountingProxy, str], tmp_path: Path
) -> None:
    proxy, url = counted
    expected = _upload_tree(url, tmp_path / "source")
    fs, root = artifact_fs.url_to_fs(url, skip_instance_cache=True, **CLIENT_OPTIONS)
    assert isinstance(fs, MlflowArtifactsFileSystem)
    proxy.reset()

    fs.get(root + "/", str(tmp_path / "fsspec") + "/", recursive=True)

    kinds = proxy.reset()
    assert _downloaded(tmp_path / "fsspec") == expected
    assert kinds["list"] <= len(TREE) + SLACK, kinds
    assert FILES <= _per_file_requests(kinds) <= FILES + SLACK, kinds


def test_store_download_of_a_tree_never_lists_per_file(
    counted: tuple[RequestCountingProxy, str], tmp_path: Path
) -> None:
    proxy, url = counted
    expected = _upload_tree(url, tmp_path / "source")
    store = artifact_fs.ArtifactStore(url, **CLIENT_OPTIONS)
    (tmp_path / "store").mkdir()
    proxy.reset()

    local = store.download_artifacts(dst_path=str(tmp_path / "store"))

    kinds = proxy.reset()
    assert _downloaded(Path(local)) == expected
    # The store walks the tree itself: each directory is listed once by its own listing and once by
    # its parent's (the proxied ls hides directories with no files under them).
    assert kinds["list"] <= 2 * len(TREE) + SLACK, kinds
    # artifact-fs serve takes small files in batches (server/batch.py): no request per file at all.
    assert _per_file_requests(kinds) == 0 and 1 <= kinds["batch"] <= 2, kinds


def test_get_file_of_a_directory_makes_a_local_directory(
    counted: tuple[RequestCountingProxy, str], tmp_path: Path
) -> None:
    _, url = counted
    _upload_tree(url, tmp_path / "source")
    fs, root = artifact_fs.url_to_fs(url, skip_instance_cache=True, **CLIENT_OPTIONS)

    fs.get_file(f"{root}/a", str(tmp_path / "a-copy"))
    fs.get_file(f"{root}/a/f00.txt", str(tmp_path / "f00.txt"))

    assert (tmp_path / "a-copy").is_dir()
    assert (tmp_path / "f00.txt").read_bytes() == b"a/f00.txt\n"
    with pytest.raises(FileNotFoundError):
        fs.get_file(f"{root}/missing.txt", str(tmp_path / "missing.txt"))
    assert not (tmp_path / "missing.txt").exists()


def test_a_streamed_open_is_one_get_and_no_listing(
    counted: tuple[RequestCountingProxy, str], tmp_path: Path
) -> None:
    proxy, url = counted
    fs, root = artifact_fs.url_to_fs(url, skip_instance_cache=True, **CLIENT_OPTIONS)
    data = os.urandom(300_000)
    fs.pipe_file(f"{root}/stream/blob.bin", data)
    proxy.reset()

    with fs.open(f"{root}/stream/blob.bin", "rb", block_size=0) as stream:
        assert stream.read(1000) == data[:1000]
        with pytest.raises(ValueError, match="Cannot seek"):
            stream.seek(0)
        assert stream.read() == data[1000:]

    kinds = proxy.reset()
    assert kinds["list"] == 0 and _per_file_requests(kinds) == 1, kinds
