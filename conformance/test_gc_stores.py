"""``artifact-fs gc`` on Azure Blob (through MLflow's proxy), ADLS, and a PostgreSQL backend store.

The Azure cases run beside ``mlflow gc`` in the same test, where MLflow's fails: a deleted run or logged
model whose artifacts were already removed by hand, through ``mlflow server --serve-artifacts`` on
Azurite (the server answers 500 for a missing Azure prefix and MLflow's gc aborts, mlflow/mlflow
#15461), and an ``abfss`` root (MLflow's ADLS repository cannot delete). The PostgreSQL case starts
Debian's server for the test run (``conformance/servers/postgres.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.harness import BackendUnderTest
from conformance.servers import azurite
from conformance.servers.launcher import ServerStartError
from conformance.servers.mlflow_server import MlflowServer, start_mlflow_server
from conformance.servers.postgres import PostgresServer, start_postgres
from conformance.test_gc import (
    ALLOW_HOSTS,
    artifact_fs_gc,
    database_of,
    log_runs,
    mlflow_gc,
    run_rows,
    snapshot,
)

pytestmark = [pytest.mark.mlflow, pytest.mark.gc]

CONTAINER = "artifacts"


@pytest.fixture(scope="module")
def azure_gc_server(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory, backend_azure_wasbs: BackendUnderTest
) -> Iterator[MlflowServer]:
    work = tmp_path_factory.mktemp("gc-mlflow-azure")
    destination = f"wasbs://{CONTAINER}@{azurite.ACCOUNT}.blob.core.windows.net/gc-proxy"
    server = start_mlflow_server(
        server_log_dir,
        work,
        destination,
        env={**backend_azure_wasbs.environ, **ALLOW_HOSTS},
        name="mlflow-gc-azure",
    )
    try:
        yield server
    finally:
        server.stop()


def container(backend: BackendUnderTest) -> object:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(backend.details["connection_string"])
    return service.get_container_client(CONTAINER)


def blobs(client: object, prefix: str) -> dict[str, bytes]:
    return {
        blob.name: client.download_blob(blob.name).readall()  # type: ignore[attr-defined]
        for blob in client.list_blobs(name_starts_with=prefix)  # type: ignore[attr-defined]
    }


def remove_by_hand(client: object, prefix: str) -> None:
    names = list(blobs(client, prefix))
    assert names, prefix
    for name in names:
        client.delete_blob(name)  # type: ignore[attr-defined]


def proxied_path(uri: str) -> str:
    """``mlflow-artifacts:/1/<id>/artifacts`` -> ``1/<id>/``, the resource's directory."""
    path = uri.split(":", 1)[1].lstrip("/")
    return path.rsplit("/artifacts", 1)[0] + "/"


@pytest.mark.azure
def test_gc_finishes_where_mlflow_gc_fails_on_azure_through_the_proxy(
    azure_gc_server: MlflowServer, backend_azure_wasbs: BackendUnderTest
) -> None:
    spec = log_runs(azure_gc_server, {}, experiment="gc-azure", runs=3, deleted=2, models=1)
    deleted = [r for r, v in spec["runs"].items() if v["deleted"]]
    live = [r for r, v in spec["runs"].items() if not v["deleted"]]
    model = next(iter(spec["models"]))
    client = container(backend_azure_wasbs)
    removed, intact = deleted
    remove_by_hand(client, "gc-proxy/" + proxied_path(spec["runs"][removed]["uri"]))
    remove_by_hand(client, "gc-proxy/" + proxied_path(spec["models"][model]["uri"]))
    before = blobs(client, "gc-proxy/")
    database = database_of(azure_gc_server)
    store = ["--backend-store-uri", f"sqlite:///{database}", "--tracking-uri", azure_gc_server.url]

    theirs = mlflow_gc(*store, "--run-ids", f"{removed},{intact}", env={})
    assert theirs.returncode != 0, theirs.stdout + theirs.stderr[-3000:]
    assert "500" in theirs.stderr or "No such file" in theirs.stderr, theirs.stderr[-3000:]
    theirs_model = mlflow_gc(*store, "--logged-model-ids", model, env={})
    assert theirs_model.returncode != 0, theirs_model.stderr[-3000:]
    # MLflow's gc aborted at the run whose artifacts were gone (it may have taken the other first).
    left = run_rows(database, deleted)
    assert removed in left
    assert {k: v for k, v in blobs(client, "gc-proxy/").items() if intact not in k} == {
        k: v for k, v in before.items() if intact not in k
    }

    ours = artifact_fs_gc(*store, "--run-ids", ",".join(sorted(left)), "--logged-model-ids", model)
    assert ours.returncode == 0, ours.stderr + ours.stdout
    assert run_rows(database, deleted) == set() and run_rows(database, live) == set(live)
    after = blobs(client, "gc-proxy/")
    assert not [name for name in after if intact in name]
    assert after == {name: data for name, data in before.items() if intact not in name}
    assert any(live[0] in name for name in after)

    again = artifact_fs_gc(*store)
    assert again.returncode == 0, again.stderr + again.stdout
    assert blobs(client, "gc-proxy/") == after


