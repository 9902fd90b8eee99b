"""``runs:/<run_id>/...`` against a real MLflow server, with a run created by MLflow's own client."""

from __future__ import annotations

import json
import uuid
from typing import Any

import fsspec
import pytest

import artifact_fs
from artifact_fs.backends.runs import RunsFileSystem, artifact_uri_of_run
from conformance.harness import BackendUnderTest
from conformance.servers.mlflow_env import run_mlflow_python

pytestmark = [pytest.mark.mlflow_artifacts, pytest.mark.mlflow]

LOG_A_RUN = """
import json, mlflow, os, tempfile
with mlflow.start_run() as run:
    directory = tempfile.mkdtemp()
    with open(os.path.join(directory, "hello.txt"), "w") as handle:
        handle.write("hello from mlflow")
    mlflow.log_artifact(os.path.join(directory, "hello.txt"), artifact_path="texts")
print(json.dumps({"run_id": run.info.run_id, "artifact_uri": run.info.artifact_uri}))
"""


@pytest.fixture(scope="module")
def mlflow_run(backend_mlflow_server_s3: BackendUnderTest) -> dict[str, Any]:
    server = backend_mlflow_server_s3.details["server"]
    completed = run_mlflow_python(LOG_A_RUN, env={"MLFLOW_TRACKING_URI": server.url})
    run: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    run["tracking_uri"] = server.url
    return run


def test_a_run_resolves_to_its_artifact_uri(mlflow_run: dict[str, Any]) -> None:
    assert (
        artifact_uri_of_run(mlflow_run["run_id"], mlflow_run["tracking_uri"], environ={})
        == mlflow_run["artifact_uri"]
    )
    assert mlflow_run["artifact_uri"].startswith("mlflow-artifacts:/")


def test_runs_uri_reads_lists_and_writes_the_runs_artifacts(mlflow_run: dict[str, Any]) -> None:
    run_id = mlflow_run["run_id"]
    fs, path = artifact_fs.url_to_fs(f"runs:/{run_id}/texts", tracking_uri=mlflow_run["tracking_uri"])
    assert isinstance(fs, RunsFileSystem)
    assert path == f"{run_id}/texts"
    assert fs.ls(path, detail=False) == [f"{run_id}/texts/hello.txt"]
    assert fs.cat_file(f"{run_id}/texts/hello.txt") == b"hello from mlflow"
    assert fs.info(f"{run_id}/texts/hello.txt")["size"] == len("hello from mlflow")
    fs.pipe_file(f"{run_id}/extra/new.txt", b"added by artifact_fs")
    assert fs.cat_file(f"{run_id}/extra/new.txt") == b"added by artifact_fs"


def test_mlflow_sees_what_artifact_fs_wrote_through_runs(mlflow_run: dict[str, Any]) -> None:
    run_id = mlflow_run["run_id"]
    fs, _ = artifact_fs.url_to_fs(f"runs:/{run_id}", tracking_uri=mlflow_run["tracking_uri"])
    fs.pipe_file(f"{run_id}/checked/by-mlflow.txt", b"round trip")
    code = (
        "import mlflow, sys\n"
        f"path = mlflow.artifacts.download_artifacts('runs:/{run_id}/checked/by-mlflow.txt')\n"
        "sys.stdout.write(open(path).read())\n"
    )
    completed = run_mlflow_python(code, env={"MLFLOW_TRACKING_URI": mlflow_run["tracking_uri"]})
    assert completed.stdout == "round trip"


def test_plain_fsspec_opens_a_runs_url(mlflow_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_run["tracking_uri"])
    RunsFileSystem.clear_instance_cache()
    try:
        run_id = mlflow_run["run_id"]
        with fsspec.open(f"runs:///{run_id}/texts/hello.txt", "rb") as handle:
            assert handle.read() == b"hello from mlflow"
        with fsspec.open(f"runs:/{run_id}/texts/hello.txt", "rb", protocol="runs") as handle:
            assert handle.read() == b"hello from mlflow"
    finally:
        RunsFileSystem.clear_instance_cache()


def test_a_wrong_run_id_is_file_not_found(mlflow_run: dict[str, Any]) -> None:
    fs = RunsFileSystem(mlflow_run["tracking_uri"], environ={}, skip_instance_cache=True)
    with pytest.raises(FileNotFoundError, match="not found at the tracking server"):
        fs.ls(f"{uuid.uuid4().hex}/texts")


def test_a_non_http_tracking_uri_without_mlflow_is_a_clear_error() -> None:
    fs = RunsFileSystem("sqlite:///mlflow.db", environ={}, skip_instance_cache=True)
    with pytest.raises(ValueError, match="set MLFLOW_TRACKING_URI .* or install mlflow"):
        fs.ls(f"{uuid.uuid4().hex}/x")
