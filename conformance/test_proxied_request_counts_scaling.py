"""Tree transfers through ``artifact-fs serve`` cost N + a constant requests, whatever N (issue #13);
small files cost a constant both ways (they go in batches, ``server/batch.py``).

A counting relay in front of the server records every request of ``ArtifactStore.log_artifacts`` and
``download_artifacts`` for two tree sizes with the same directories. Small files go in batches,
so the larger tree adds one batch request, not one per file; a file over the batch limit adds
exactly one request (its PUT or its GET). Never a per-file listing, HEAD, server-info or digest
record round trip. The transfer threads start together, and the server's capabilities
(``/api/3.0/mlflow/server-info``) are still asked once per filesystem, not once per thread.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifact_fs
from artifact_fs.server import batch
from conformance.backends.mlflow_artifacts import CLIENT_OPTIONS
from conformance.helpers import MLFLOW_ARTIFACTS, RequestCountingProxy, random_bytes
from conformance.servers.artifact_server import ArtifactServer

pytestmark = pytest.mark.mlflow_artifacts

DIRECTORIES = ("", "a", "a/b", "c")
SMALL, LARGE = 8, 32
"""Files per directory in the two trees: 32 and 128 files."""
THREADS = 8
"""More transfer threads than MLflow's default on two CPUs, so several ask for server-info at once."""


@pytest.fixture(params=["artifact_server_local", "artifact_server_s3"])
def proxy(request: pytest.FixtureRequest) -> Iterator[RequestCountingProxy]:
    server: ArtifactServer = request.getfixturevalue(request.param)
    relay = RequestCountingProxy(server.port)
    try:
        yield relay
    finally:
        relay.stop()


def _tree(root: Path, per_directory: int) -> int:
    for directory in DIRECTORIES:
        for index in range(per_directory):
            path = root / directory / f"f{index:03d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(random_bytes(512 + index, seed=index))
    return per_directory * len(DIRECTORIES)


def _fresh_store(url: str) -> artifact_fs.ArtifactStore:
    """A store on a new filesystem instance: nothing cached from an earlier test (server-info)."""
    return artifact_fs.ArtifactStore(url, max_workers=THREADS, skip_instance_cache=True, **CLIENT_OPTIONS)


def _upload_counts(
    proxy: RequestCountingProxy, tmp_path: Path, per_directory: int
) -> tuple[int, Counter[str]]:
    source = tmp_path / f"source-{per_directory}"
    files = _tree(source, per_directory)
    store = _fresh_store(f"{proxy.url}{MLFLOW_ARTIFACTS}/scaling/{uuid.uuid4().hex[:12]}")
    proxy.reset()
    store.log_artifacts(str(source))
    return files, proxy.reset()


def _download_counts(
    proxy: RequestCountingProxy, tmp_path: Path, per_directory: int
) -> tuple[int, Counter[str]]:
    source = tmp_path / f"logged-{per_directory}"
    files = _tree(source, per_directory)
    url = f"{proxy.url}{MLFLOW_ARTIFACTS}/scaling/{uuid.uuid4().hex[:12]}"
    _fresh_store(url).log_artifacts(str(source))
    destination = tmp_path / f"downloaded-{per_directory}"
    destination.mkdir()
    store = _fresh_store(url)
    proxy.reset()
    store.download_artifacts(dst_path=str(destination))
    kinds = proxy.reset()
    assert sum(1 for path in destination.rglob("*") if path.is_file()) == files
    return files, kinds


def test_a_tree_upload_of_small_files_is_a_constant_and_asks_server_info_once(
    proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    _, small = _upload_counts(proxy, tmp_path, SMALL)
    _, large = _upload_counts(proxy, tmp_path, LARGE)

    assert small["server-info"] == large["server-info"] == 1, (small, large)
    # small files go up in batches (server/batch.py): no request per file, at most two tar streams
    assert small["PUT other"] == large["PUT other"] == 0, (small, large)
    assert small["batch-upload"] == 1 and large["batch-upload"] == 2, (small, large)
    assert sum(small.values()) == 2 and sum(large.values()) == 3, (small, large)


def test_a_tree_upload_of_files_too_large_for_a_batch_adds_one_put_per_file(
    proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    """Files over the server's batch limit go up alone: one PUT each, no batch for a single small file."""
    source = tmp_path / "large-files"
    for index in range(4):
        (source / f"d{index % 2}").mkdir(parents=True, exist_ok=True)
        data = random_bytes(batch.MAX_FILE_SIZE + 1 + index, seed=index)
        (source / f"d{index % 2}" / f"f{index}.bin").write_bytes(data)
    (source / "small.txt").write_bytes(b"small")
    store = _fresh_store(f"{proxy.url}{MLFLOW_ARTIFACTS}/scaling/{uuid.uuid4().hex[:12]}")
    proxy.reset()

    store.log_artifacts(str(source))

    kinds = proxy.reset()
    assert kinds["PUT other"] == 5 and kinds["batch-upload"] == 0, kinds


def test_a_tree_download_of_small_files_is_a_constant_and_asks_server_info_once(
    proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    _, small = _download_counts(proxy, tmp_path, SMALL)
    _, large = _download_counts(proxy, tmp_path, LARGE)

    assert small["server-info"] == large["server-info"] == 1, (small, large)
    # Small files come in batches (server/batch.py): no request per file; at most two tar streams.
    per_file = [kinds["download"] + kinds["presigned"] for kinds in (small, large)]
    assert per_file == [0, 0], (small, large)
    assert small["batch"] == 1 and large["batch"] == 2, (small, large)
    assert small["list"] == large["list"], (small, large)  # listings depend on directories, not files
    assert sum(large.values()) - sum(small.values()) == 1, (small, large)


def test_a_tree_download_of_files_too_large_for_a_batch_adds_one_get_per_file(
    proxy: RequestCountingProxy, tmp_path: Path
) -> None:
    """Files over the server's batch limit are not asked for in a batch: one GET each, nothing more."""
    source = tmp_path / "large-files"
    for index in range(6):
        (source / f"d{index % 2}").mkdir(parents=True, exist_ok=True)
        (source / f"d{index % 2}" / f"f{index}.bin").write_bytes(
            random_bytes(batch.MAX_FILE_SIZE + 1 + index, seed=index)
        )
    (source / "small.txt").write_bytes(b"small")
    url = f"{proxy.url}{MLFLOW_ARTIFACTS}/scaling/{uuid.uuid4().hex[:12]}"
    _fresh_store(url).log_artifacts(str(source))
    destination = tmp_path / "out"
    destination.mkdir()
    store = _fresh_store(url)
    proxy.reset()

    store.download_artifacts(dst_path=str(destination))

    kinds = proxy.reset()
    assert {
        p.relative_to(destination).as_posix(): p.read_bytes() for p in destination.rglob("*") if p.is_file()
    } == {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    # one small file is no batch; each large one is one GET (a single range) through the proxy
    assert kinds["download"] + kinds["presigned"] == 7 and kinds["batch"] == 0, kinds
