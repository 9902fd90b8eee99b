"""Workspaces (MLflow >= 3.10): a workspace-mode tracking server whose artifact root is ``artifact-fs serve``.

MLflow's own client creates a workspace, logs a run and a scikit-learn model in it, and loads both
back; the tracking server puts the workspace's experiments under ``<root>/workspaces/<ws>/<id>``, which
this server stores as ordinary paths. artifact_fs then reads the same files as
``mlflow-artifacts:/workspaces/<ws>/...`` and by their http(s) URL, and each server's server-info says
what it does: the tracking server has workspaces, the artifact server (no workspace store) does not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import artifact_fs
from artifact_fs import ArtifactStore
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from conformance.servers.artifact_server import ArtifactServer
from conformance.servers.mlflow_env import run_mlflow_python
from conformance.servers.mlflow_server import MlflowServer, start_mlflow_server

pytestmark = [pytest.mark.mlflow_artifacts, pytest.mark.mlflow, pytest.mark.server]

WORKSPACE = "team-a"
LOG_IN_WORKSPACE = """
import json, sys
import mlflow, numpy as np
from sklearn.linear_model import LinearRegression

workspace, experiment = sys.argv[1], sys.argv[2]
mlflow.create_workspace(workspace)
mlflow.set_workspace(workspace)
mlflow.set_experiment(experiment)
x = np.arange(20, dtype=float).reshape(-1, 2)
with mlflow.start_run() as run:
    mlflow.log_text("hello from a workspace", "notes/hello.txt")
    info = mlflow.sklearn.log_model(LinearRegression().fit(x, x.sum(axis=1)), name="model")
predictions = mlflow.pyfunc.load_model(info.model_uri).predict(x)
text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt")
name = f"clf-{experiment}"
version = mlflow.register_model(info.model_uri, name).version
mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)
champion = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(x)
print(json.dumps({
    "run_id": run.info.run_id,
    "artifact_uri": run.info.artifact_uri,
    "model_location": mlflow.MlflowClient().get_logged_model(info.model_id).artifact_location,
    "model_id": info.model_id,
    "model_name": name,
    "champion_predictions": [float(p) for p in champion],
    "text": text,
    "predictions": [float(p) for p in predictions],
    "expected": [float(v) for v in x.sum(axis=1)],
}))
"""


@pytest.fixture(scope="module")
def workspace_tracking(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory, artifact_server_local: ArtifactServer
) -> Iterator[MlflowServer]:
    """``mlflow server --enable-workspaces --no-serve-artifacts``, artifact root ``artifact-fs serve``."""
    server = start_mlflow_server(
        server_log_dir,
        tmp_path_factory.mktemp("mlflow-workspaces"),
        "",
        serve_artifacts=False,
        extra_args=["--enable-workspaces", "--default-artifact-root", artifact_server_local.artifacts_url],
        name="mlflow-workspaces",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def logged(workspace_tracking: MlflowServer) -> dict[str, Any]:
    experiment = f"ws-{uuid.uuid4().hex[:8]}"
    completed = run_mlflow_python(
        f"import sys; sys.argv = ['x', {WORKSPACE!r}, {experiment!r}]\n" + LOG_IN_WORKSPACE,
        env={"MLFLOW_TRACKING_URI": workspace_tracking.url},
    )
    found: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return found


def test_mlflow_logs_and_loads_in_a_non_default_workspace(
    logged: dict[str, Any], artifact_server_local: ArtifactServer
) -> None:
    assert logged["text"] == "hello from a workspace"
    assert logged["predictions"] == pytest.approx(logged["expected"])
    prefix = f"{artifact_server_local.artifacts_url}/workspaces/{WORKSPACE}/"
    assert logged["artifact_uri"].startswith(prefix)
    assert logged["model_location"].startswith(prefix)


def test_the_workspace_files_are_under_workspaces_on_the_destination(
    logged: dict[str, Any], artifact_server_local: ArtifactServer
) -> None:
    relative = logged["artifact_uri"].split("/mlflow-artifacts/artifacts/", 1)[1]
    assert relative.startswith(f"workspaces/{WORKSPACE}/")
    stored = Path(artifact_server_local.destination) / relative / "notes" / "hello.txt"
    assert stored.read_text() == "hello from a workspace"


def test_mlflow_artifacts_workspace_uris_resolve_in_the_client(
    logged: dict[str, Any], artifact_server_local: ArtifactServer
) -> None:
    relative = logged["artifact_uri"].split("/mlflow-artifacts/artifacts/", 1)[1]
    MlflowArtifactsFileSystem.clear_instance_cache()
    uri = f"mlflow-artifacts:/{relative}/notes/hello.txt"
    fs, path = artifact_fs.url_to_fs(uri, tracking_uri=artifact_server_local.url)
    assert path == f"{relative}/notes/hello.txt"
    assert fs.cat_file(path) == b"hello from a workspace"
    model = logged["model_location"].split("/mlflow-artifacts/artifacts/", 1)[1]
    store = ArtifactStore(f"mlflow-artifacts:/{model}", tracking_uri=artifact_server_local.url)
    assert "MLmodel" in {info.path for info in store.list_artifacts()}
    by_url = ArtifactStore(logged["artifact_uri"])
    with by_url.open("notes/hello.txt") as handle:
        assert handle.read() == b"hello from a workspace"


def test_each_server_info_tells_the_truth_about_workspaces(
    workspace_tracking: MlflowServer, artifact_server_local: ArtifactServer
) -> None:
    tracking = requests.get(f"{workspace_tracking.url}/api/3.0/mlflow/server-info", timeout=30).json()
    ours = requests.get(f"{artifact_server_local.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert tracking["workspaces_enabled"] is True
    assert ours["workspaces_enabled"] is False


def test_runs_and_models_uris_resolve_in_a_non_default_workspace(
    logged: dict[str, Any], workspace_tracking: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MLFLOW_WORKSPACE`` scopes the lookups (``X-MLFLOW-WORKSPACE``), as MLflow's client does."""
    from artifact_fs.backends.models import ModelsFileSystem
    from artifact_fs.backends.runs import RunsFileSystem

    monkeypatch.setenv("MLFLOW_TRACKING_URI", workspace_tracking.url)
    run_uri = f"runs:/{logged['run_id']}"
    model_uri = f"models:/{logged['model_id']}"
    for cache in (RunsFileSystem, ModelsFileSystem, MlflowArtifactsFileSystem):
        cache.clear_instance_cache()
    with pytest.raises(FileNotFoundError):  # outside its workspace the run does not exist
        ArtifactStore(run_uri)
    monkeypatch.setenv("MLFLOW_WORKSPACE", WORKSPACE)
    for cache in (RunsFileSystem, ModelsFileSystem, MlflowArtifactsFileSystem):
        cache.clear_instance_cache()
    with ArtifactStore(run_uri).open("notes/hello.txt") as handle:
        assert handle.read() == b"hello from a workspace"
    assert "MLmodel" in {info.path for info in ArtifactStore(model_uri).list_artifacts()}
    assert logged["champion_predictions"] == logged["predictions"]  # the same model, by its alias
    name = logged["model_name"]
    mlmodel = ArtifactStore(model_uri).open("MLmodel").read()
    for reference in (f"models:/{name}/1", f"models:/{name}@champion", f"models:/{name}/latest"):
        with ArtifactStore(reference).open("MLmodel") as handle:  # read through artifact-fs serve
            assert handle.read() == mlmodel, reference
