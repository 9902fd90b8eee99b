"""Writes through ``runs:///`` land on the run's store, whatever that store is; reads use its reader.

Runs are created through the tracking server's REST API in experiments whose artifact location is
the proxied default (``mlflow-artifacts:/``), a local directory, or an S3 prefix (SeaweedFS), and what
pandas, pyarrow and ``fsspec.open`` write through ``runs:///<run_id>/...`` is checked independently:
through the MLflow server's own REST API, on disk, and with boto3.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from click.testing import CliRunner

from artifact_fs import ArtifactStore, integrity
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from artifact_fs.backends.runs import RunsFileSystem
from artifact_fs.cli import main
from conformance.servers.mlflow_server import CountingProxy

pytestmark = [pytest.mark.mlflow_artifacts, pytest.mark.mlflow]

BUCKET = "mlflow-artifacts"
TABLE = pd.DataFrame({"a": range(2000), "b": [f"row-{i}" * 20 for i in range(2000)]})


def _post(tracking: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{tracking}/api/2.0/mlflow/{endpoint}", json=body, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _new_run(tracking: str, artifact_location: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"runs-writes-{uuid.uuid4().hex}"}
    if artifact_location:
        body["artifact_location"] = artifact_location
    experiment_id = _post(tracking, "experiments/create", body)["experiment_id"]
    run: dict[str, Any] = _post(tracking, "runs/create", {"experiment_id": experiment_id})["run"]["info"]
    return run


@pytest.fixture
def tracking(mlflow_servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The local-destination MLflow server (through its counting proxy) as the tracking server."""
    proxy: CountingProxy = mlflow_servers["local_proxy"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    for name, value in mlflow_servers["seaweedfs"].environ().items():
        monkeypatch.setenv(name, value)
    RunsFileSystem.clear_instance_cache()
    MlflowArtifactsFileSystem.clear_instance_cache()
    yield {**mlflow_servers, "url": proxy.url}
    RunsFileSystem.clear_instance_cache()
    MlflowArtifactsFileSystem.clear_instance_cache()


def _stored_bytes(tracking: dict[str, Any], kind: str, run: dict[str, Any], relative: str) -> bytes:
    """The bytes the run's store holds, read without artifact_fs."""
    artifact_uri: str = run["artifact_uri"]
    if kind == "proxied":
        path = artifact_uri.split(":", 1)[1].lstrip("/")
        url = f"{tracking['url']}/api/2.0/mlflow-artifacts/artifacts/{path}/{relative}"
        response = requests.get(url, timeout=30)
        response.raise_for_status()
        return response.content
    if kind == "local":
        return (Path(artifact_uri.removeprefix("file://")) / relative).read_bytes()
    bucket, _, key = artifact_uri.removeprefix("s3://").partition("/")
    stored = tracking["seaweedfs"].client().get_object(Bucket=bucket, Key=f"{key}/{relative}")
    body: bytes = stored["Body"].read()
    return body


def _assert_recorded(run: dict[str, Any], relative: str, stored: bytes) -> None:
    """The write recorded the SHA-256 of the bytes the store holds (read without artifact_fs).

    Behind ``mlflow server`` (the proxied run) nothing keeps records: MLflow's server records none.
    """
    if run["kind"] == "proxied":
        return
    directory = relative.rsplit("/", 1)[0]
    listed = ArtifactStore(f"runs:/{run['run_id']}").list_artifacts(directory, digests=True)
    digests = {info.path: info.digest for info in listed}
    assert digests[relative] == integrity.Digest("sha-256", hashlib.sha256(stored).digest()).header()


@pytest.fixture(params=["proxied", "local", "s3"])
def run(request: pytest.FixtureRequest, tracking: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    kind = request.param
    location = {
        "proxied": None,
        "local": f"file://{tmp_path / 'experiment'}",
        "s3": f"s3://{BUCKET}/runs-writes-{uuid.uuid4().hex}",
    }[kind]
    return {"kind": kind, **_new_run(tracking["url"], location)}


def test_pandas_writes_through_runs_land_in_the_runs_store(
    tracking: dict[str, Any], run: dict[str, Any]
) -> None:
    run_id = run["run_id"]
    TABLE.to_parquet(f"runs:///{run_id}/tables/pandas.parquet")
    stored = _stored_bytes(tracking, run["kind"], run, "tables/pandas.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(stored)), TABLE)
    _assert_recorded(run, "tables/pandas.parquet", stored)
    pd.testing.assert_frame_equal(pd.read_parquet(f"runs:///{run_id}/tables/pandas.parquet"), TABLE)


def test_pyarrow_writes_through_runs_land_in_the_runs_store(
    tracking: dict[str, Any], run: dict[str, Any]
) -> None:
    run_id = run["run_id"]
    fs = RunsFileSystem()
    table = pa.Table.from_pandas(TABLE, preserve_index=False)
    pq.write_table(table, f"{run_id}/tables/arrow.parquet", filesystem=fs)
    stored = _stored_bytes(tracking, run["kind"], run, "tables/arrow.parquet")
    assert pq.read_table(io.BytesIO(stored)).equals(table)
    _assert_recorded(run, "tables/arrow.parquet", stored)
    assert pq.read_table(f"{run_id}/tables/arrow.parquet", filesystem=fs).equals(table)


def test_fsspec_open_writes_through_runs_land_in_the_runs_store(
    tracking: dict[str, Any], run: dict[str, Any]
) -> None:
    run_id = run["run_id"]
    payload = uuid.uuid4().bytes * 4096
    with fsspec.open(f"runs:///{run_id}/raw/blob.bin", "wb") as handle:
        handle.write(payload)
    with fsspec.open(f"runs:///{run_id}/raw/note.txt", "w") as text:
        text.write("written as text")
    assert _stored_bytes(tracking, run["kind"], run, "raw/blob.bin") == payload
    assert _stored_bytes(tracking, run["kind"], run, "raw/note.txt") == b"written as text"
    with fsspec.open(f"runs:///{run_id}/raw/blob.bin", "rb") as handle:
        assert handle.read() == payload


def test_a_failed_write_through_runs_leaves_nothing(tracking: dict[str, Any], run: dict[str, Any]) -> None:
    run_id = run["run_id"]
    fs = RunsFileSystem()
    target = f"{run_id}/raw/partial.bin"
    with pytest.raises(RuntimeError, match="interrupted"), fs.open(target, "wb") as handle:
        handle.write(b"x" * 1024)
        raise RuntimeError("interrupted")
    fs.invalidate_cache()
    assert not fs.exists(target)


def test_a_one_column_read_through_runs_moves_no_more_than_through_mlflow_artifacts(
    tracking: dict[str, Any],
) -> None:
    proxy: CountingProxy = tracking["local_proxy"]
    run = _new_run(tracking["url"], None)
    wide = pd.DataFrame({f"c{i}": [uuid.uuid4().hex * 8 for _ in range(3000)] for i in range(8)})
    proxied = run["artifact_uri"].split(":", 1)[1].lstrip("/")
    wide.to_parquet(f"mlflow-artifacts:///{proxied}/wide.parquet")

    def moved(url: str) -> int:
        RunsFileSystem.clear_instance_cache()
        MlflowArtifactsFileSystem.clear_instance_cache()
        proxy.reset()
        column = pd.read_parquet(url, columns=["c3"])
        pd.testing.assert_frame_equal(column, wide[["c3"]])
        return proxy.downstream

    through_runs = moved(f"runs:///{run['run_id']}/wide.parquet")
    through_proxied = moved(f"mlflow-artifacts:///{proxied}/wide.parquet")
    file_size = len(wide.to_parquet())
    assert through_runs <= through_proxied * 1.05 + 16_384, (through_runs, through_proxied)
    assert through_runs < file_size / 2, (through_runs, file_size)


def test_an_unknown_run_is_file_not_found_in_the_store_and_the_cli(tracking: dict[str, Any]) -> None:
    unknown = uuid.uuid4().hex
    with pytest.raises(FileNotFoundError, match=f"run '{unknown}' not found"):
        ArtifactStore(f"runs:/{unknown}")
    for command in (["ls", f"runs:/{unknown}"], ["download", f"runs:/{unknown}", "model"]):
        result = CliRunner().invoke(main, command, catch_exceptions=False)
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.count("\n") == 1 and "FileNotFoundError" in result.stderr
