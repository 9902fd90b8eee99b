"""``models:/`` against a real MLflow server: MLflow's own client logs a scikit-learn model, adds a
parquet file to it, registers it and sets the alias ``champion``; artifact_fs then reads it as
``models:/<model_id>``, ``models:/<name>/1``, ``models:/<name>@champion`` and ``runs:/<run_id>/model``
(MLflow 3 keeps a logged model's files apart from its run), through ``url_to_fs``, ``ArtifactStore``,
``fsspec.open``, pandas, DuckDB and the CLI; once with the proxied default store, once directly on S3.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import pandas as pd
import pytest

import artifact_fs
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from artifact_fs.backends.models import ModelsFileSystem, artifact_uri_of_model
from artifact_fs.backends.runs import RunsFileSystem
from artifact_fs.store import ArtifactStore, FileInfo
from conformance.harness import BackendUnderTest
from conformance.servers.mlflow_env import run_mlflow_python

pytestmark = [pytest.mark.mlflow_artifacts, pytest.mark.mlflow]

BUCKET = "mlflow-artifacts"
TABLE = pd.DataFrame({"a": range(500), "b": [f"row-{i}" for i in range(500)]})

LOG_AND_REGISTER = """
import base64, json, os, sys, tempfile
import mlflow, numpy as np, pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

name, location = sys.argv[1], sys.argv[2] or None
mlflow.set_experiment(experiment_id=mlflow.create_experiment(name, artifact_location=location))
x = np.arange(20, dtype=float).reshape(-1, 2)
with mlflow.start_run() as run:
    info = mlflow.sklearn.log_model(LinearRegression().fit(x, x.sum(axis=1)), name="model")
client = MlflowClient()
directory = tempfile.mkdtemp()
table = os.path.join(directory, "data.parquet")
pd.DataFrame({"a": range(500), "b": [f"row-{i}" for i in range(500)]}).to_parquet(table)
client.log_model_artifact(info.model_id, table)
version = mlflow.register_model(info.model_uri, name)
client.set_registered_model_alias(name, "champion", version.version)
downloaded = mlflow.artifacts.download_artifacts(f"models:/{name}/{version.version}/MLmodel")
print(json.dumps({
    "name": name,
    "version": version.version,
    "model_id": info.model_id,
    "model_uri": info.model_uri,
    "run_id": run.info.run_id,
    "artifact_location": client.get_logged_model(info.model_id).artifact_location,
    "mlmodel": base64.b64encode(open(downloaded, "rb").read()).decode(),
}))
"""


def _log_and_register(tracking: str, location: str, env: dict[str, str]) -> dict[str, Any]:
    name = f"clf-{uuid.uuid4().hex[:12]}"
    code = f"import sys; sys.argv = ['x', {name!r}, {location!r}]\n" + LOG_AND_REGISTER
    completed = run_mlflow_python(code, env={"MLFLOW_TRACKING_URI": tracking, **env})
    model: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    model["mlmodel"] = base64.b64decode(model["mlmodel"])
    model["tracking_uri"] = tracking
    return model


@pytest.fixture(scope="module")
def proxied_model(backend_mlflow_server_s3: BackendUnderTest) -> dict[str, Any]:
    """A model in the server's default (proxied, ``mlflow-artifacts:/``) artifact store."""
    return _log_and_register(backend_mlflow_server_s3.details["server"].url, "", {})


@pytest.fixture(scope="module")
def s3_model(mlflow_servers: dict[str, Any]) -> dict[str, Any]:
    """A model in an experiment whose artifact location is an S3 prefix, read directly on S3."""
    location = f"s3://{BUCKET}/models-direct-{uuid.uuid4().hex[:8]}"
    return {
        **_log_and_register(mlflow_servers["s3"].url, location, mlflow_servers["seaweedfs"].environ()),
        "environ": mlflow_servers["seaweedfs"].environ(),
    }


