"""``artifact-fs gc`` beside ``mlflow gc``: 1,000 deleted runs x 10 small artifacts on S3 (SeaweedFS).

One SQLite backend store is filled by MLflow's own client (in its virtual environment): the runs are
created and deleted, then the database is copied, so each collector gets the same rows with its own
artifact prefix (``gc/mlflow/...``, ``gc/ours/...``) holding the same objects. Each command runs once
as a user runs it (a subprocess, import time included), because a collection cannot be repeated on
the same data. ``extra_info`` holds MLflow's seconds and ``ratio_vs_mlflow_gc`` (ours / theirs, below
1 is faster). Not run in CI. ``AF_BENCH_SCALE=quick`` collects 200 runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from s3_peers import boto3_client, list_sizes
from sizes import QUICK

from conformance.servers.mlflow_env import mlflow_bin, run_mlflow_python
from conformance.servers.seaweedfs import SeaweedFS, start_seaweedfs

pytestmark = [pytest.mark.benchmark(group="gc-s3"), pytest.mark.timeout(3600)]

BUCKET = "gc-bench"
RUNS = 200 if QUICK else 1000
FILES_PER_RUN = 10
FILE_SIZE = 1024

CREATE_DELETED_RUNS = r"""
import json, os, sys
from mlflow import MlflowClient
client = MlflowClient()
experiment_id = client.create_experiment("gc-bench", os.environ["GC_LOCATION"])
runs = {}
for _ in range(int(os.environ["GC_RUNS"])):
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "p", 1)
    client.delete_run(run.info.run_id)
    runs[run.info.run_id] = run.info.artifact_uri
print(json.dumps(runs))
"""


@dataclass(frozen=True)
class GcBench:
    server: SeaweedFS
    client: Any
    databases: dict[str, Path]
    """Collector (``mlflow``, ``ours``) -> its copy of the backend store."""


@pytest.fixture(scope="module")
def gc_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcBench]:
    work = tmp_path_factory.mktemp("gc-bench")
    logs = work / "logs"
    logs.mkdir()
    server = start_seaweedfs(logs, work / "seaweedfs")
    try:
        server.create_bucket(BUCKET)
        template = work / "template.db"
        created = run_mlflow_python(
            CREATE_DELETED_RUNS,
            env={
                "MLFLOW_TRACKING_URI": f"sqlite:///{template}",
                "GC_LOCATION": f"s3://{BUCKET}/gc/mlflow",
                "GC_RUNS": str(RUNS),
            },
            timeout=3000,
        )
        runs: dict[str, str] = json.loads(created.stdout.strip().splitlines()[-1])
        databases = {"mlflow": work / "mlflow.db", "ours": work / "ours.db"}
        for collector, database in databases.items():
            with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(database)) as copy:
                source.backup(copy)
            with closing(sqlite3.connect(database)) as db, db:
                db.execute(
                    "UPDATE runs SET artifact_uri = replace(artifact_uri, '/gc/mlflow/', ?)",
                    (f"/gc/{collector}/",),
                )
                db.execute(
                    "UPDATE experiments SET artifact_location = replace(artifact_location, '/gc/mlflow', ?)",
                    (f"/gc/{collector}",),
                )
        client = boto3_client(server.endpoint_url, server.access_key, server.secret_key, server.region)
        upload(server, runs)
        yield GcBench(server, client, databases)
    finally:
        server.stop()


def upload(server: SeaweedFS, runs: dict[str, str]) -> None:
    """``FILES_PER_RUN`` small objects under every run root, for both collectors (s3fs, batched)."""
    import s3fs

    fs = s3fs.S3FileSystem(key=server.access_key, secret=server.secret_key, endpoint_url=server.endpoint_url)
    payload = os.urandom(FILE_SIZE)
    objects = {}
    for uri in runs.values():
        relative = uri.split(f"s3://{BUCKET}/gc/mlflow/", 1)[1]
        for collector in ("mlflow", "ours"):
            for index in range(FILES_PER_RUN):
                directory = "model/" if index % 2 else ""
                objects[f"{BUCKET}/gc/{collector}/{relative}/{directory}file-{index}.bin"] = payload
    fs.pipe(objects, batch_size=64)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def remaining_runs(database: Path) -> int:
    with closing(sqlite3.connect(database)) as db:
        return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])


def test_artifact_fs_gc_s3(benchmark: Any, gc_bench: GcBench) -> None:
    env = gc_bench.server.environ()
    expected = RUNS * FILES_PER_RUN
    assert len(list_sizes(gc_bench.client, "gc/mlflow", BUCKET)) == expected
    assert len(list_sizes(gc_bench.client, "gc/ours", BUCKET)) == expected

    mlflow_database = gc_bench.databases["mlflow"]
    theirs, done = timed(
        [mlflow_bin(), "gc", "--backend-store-uri", f"sqlite:///{mlflow_database}"],
        {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_database}"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert remaining_runs(mlflow_database) == 0 and not list_sizes(gc_bench.client, "gc/mlflow", BUCKET)

    ours_database = gc_bench.databases["ours"]
    result: dict[str, Any] = {}

    def collect() -> None:
        result["seconds"], result["done"] = timed(
            [
                sys.executable,
                "-m",
                "artifact_fs.cli",
                "gc",
                "--backend-store-uri",
                f"sqlite:///{ours_database}",
            ],
            env,
        )

    benchmark.pedantic(collect, rounds=1, iterations=1, warmup_rounds=0)
    done = result["done"]
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert remaining_runs(ours_database) == 0 and not list_sizes(gc_bench.client, "gc/ours", BUCKET)
    benchmark.extra_info.update(
        scenario="s3-gc-deleted-runs",
        runs=RUNS,
        objects=expected,
        mlflow_gc_seconds=round(theirs, 3),
        artifact_fs_gc_seconds=round(result["seconds"], 3),
        ratio_vs_mlflow_gc=result["seconds"] / theirs,
    )
    ours = result["seconds"]
    print(f"\ngc of {RUNS} runs x {FILES_PER_RUN} objects: mlflow gc {theirs:.1f} s, ours {ours:.1f} s")
