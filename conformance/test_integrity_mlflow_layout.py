"""Digest records on FTP, SFTP and HDFS are invisible to MLflow's own repositories (issue #18).

These stores have no place of their own for a record, so artifact_fs keeps a small file. For a run's
or a logged model's artifacts (MLflow's layout, ``…/<id>/artifacts/…``) it lives at
``…/<id>/.artifact.digests/artifacts/…``: inside the run's directory, outside the artifact root that
MLflow's ``FTPArtifactRepository``, ``SFTPArtifactRepository`` and ``HdfsArtifactRepository`` list
and download. Each test logs a tree with artifact_fs, lets MLflow (its own virtual environment) list
and download the run, and checks that MLflow sees exactly the artifacts while artifact_fs still
finds and checks every record, and that deletes take the records along.
"""

from __future__ import annotations

import errno
import hashlib
import uuid
from pathlib import Path

import pytest

from artifact_fs import integrity
from artifact_fs.paths import DIGEST_DIRECTORY
from artifact_fs.store import ArtifactStore
from conformance.harness import BackendUnderTest
from conformance.test_ftp_mlflow import FILES, make_local_tree, run_mlflow

LAYOUTS = {
    "run": lambda: f"1/{uuid.uuid4().hex}/artifacts",
    "logged-model": lambda: f"1/models/m-{uuid.uuid4().hex}/artifacts",
}


def check_layout(
    backend: BackendUnderTest, mlflow_root: str, environ: dict[str, str], tmp_path: Path
) -> None:
    for layout, make in LAYOUTS.items():
        relative = f"{uuid.uuid4().hex[:12]}/{make()}"
        store = ArtifactStore(f"{backend.root_url}/{relative}", **backend.storage_options)
        local = tmp_path / layout
        make_local_tree(local)
        store.log_artifacts(str(local))

        fs, root = store.root.backend_fs, store.root.path
        id_directory = root.rstrip("/").rsplit("/", 1)[0]
        for name in FILES:  # every record is in the id's directory, none under the artifact root
            location = integrity.digest_store(store.root.backend).location(f"{root}/{name}")
            assert location == f"{id_directory}/{DIGEST_DIRECTORY}/artifacts/{name}", layout
            assert fs.exists(location), (layout, name)
        assert not any(DIGEST_DIRECTORY in path for path in fs.find(root, withdirs=True)), layout

        seen = run_mlflow("read", f"{mlflow_root}/{relative}", environ)
        assert not any(DIGEST_DIRECTORY in path for path, _, _ in seen["listing"]), (layout, seen["listing"])
        assert seen["digests"] == {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}

        # artifact_fs still checks against the record: bytes changed behind its back fail the download.
        changed = f"{root}/dir/nested/config.json"
        destination = tmp_path / f"{layout}-download"
        destination.mkdir()
        fs.pipe_file(changed, b'{"alpha": 2}')
        with pytest.raises(OSError) as caught:
            store.download_artifacts("dir/nested/config.json", str(destination))
        assert caught.value.errno == errno.EIO
        assert "config.json" in str(caught.value) and "recorded digest" in str(caught.value)
        assert not (destination / "config.json").exists()

        # Deletes take the records along: a directory's, then the whole root's.
        store.delete_artifacts("dir")
        fs.invalidate_cache()
        assert not fs.exists(f"{id_directory}/{DIGEST_DIRECTORY}/artifacts/dir")
        assert fs.exists(f"{id_directory}/{DIGEST_DIRECTORY}/artifacts/top.txt")
        store.delete_artifacts()
        fs.invalidate_cache()
        assert not fs.exists(f"{id_directory}/{DIGEST_DIRECTORY}"), (
            layout,
            fs.find(id_directory, withdirs=True),
        )


@pytest.mark.ftp
@pytest.mark.mlflow
def test_mlflow_never_lists_records_on_ftp(backend_ftp: BackendUnderTest, tmp_path: Path) -> None:
    check_layout(backend_ftp, backend_ftp.details["url_with_password"], {}, tmp_path)


@pytest.mark.sftp
@pytest.mark.mlflow
def test_mlflow_never_lists_records_on_sftp(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from conformance.backends.sftp import SFTP

    backend: BackendUnderTest = request.getfixturevalue(SFTP.fixture_name)
    check_layout(backend, backend.root_url, dict(backend.environ), tmp_path)


@pytest.mark.hdfs
@pytest.mark.mlflow
def test_mlflow_never_lists_records_on_hdfs(
    backend_hdfs_pyarrow: BackendUnderTest, backend_hdfs_either: BackendUnderTest, tmp_path: Path
) -> None:
    """MLflow reaches HDFS through libhdfs (the pyarrow backend's environment); artifact_fs, each engine."""
    check_layout(backend_hdfs_either, backend_hdfs_pyarrow.root_url, {}, tmp_path)
