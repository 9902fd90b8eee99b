"""pandas, pyarrow, polars, DuckDB and dask read and write the URIs MLflow hands out, the documented way.

docs/data-tools.md's one way: ``fs, path = artifact_fs.url_to_fs(uri)``, then each tool's own
``filesystem=`` argument (DuckDB: ``register_filesystem(fs)`` and ``fs.unstrip_protocol(path)``).
Every URI kind is exercised against real servers, and results are checked on the servers' own disks:

* ``mlflow-artifacts:/...`` against ``artifact-fs serve`` (local destination);
* ``runs:/<run_id>/...`` of a run created over a real ``mlflow server``'s REST API (proxied store);
* ``models:/<model_id>/...`` and ``models:/<name>@<alias>/...`` (read; a registry reference is
  read-only) of a logged model created over the same API.

Reads of one column must fetch little more than that column: the bytes the client received are
counted by a TCP relay in front of each server.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import requests

import artifact_fs
from artifact_fs.backends.mlflow_artifacts import MlflowArtifactsFileSystem
from artifact_fs.backends.models import ModelsFileSystem
from artifact_fs.backends.runs import RunsFileSystem
from conformance.servers.artifact_server import ArtifactServer
from conformance.servers.mlflow_server import CountingProxy

pytestmark = [pytest.mark.mlflow_artifacts, pytest.mark.mlflow, pytest.mark.server]

TABLE = pd.DataFrame({"a": list(range(300)), "b": [f"row-{i}" for i in range(300)]})
TOOLS = ["pandas", "pyarrow", "pyarrow-dataset", "polars", "duckdb", "dask"]


@dataclass
class Place:
    """Where a URI kind's files live: its URI prefix, the directory on the server's disk, the relay."""

    kind: str
    prefix: str
    disk: Path
    proxy: CountingProxy
    writable: bool = True

    def uri(self, name: str) -> str:
        return f"{self.prefix}/{name}"


def _post(tracking: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{tracking}/api/2.0/mlflow/{endpoint}", json=body, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _on_disk(destination: Path, artifact_uri: str) -> Path:
    """The directory a ``mlflow-artifacts:/<path>`` root names on a local-destination server."""
    return destination / artifact_uri.split(":", 1)[1].lstrip("/")


@pytest.fixture(scope="module")
def artifact_proxy(artifact_server_local: ArtifactServer) -> Iterator[CountingProxy]:
    proxy = CountingProxy(artifact_server_local.port)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def places(
    artifact_server_local: ArtifactServer, artifact_proxy: CountingProxy, mlflow_servers: dict[str, Any]
) -> dict[str, Place]:
    tracking_proxy: CountingProxy = mlflow_servers["local_proxy"]
    tracking = tracking_proxy.url
    destination = Path(mlflow_servers["local_destination"])
    experiment_id = _post(tracking, "experiments/create", {"name": f"data-tools-{uuid.uuid4().hex}"})[
        "experiment_id"
    ]
    run = _post(tracking, "runs/create", {"experiment_id": experiment_id})["run"]["info"]
    model = _post(tracking, "logged-models", {"experiment_id": experiment_id, "name": "tables"})["model"]
    model_id, model_uri = model["info"]["model_id"], model["info"]["artifact_uri"]
    name = f"tables-{uuid.uuid4().hex[:8]}"
    _post(tracking, "registered-models/create", {"name": name})
    version = _post(
        tracking,
        "model-versions/create",
        {"name": name, "source": f"models:/{model_id}", "model_id": model_id},
    )["model_version"]["version"]
    _post(tracking, "registered-models/alias", {"name": name, "alias": "champion", "version": version})
    ours = Path(artifact_server_local.destination)
    runs_disk, model_disk = _on_disk(destination, run["artifact_uri"]), _on_disk(destination, model_uri)
    return {
        "mlflow-artifacts": Place(
            "mlflow-artifacts", "mlflow-artifacts:/data-tools", ours / "data-tools", artifact_proxy
        ),
        "runs": Place("runs", f"runs:/{run['run_id']}", runs_disk, tracking_proxy),
        "models": Place("models", f"models:/{model_id}", model_disk, tracking_proxy),
        "models-alias": Place("models-alias", f"models:/{name}@champion", model_disk, tracking_proxy, False),
    }


@pytest.fixture
def place(request: pytest.FixtureRequest, places: dict[str, Place], monkeypatch: pytest.MonkeyPatch) -> Place:
    """``MLFLOW_TRACKING_URI`` names the server, as a user's environment would."""
    chosen = places[request.param]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", chosen.proxy.url)
    for klass in (ModelsFileSystem, RunsFileSystem, MlflowArtifactsFileSystem):
        klass.clear_instance_cache()
    chosen.disk.mkdir(parents=True, exist_ok=True)
    return chosen


def _read(tool: str, fs: Any, path: str) -> pd.DataFrame:
    """docs/data-tools.md's read for each tool, column ``a`` only."""
    if tool == "pandas":
        return pd.read_parquet(path, filesystem=fs, columns=["a"])
    if tool == "pyarrow":
        return pq.read_table(path, filesystem=fs, columns=["a"]).to_pandas()
    if tool == "pyarrow-dataset":
        return ds.dataset(path, filesystem=fs, format="parquet").to_table(columns=["a"]).to_pandas()
    if tool == "polars":
        import polars as pl

        frame = pl.scan_pyarrow_dataset(ds.dataset(path, filesystem=fs, format="parquet"))
        return frame.select("a").collect().to_pandas()
    if tool == "duckdb":
        import duckdb

        connection = duckdb.connect()
        connection.register_filesystem(fs)
        return connection.sql(f"select a from read_parquet('{fs.unstrip_protocol(path)}')").df()
    import dask.dataframe as dd

    return dd.read_parquet(path, filesystem=fs, columns=["a"]).compute()


