"""The real MLflow client (its own venv, driven as a subprocess) against ``artifact-fs serve``, unchanged.

* A real ``mlflow server --no-serve-artifacts`` whose ``--default-artifact-root`` is this server:
  ``mlflow.log_artifact`` / ``download_artifacts`` and the ``mlflow artifacts`` CLI end to end.
* MLflow's ``HttpArtifactRepository`` / ``MlflowArtifactsRepository`` log, list, download and delete
  directly, including proxied multipart upload on an S3 (SeaweedFS) destination and on a GCS
  (fake-gcs-server) destination whose service-account key signs the part URLs.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.harness import BackendUnderTest
from conformance.servers.artifact_server import ArtifactServer, start_artifact_server
from conformance.servers.launcher import ServerProcess
from conformance.servers.mlflow_env import mlflow_bin, run_mlflow_cli, run_mlflow_python
from conformance.servers.mlflow_server import MlflowServer, start_mlflow_server
from conformance.servers.seaweedfs import SeaweedFS

pytestmark = [pytest.mark.server, pytest.mark.mlflow]

MIB = 1024 * 1024
CLIENT_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "GIT_PYTHON_REFRESH": "quiet"}


@pytest.fixture(scope="module")
def tracking_server(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory, artifact_server_local: ArtifactServer
) -> Iterator[MlflowServer]:
    server = start_mlflow_server(
        server_log_dir,
        tmp_path_factory.mktemp("tracking-for-artifact-fs"),
        artifacts_destination="",
        serve_artifacts=False,
        extra_args=["--default-artifact-root", artifact_server_local.artifacts_url],
        name="mlflow-tracking-artifact-fs",
    )
    try:
        yield server
    finally:
        server.stop()


def _new_run(tracking_server: MlflowServer) -> str:
    """A run started and ended with MLflow's own client; its id."""
    return (
        run_mlflow_python(
            f"import mlflow; mlflow.set_tracking_uri({tracking_server.url!r}); "
            "run = mlflow.start_run(); mlflow.end_run(); print(run.info.run_id)",
            env=CLIENT_ENV,
        )
        .stdout.strip()
        .splitlines()[-1]
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _sample_dir(base: Path) -> Path:
    source = base / "model"
    (source / "sub").mkdir(parents=True)
    (source / "MLmodel").write_text("flavors: {}\n")
    (source / "sub" / "weights.bin").write_bytes(os.urandom(300_000))
    (source / "sub" / "empty.txt").write_bytes(b"")
    return source


def test_tracking_server_with_artifact_fs_root_logs_and_downloads(
    tracking_server: MlflowServer, artifact_server_local: ArtifactServer, tmp_path: Path
) -> None:
    source = _sample_dir(tmp_path)
    single = tmp_path / "notes.txt"
    single.write_text("hello from mlflow")
    code = f"""
import json, mlflow
mlflow.set_tracking_uri({tracking_server.url!r})
with mlflow.start_run() as run:
    mlflow.log_artifact({str(single)!r})
    mlflow.log_artifacts({str(source)!r}, "model")
client = mlflow.MlflowClient()
listing = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "model/sub")]
root = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path={str(tmp_path / "out")!r})
print(json.dumps({{"uri": run.info.artifact_uri, "exp": run.info.experiment_id, "run": run.info.run_id,
                   "listing": listing, "root": root}}))
"""
    result = json.loads(run_mlflow_python(code, env=CLIENT_ENV).stdout.strip().splitlines()[-1])
    assert result["uri"].startswith(artifact_server_local.artifacts_url)
    # MLflow omits file_size for 0-byte files, so its client reads None (as with its own server).
    assert result["listing"] == [
        ["model/sub/empty.txt", False, None],
        ["model/sub/weights.bin", False, 300_000],
    ]
    downloaded = Path(result["root"])
    assert (downloaded / "notes.txt").read_text() == "hello from mlflow"
    assert _tree(downloaded / "model") == _tree(source)
    stored = Path(artifact_server_local.destination) / result["exp"] / result["run"] / "artifacts"
    assert _tree(stored / "model") == _tree(source)


def test_mlflow_artifacts_cli_works_unchanged(
    tracking_server: MlflowServer, artifact_server_local: ArtifactServer, tmp_path: Path
) -> None:
    source = _sample_dir(tmp_path)
    single = tmp_path / "single.csv"
    single.write_text("a,b\n1,2\n")
    env = {**os.environ, **CLIENT_ENV, "MLFLOW_TRACKING_URI": tracking_server.url}
    run_id = _new_run(tracking_server)

    def cli(*args: str) -> str:
        return run_mlflow_cli("artifacts", *args, env=env)

    cli("log-artifact", "-l", str(single), "-r", run_id, "-a", "tables")
    cli("log-artifacts", "-l", str(source), "-r", run_id, "-a", "model")
    listing = json.loads(cli("list", "-r", run_id, "-a", "model"))
    assert [(entry["path"], entry["is_dir"]) for entry in listing] == [
        ("model/MLmodel", False),
        ("model/sub", True),
    ]
    destination = tmp_path / "download"
    destination.mkdir()
    cli("download", "-r", run_id, "-d", str(destination))
    assert (destination / "tables" / "single.csv").read_text() == "a,b\n1,2\n"
    assert _tree(destination / "model") == _tree(source)


REPOSITORY_ROUND_TRIP = """
import filecmp, json, os, sys
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
repo = get_artifact_repository(sys.argv[1])
source, big, out = sys.argv[2], sys.argv[3], sys.argv[4]
repo.log_artifacts(source, "model")
repo.log_artifact(big, "blobs")
listing = sorted((f.path, f.is_dir, f.file_size) for f in repo.list_artifacts("model"))
big_listing = [(f.path, f.file_size) for f in repo.list_artifacts("blobs")]
file_list = repo.list_artifacts("blobs/" + os.path.basename(big))
local = repo.download_artifacts("", out)
same = filecmp.cmp(big, os.path.join(local, "blobs", os.path.basename(big)), shallow=False)
repo.delete_artifacts("model/sub")
after_delete = sorted(f.path for f in repo.list_artifacts("model"))
repo.delete_artifacts()
print(json.dumps({"type": type(repo).__name__, "listing": listing, "big": big_listing,
                  "file_list": len(file_list), "same": same, "after_delete": after_delete,
                  "after_root_delete": len(repo.list_artifacts())}))
"""


def _repository_round_trip(uri: str, tmp_path: Path, env: dict[str, str], big_size: int) -> dict[str, object]:
    source = _sample_dir(tmp_path)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(big_size))
    script = tmp_path / "round_trip.py"
    script.write_text(REPOSITORY_ROUND_TRIP)
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [str(Path(mlflow_bin()).parent / "python"), str(script), uri, str(source), str(big), str(out)],
        env={**os.environ, **CLIENT_ENV, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["listing"] == [["model/MLmodel", False, 12], ["model/sub", True, None]]
    assert result["big"] == [["blobs/big.bin", big_size]]
    assert result["file_list"] == 0  # listing a file gives nothing
    assert result["same"] is True
    assert result["after_delete"] == ["model/MLmodel"]
    assert result["after_root_delete"] == 0
    return result


def test_mlflow_artifacts_repository_on_a_local_destination(
    artifact_server_local: ArtifactServer, tmp_path: Path
) -> None:
    result = _repository_round_trip(
        "mlflow-artifacts:/repo-local/run/artifacts",
        tmp_path,
        {
            "MLFLOW_TRACKING_URI": artifact_server_local.url,
            "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
            "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(5 * MIB),
            "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(5 * MIB),
        },
        big_size=6 * MIB,  # multipart asked for, 501 from a local destination, falls back to PUT
    )
    assert result["type"] == "MlflowArtifactsRepository"
    assert "mpu/create" in artifact_server_local.log_text()


def _multipart_round_trip_keeping_a_probe(
    server: ArtifactServer, repo: str, tmp_path: Path, env: dict[str, str]
) -> Path:
    """MLflow's HttpArtifactRepository round trip through proxied multipart upload, then one more
    11 MiB (three-part) upload to ``<repo>/run/artifacts/again/probe.bin`` that is kept for inspection
    (the round trip deletes what it logged)."""
    uri = f"{server.artifacts_url}/{repo}/run/artifacts"
    env = {
        **env,
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
        "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(5 * MIB),
        "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(5 * MIB),
    }
    result = _repository_round_trip(uri, tmp_path, env, big_size=12 * MIB)
    assert result["type"] == "HttpArtifactRepository"
    log = server.log_text()
    assert f"POST /api/2.0/mlflow-artifacts/mpu/create/{repo}/run/artifacts/blobs" in log
    assert f"POST /api/2.0/mlflow-artifacts/mpu/complete/{repo}/run/artifacts/blobs" in log
    probe = tmp_path / "probe.bin"
    probe.write_bytes(os.urandom(11 * MIB))
    run_mlflow_python(
        "from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository as R; "
        f"R({uri!r}).log_artifact({str(probe)!r}, 'again')",
        env={**CLIENT_ENV, **env},
    )
    return probe


def test_http_repository_uses_proxied_multipart_upload_on_s3(
    artifact_server_seaweedfs: ArtifactServer, seaweedfs_server: SeaweedFS, tmp_path: Path
) -> None:
    from conformance.backends.artifact_server import S3_PREFIX
    from conformance.backends.s3 import BUCKET

    _multipart_round_trip_keeping_a_probe(
        artifact_server_seaweedfs, "repo-s3", tmp_path, seaweedfs_server.environ()
    )
    head = seaweedfs_server.client().head_object(
        Bucket=BUCKET, Key=f"{S3_PREFIX}/repo-s3/run/artifacts/again/probe.bin"
    )
    assert head["ContentLength"] == 11 * MIB
    assert head["ETag"].strip('"').endswith("-3")  # three presigned parts, assembled by S3


@pytest.fixture(scope="module")
def artifact_server_gcs(
    server_log_dir: Path, fake_gcs_server: ServerProcess, gcs_service_account_key: Path
) -> Iterator[ArtifactServer]:
    from conformance.backends.gcs import BUCKET
    from conformance.servers import fake_gcs

    server = start_artifact_server(
        server_log_dir,
        f"gs://{BUCKET}/artifact-server",
        env={
            "STORAGE_EMULATOR_HOST": fake_gcs.endpoint(fake_gcs_server),
            "GOOGLE_APPLICATION_CREDENTIALS": str(gcs_service_account_key),
            "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
            "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "true",
        },
        name="artifact-server-gcs",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.gcs
def test_http_repository_uses_proxied_multipart_upload_on_gcs(
    artifact_server_gcs: ArtifactServer, backend_gcs: BackendUnderTest, tmp_path: Path
) -> None:
    import artifact_fs
    from artifact_fs.paths import RESERVED_PREFIX

    # Three presigned part objects composed into one, none left behind.
    probe = _multipart_round_trip_keeping_a_probe(artifact_server_gcs, "repo-gcs", tmp_path, {})
    fs, _ = artifact_fs.url_to_fs(backend_gcs.root_url, **backend_gcs.storage_options)
    prefix = f"{backend_gcs.details['bucket']}/artifact-server/repo-gcs/run/artifacts"
    assert fs.cat_file(f"{prefix}/again/probe.bin") == probe.read_bytes()
    assert [name for name in fs.find(prefix) if RESERVED_PREFIX in name] == []


def test_a_runs_uri_tree_goes_in_batches_to_artifact_fs_serve(
    tracking_server: MlflowServer,
    artifact_server_local: ArtifactServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``runs:/`` resolves (through the tracking server) to this server; ``ArtifactStore`` sends the
    tree's small files in batches there (``server/batch.py``) and MLflow's client reads them back."""
    import requests

    import artifact_fs

    run_id = _new_run(tracking_server)
    source = tmp_path / "tree"
    for index in range(40):
        path = source / f"d{index % 4}" / f"f{index:02d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(100 + index))
    methods: list[str] = []
    real_request = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: object, **kwargs: object) -> object:
        methods.append(f"{method} {url.rsplit('/api/', 1)[-1].split('?', maxsplit=1)[0]}")
        return real_request(self, method, url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.Session, "request", request)
    store = artifact_fs.ArtifactStore(
        f"runs:/{run_id}/batched", environ={**os.environ, "MLFLOW_TRACKING_URI": tracking_server.url}
    )
    store.log_artifacts(str(source))
    (tmp_path / "back").mkdir()
    store.download_artifacts("", str(tmp_path / "back"))

    assert not [m for m in methods if m.startswith(("PUT ", "GET 2.0/mlflow-artifacts/artifacts/"))], methods
    assert methods.count("POST 2.0/mlflow-artifacts/batch/upload") == 1, methods
    assert methods.count("POST 2.0/mlflow-artifacts/batch/download") == 1, methods
    assert _tree(tmp_path / "back") == _tree(source)
    downloaded = run_mlflow_python(
        f"import mlflow; mlflow.set_tracking_uri({tracking_server.url!r}); "
        f"print(mlflow.artifacts.download_artifacts(run_id={run_id!r}, artifact_path='batched', "
        f"dst_path={str(tmp_path / 'mlflow')!r}))",
        env=CLIENT_ENV,
    )
    assert _tree(Path(downloaded.stdout.strip().splitlines()[-1])) == _tree(source)
