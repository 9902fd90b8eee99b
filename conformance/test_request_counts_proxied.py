"""Requests of a tree upload through an artifact server: one batch request for its small files
(``server/batch.py``) and no listing at all.

The counterpart of ``test_mlflow_artifacts_request_counts.py`` (downloads) for uploads (issue #13): a
counting relay in front of ``artifact-fs serve`` records every request of ``log_artifacts``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifact_fs
from conformance.backends.mlflow_artifacts import CLIENT_OPTIONS
from conformance.helpers import MLFLOW_ARTIFACTS, RequestCountingProxy, random_bytes
from conformance.servers.artifact_server import ArtifactServer

pytestmark = pytest.mark.mlflow_artifacts

TREE = {"": 20, "a": 15, "a/b": 10, "c": 5}
FILES = sum(TREE.values())


@pytest.fixture(params=["artifact_server_local", "artifact_server_s3"])
def counted(request: pytest.FixtureRequest) -> Iterator[tuple[RequestCountingProxy, str]]:
    server: ArtifactServer = request.getfixturevalue(request.param)
    proxy = RequestCountingProxy(server.port)
    try:
        yield proxy, f"{proxy.url}{MLFLOW_ARTIFACTS}/upload-counts/{uuid.uuid4().hex[:12]}"
    finally:
        proxy.stop()


def test_tree_upload_is_one_batch_and_lists_nothing(
    counted: tuple[RequestCountingProxy, str], tmp_path: Path
) -> None:
    proxy, url = counted
    for directory, count in TREE.items():
        for index in range(count):
            path = tmp_path / directory / f"f{index:02d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(random_bytes(100 + index, seed=index))
    store = artifact_fs.ArtifactStore(url, **CLIENT_OPTIONS)
    proxy.reset()

    store.log_artifacts(str(tmp_path))

    kinds = proxy.reset()
    # small files go up in batches (server/batch.py): no request per file, and no listing
    assert kinds["PUT other"] == 0 and kinds["batch-upload"] == 1, kinds
    assert kinds["list"] == 0 and kinds["download"] == 0, kinds
    assert sum(kinds.values()) == 1 + kinds["server-info"] and kinds["server-info"] == 1, kinds
    assert len(store.list_artifacts("a/b")) == TREE["a/b"]