@pytest.fixture(params=["proxied", "s3"])
def model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Each model with ``MLFLOW_TRACKING_URI`` (and S3's variables) set, as a user would have them."""
    found: dict[str, Any] = {**request.getfixturevalue(f"{request.param}_model"), "kind": request.param}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", found["tracking_uri"])
    for name, value in found.get("environ", {}).items():
        monkeypatch.setenv(name, value)
    for klass in (ModelsFileSystem, RunsFileSystem, MlflowArtifactsFileSystem):
        klass.clear_instance_cache()
    yield found
    for klass in (ModelsFileSystem, RunsFileSystem, MlflowArtifactsFileSystem):
        klass.clear_instance_cache()


def _specs(model: dict[str, Any]) -> list[str]:
    return [model["model_id"], f"{model['name']}/1", f"{model['name']}@champion", f"{model['name']}/latest"]


def test_every_form_resolves_to_the_logged_models_artifact_location(model: dict[str, Any]) -> None:
    location = model["artifact_location"]
    assert location.endswith(f"/models/{model['model_id']}/artifacts")
    assert model["model_uri"] == f"models:/{model['model_id']}"
    for spec in _specs(model):
        assert artifact_uri_of_model(f"models:/{spec}", environ={}, tracking_uri=model["tracking_uri"]) == (
            location
        )


def test_every_form_lists_and_reads_what_mlflow_logged(model: dict[str, Any]) -> None:
    for spec in _specs(model):
        fs, path = artifact_fs.url_to_fs(f"models:/{spec}")
        assert isinstance(fs, ModelsFileSystem)
        assert path == spec
        listed = fs.ls(path, detail=False)
        assert {f"{spec}/MLmodel", f"{spec}/data.parquet", f"{spec}/requirements.txt"} <= set(listed), listed
        assert fs.cat_file(f"{spec}/MLmodel") == model["mlmodel"]
        assert fs.info(f"{spec}/MLmodel")["size"] == len(model["mlmodel"])
        assert fs.cat_file(f"{spec}/MLmodel", start=0, end=10) == model["mlmodel"][:10]
        assert f"{spec}/data.parquet" in fs.glob(f"{spec}/*.parquet")


def test_artifact_store_and_fsspec_open_read_a_registered_model(model: dict[str, Any]) -> None:
    store = ArtifactStore(f"models:/{model['name']}@champion")
    listed = store.list_artifacts()
    assert FileInfo("MLmodel", False, len(model["mlmodel"])) in listed
    assert "data.parquet" in {info.path for info in listed}
    with store.open("MLmodel") as handle:
        assert handle.read() == model["mlmodel"]
    with fsspec.open(f"models:///{model['name']}/1/MLmodel", "rb") as handle:
        assert handle.read() == model["mlmodel"]
    with fsspec.open(f"models:/{model['model_id']}/MLmodel", "rb", protocol="models") as handle:
        assert handle.read() == model["mlmodel"]


def test_pandas_reads_a_parquet_file_logged_under_the_model(model: dict[str, Any]) -> None:
    for spec in _specs(model):
        frame = pd.read_parquet(f"models:///{spec}/data.parquet", columns=["a"])
        pd.testing.assert_frame_equal(frame, TABLE[["a"]])


def test_duckdb_reads_through_the_registered_models_and_runs_filesystems(model: dict[str, Any]) -> None:
    duckdb = pytest.importorskip("duckdb")
    connection = duckdb.connect()
    connection.register_filesystem(ModelsFileSystem(skip_instance_cache=True))
    connection.register_filesystem(RunsFileSystem(skip_instance_cache=True))
    total = int(TABLE["a"].sum())
    for url in (
        f"models:///{model['name']}@champion/data.parquet",
        f"models:///{model['name']}/1/*.parquet",
        f"models:///{model['model_id']}/data.parquet",
        f"runs:///{model['run_id']}/model/data.parquet",
    ):
        assert connection.sql(f"select sum(a) from read_parquet('{url}')").fetchall() == [(total,)], url


def test_runs_uri_of_a_logged_models_name_reads_the_model(model: dict[str, Any]) -> None:
    """MLflow 3 serves ``runs:/<run_id>/<model name>/...`` from the logged model of that run."""
    run_id = model["run_id"]
    fs, path = artifact_fs.url_to_fs(f"runs:/{run_id}/model")
    assert f"{run_id}/model/MLmodel" in fs.ls(path, detail=False)
    assert fs.cat_file(f"{run_id}/model/MLmodel") == model["mlmodel"]
    with fsspec.open(f"runs:///{run_id}/model/MLmodel", "rb") as handle:
        assert handle.read() == model["mlmodel"]
    assert fs.unstrip_protocol(f"{run_id}/model/MLmodel") == f"runs:///{run_id}/model/MLmodel"
    with pytest.raises(FileNotFoundError):
        fs.info(f"{run_id}/not-a-model/MLmodel")  # no such model: the run's own root answers


def test_writes_to_a_logged_model_land_where_mlflow_reads_them(model: dict[str, Any]) -> None:
    note = f"notes/{uuid.uuid4().hex}.txt"
    fs, _ = artifact_fs.url_to_fs(f"models:/{model['model_id']}")
    fs.pipe_file(f"{model['model_id']}/{note}", b"written through models:/")
    TABLE.to_parquet(f"models:///{model['model_id']}/tables/written.parquet")
    code = (
        "import mlflow, sys\n"
        f"path = mlflow.artifacts.download_artifacts('models:/{model['name']}/1/{note}')\n"
        "sys.stdout.write(open(path).read())\n"
    )
    completed = run_mlflow_python(
        code, env={"MLFLOW_TRACKING_URI": model["tracking_uri"], **model.get("environ", {})}
    )
    assert completed.stdout == "written through models:/"
    pd.testing.assert_frame_equal(
        pd.read_parquet(f"models:///{model['name']}/1/tables/written.parquet"), TABLE
    )


def test_a_registry_reference_refuses_writes(model: dict[str, Any]) -> None:
    fs, _ = artifact_fs.url_to_fs(f"models:/{model['name']}/1")
    for spec in (f"{model['name']}/1", f"{model['name']}@champion"):
        with pytest.raises(PermissionError, match="read-only"):
            fs.pipe_file(f"{spec}/x.txt", b"x")
        with pytest.raises(PermissionError, match="read-only"):
            fs.open(f"{spec}/x.txt", "wb")
        with pytest.raises(PermissionError, match="read-only"):
            fs.rm(f"{spec}/MLmodel")
    assert fs.cat_file(f"{model['name']}/1/MLmodel") == model["mlmodel"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("m-00000000000000000000000000000000", "logged model 'm-00000000000000000000000000000000' not found"),
        ("{name}/99", "version 99 of registered model '{name}' not found"),
        ("{name}@nobody", "alias 'nobody' of registered model '{name}' not found"),
        ("no-such-model-{name}/1", "version 1 of registered model 'no-such-model-{name}' not found"),
        ("no-such-model-{name}/latest", "registered model 'no-such-model-{name}' not found"),
    ],
)
def test_an_unknown_model_version_or_alias_is_file_not_found(
    model: dict[str, Any], spec: str, message: str
) -> None:
    uri = "models:/" + spec.format(name=model["name"])
    expected = message.format(name=model["name"])
    with pytest.raises(FileNotFoundError, match=expected) as info:
        artifact_fs.url_to_fs(uri)
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match=expected):
        ArtifactStore(uri)


def test_the_cli_lists_and_reads_models(model: dict[str, Any]) -> None:
    cli = [sys.executable, "-c", "from artifact_fs.cli import main; main()"]
    listed = subprocess.run(
        [*cli, "ls", f"models:/{model['name']}/1"], capture_output=True, text=True, timeout=120, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert {"MLmodel", "data.parquet"} <= set(listed.stdout.split()), listed.stdout
    shown = subprocess.run(
        [*cli, "cat", f"models:/{model['name']}@champion", "MLmodel"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == model["mlmodel"]
    missing = subprocess.run(
        [*cli, "ls", f"models:/{model['name']}@nobody"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 1
    assert "FileNotFoundError" in missing.stderr and missing.stderr.count("\n") == 1, missing.stderr