@pytest.mark.azure
def test_gc_finishes_where_mlflow_gc_fails_on_an_adls_root(
    azure_gc_server: MlflowServer,
    backend_azure_wasbs: BackendUnderTest,
    backend_azure_abfss: BackendUnderTest,
) -> None:
    location = f"abfss://{CONTAINER}@{azurite.ACCOUNT}.dfs.core.windows.net/gc-adls"
    # MLflow's ADLS repository needs the dfs endpoint, which Azurite lacks: artifacts are written here.
    spec = log_runs(
        azure_gc_server, {}, experiment="gc-adls", location=location, runs=2, deleted=1, artifacts=False
    )
    client = container(backend_azure_wasbs)
    for run_id, run in spec["runs"].items():
        prefix = run["uri"].split(".dfs.core.windows.net/", 1)[1]
        for name in ("a.txt", "nested/b.bin"):
            client.upload_blob(f"{prefix}/{name}", f"{run_id}-{name}".encode())  # type: ignore[attr-defined]
    deleted = next(r for r, v in spec["runs"].items() if v["deleted"])
    live = next(r for r, v in spec["runs"].items() if not v["deleted"])
    before = blobs(client, "gc-adls/")
    database = database_of(azure_gc_server)
    store = ["--backend-store-uri", f"sqlite:///{database}", "--tracking-uri", azure_gc_server.url]

    theirs = mlflow_gc(*store, "--run-ids", deleted, env=backend_azure_abfss.environ)
    assert theirs.returncode != 0 and "NotImplementedError" in theirs.stderr, theirs.stderr[-3000:]
    assert run_rows(database, [deleted]) == {deleted}

    # artifact_fs reads abfss roots through the blob endpoint a connection string names.
    ours = artifact_fs_gc(*store, "--run-ids", deleted, env=backend_azure_wasbs.environ)
    assert ours.returncode == 0, ours.stderr + ours.stdout
    assert run_rows(database, [deleted, live]) == {live}
    assert blobs(client, "gc-adls/") == {k: v for k, v in before.items() if deleted not in k}


@pytest.fixture(scope="module")
def postgres(server_log_dir: Path) -> Iterator[PostgresServer]:
    try:
        server = start_postgres(server_log_dir)
    except ServerStartError as exc:
        if os.environ.get("CI", "").lower() == "true" or "not installed" not in str(exc):
            raise
        pytest.skip(f"{exc} (a failure in CI)")
    try:
        yield server
    finally:
        server.stop()


def postgres_rows(server: PostgresServer, table: str, column: str, ids: list[str]) -> set[str]:
    import psycopg

    with psycopg.connect(server.url()) as connection:
        rows = connection.execute(f"SELECT {column} FROM {table} WHERE {column} = ANY(%s)", (ids,))
        return {row[0] for row in rows}


@pytest.mark.local
def test_gc_on_a_postgresql_backend_store(
    postgres: PostgresServer, server_log_dir: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "mlartifacts"
    # The last --backend-store-uri wins (click): MLflow migrates the PostgreSQL database.
    server = start_mlflow_server(
        server_log_dir,
        tmp_path / "server",
        str(destination),
        extra_args=["--backend-store-uri", postgres.url(driver="+psycopg2")],
        name="mlflow-gc-postgres",
        timeout=300,
    )
    try:
        spec = log_runs(server, {}, experiment="gc-postgres", runs=3, deleted=2, models=1)
    finally:
        server.stop()
    deleted = [r for r, v in spec["runs"].items() if v["deleted"]]
    live = [r for r, v in spec["runs"].items() if not v["deleted"]]
    models = list(spec["models"])
    before = snapshot(destination)
    # The URL MLflow was given (psycopg2's): artifact-fs gc uses whichever driver is installed.
    store = [
        "--backend-store-uri",
        postgres.url(driver="+psycopg2"),
        "--artifacts-destination",
        str(destination),
    ]

    dry = artifact_fs_gc(*store, "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0, dry.stderr + dry.stdout
    assert snapshot(destination) == before
    assert postgres_rows(postgres, "runs", "run_uuid", deleted) == set(deleted)

    done = artifact_fs_gc(*store, "--older-than", "0s")
    assert done.returncode == 0, done.stderr + done.stdout
    assert postgres_rows(postgres, "runs", "run_uuid", deleted + live) == set(live)
    assert postgres_rows(postgres, "params", "run_uuid", deleted) == set()
    assert postgres_rows(postgres, "logged_models", "model_id", models) == set()
    gone = [*deleted, *models]
    for resource_id in gone:
        assert not list(destination.rglob(resource_id))
    assert snapshot(destination) == {k: v for k, v in before.items() if not any(g in k for g in gone)}

    again = artifact_fs_gc(*store, "--older-than", "0s")
    assert again.returncode == 0 and "nothing to collect" in again.stdout, again.stdout