def _write(tool: str, fs: Any, path: str) -> Callable[[Path], pd.DataFrame]:
    """docs/data-tools.md's write for each tool; returns how to read back what it wrote, from disk."""
    if tool == "pandas":
        TABLE.to_parquet(path, filesystem=fs)
    elif tool in {"pyarrow", "pyarrow-dataset"}:
        table = pa.Table.from_pandas(TABLE, preserve_index=False)
        if tool == "pyarrow":
            pq.write_table(table, path, filesystem=fs)
        else:
            ds.write_dataset(table, path, filesystem=fs, format="parquet")
            return lambda disk: pq.read_table(disk).to_pandas()
    elif tool == "polars":
        import polars as pl

        with fs.open(path, "wb") as handle:
            pl.from_pandas(TABLE).write_parquet(handle)
    elif tool == "duckdb":
        import duckdb

        connection = duckdb.connect()
        connection.register_filesystem(fs)
        connection.register("frame", TABLE)
        connection.sql(f"copy frame to '{fs.unstrip_protocol(path)}' (format parquet)")
    else:
        import dask.dataframe as dd

        dd.from_pandas(TABLE, npartitions=2).to_parquet(path, filesystem=fs, write_index=False)
        return lambda disk: pq.read_table(disk).to_pandas()
    return lambda disk: pq.read_table(io.BytesIO(disk.read_bytes())).to_pandas()


def _frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Values compared, not dtypes: dask and DuckDB choose their own string and integer types."""
    types = {"a": "int64", "b": "string"} if "b" in frame else {"a": "int64"}
    return frame.reset_index(drop=True).astype(types)


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("place", ["mlflow-artifacts", "runs", "models", "models-alias"], indirect=True)
def test_each_tool_reads_what_is_on_the_servers_disk(place: Place, tool: str) -> None:
    name = f"read-{tool}-{uuid.uuid4().hex[:6]}.parquet"
    TABLE.to_parquet(place.disk / name)  # written beside artifact_fs, on the server's own disk
    fs, path = artifact_fs.url_to_fs(place.uri(name))
    pd.testing.assert_frame_equal(_frame(_read(tool, fs, path)), _frame(TABLE[["a"]]))


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("place", ["mlflow-artifacts", "runs", "models"], indirect=True)
def test_each_tool_writes_what_lands_on_the_servers_disk(place: Place, tool: str) -> None:
    directory = tool in {"dask", "pyarrow-dataset"}
    name = f"written-{tool}-{uuid.uuid4().hex[:6]}" + ("" if directory else ".parquet")
    fs, path = artifact_fs.url_to_fs(place.uri(name))
    read_back = _write(tool, fs, path)
    pd.testing.assert_frame_equal(_frame(read_back(place.disk / name)), _frame(TABLE))


@pytest.mark.parametrize("place", ["models-alias"], indirect=True)
def test_a_registry_reference_refuses_writes(place: Place) -> None:
    fs, path = artifact_fs.url_to_fs(place.uri("refused.parquet"))
    with pytest.raises(PermissionError):
        TABLE.to_parquet(path, filesystem=fs)


@pytest.mark.parametrize("tool", ["pandas", "pyarrow", "polars", "duckdb"])
@pytest.mark.parametrize("place", ["mlflow-artifacts", "runs"], indirect=True)
def test_a_one_column_read_fetches_little_more_than_that_column(place: Place, tool: str) -> None:
    name = f"wide-{tool}-{uuid.uuid4().hex[:6]}.parquet"
    wide = pd.DataFrame({"a": range(1000), "big": [os.urandom(4096) for _ in range(1000)]})
    wide.to_parquet(place.disk / name, compression=None, row_group_size=1000)
    size = (place.disk / name).stat().st_size
    fs, path = artifact_fs.url_to_fs(place.uri(name))
    place.proxy.reset()
    assert list(_read(tool, fs, path)["a"]) == list(range(1000))
    assert place.proxy.downstream < size / 4, (place.proxy.downstream, size)


def test_duckdb_globs_and_reopens_names_in_our_own_schemes(
    places: dict[str, Place], monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    for kind in ("mlflow-artifacts", "runs", "models"):
        place = places[kind]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", place.proxy.url)
        place.disk.mkdir(parents=True, exist_ok=True)
        folder = f"glob-{uuid.uuid4().hex[:6]}"
        (place.disk / folder).mkdir()
        for part in range(2):
            TABLE.to_parquet(place.disk / folder / f"part-{part}.parquet")
        fs, path = artifact_fs.url_to_fs(place.uri(folder))
        unstripped = fs.unstrip_protocol(path)
        assert unstripped.startswith(f"{kind}:///"), unstripped
        connection = duckdb.connect()
        connection.register_filesystem(fs)
        total = connection.sql(f"select sum(a) from read_parquet('{unstripped}/*.parquet')").fetchall()
        assert total == [(2 * int(TABLE["a"].sum()),)], kind
