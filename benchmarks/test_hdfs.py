"""ArtifactStore on ``hdfs://`` (a real MiniDFSCluster), each engine, against MLflow's HdfsArtifactRepository.

The session starts its own MiniDFSCluster with the conformance launcher and exports what libhdfs needs
(``ARROW_LIBHDFS_DIR``, ``CLASSPATH``, ``JAVA_HOME``; built by ``scripts/install/45-libhdfs.sh``).
Scenarios: a tree of 40 x 64 KiB files (``log_artifacts`` / ``download_artifacts``) and one 32 MiB file
(``log_artifact`` / download). The tree is small because every HDFS file close waits for the NameNode
to hear from the DataNode (about 0.4-0.5 s per file here, in both clients).

MLflow's repository runs in its own virtual environment through the same libhdfs (one subprocess, its
rounds timed inside it); artifact_fs runs with the ``hdfs-native`` and the ``pyarrow`` engine. Each
artifact_fs benchmark stores MLflow's median and ``ratio_vs_mlflow`` (ours / theirs; below 1 is faster)
in ``extra_info``. Repositories and stores are constructed inside the timing, as a user would.

Everything lives under one run's artifact root in MLflow's layout, ``bench/0/<run id>/artifacts``, as
MLflow hands it out: artifact_fs keeps its digest records at ``<run id>/.artifact.digests/``, outside
the directory MLflow's repository lists and downloads (elsewhere a record sits beside its file, where
MLflow's client would take it for an artifact).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import file_sizes
from mlflow_peers import mlflow_repository_timings

from artifact_fs.store import ArtifactStore
from conformance.servers import hdfs as minidfs
from conformance.servers.launcher import ServerProcess

pytestmark = [pytest.mark.benchmark(group="store-hdfs"), pytest.mark.timeout(1800)]
SCENARIOS = ["tree-upload", "tree-download", "large-upload", "large-download"]
ENGINES = ["hdfs-native", "pyarrow"]
ROUNDS = 3
WARMUP_ROUNDS = 1
TREE_FILES = 40
TREE_FILE_SIZE = 64 * 1024
LARGE_SIZE = 32 * 1024 * 1024
RUN_ARTIFACTS = f"bench/0/{uuid.uuid4().hex}/artifacts"
"""The benchmark's artifact root: one run's, in MLflow's layout."""


@pytest.fixture(scope="session")
def namenode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    libhdfs = minidfs.libhdfs_environ()
    if not libhdfs:
        pytest.fail("libhdfs is not built: run scripts/install/45-libhdfs.sh")
    for name, value in libhdfs.items():
        os.environ.setdefault(name, value)
    server: ServerProcess = minidfs.start_minidfs(
        tmp_path_factory.mktemp("hdfs-logs"), tmp_path_factory.mktemp("minidfs")
    )
    try:
        yield minidfs.namenode_url(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hdfs-data")
    tree = base / "tree"
    for index in range(TREE_FILES):
        directory = tree / f"part-{index % 4}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file-{index:03d}.bin").write_bytes(os.urandom(TREE_FILE_SIZE))
    large = base / "large" / "large.bin"
    large.parent.mkdir()
    with large.open("wb") as handle:
        for _ in range(LARGE_SIZE // (1024 * 1024)):
            handle.write(os.urandom(1024 * 1024))
    return {"tree": tree, "large": large}


def _store(namenode: str, prefix: str, engine: str) -> ArtifactStore:
    return ArtifactStore(f"{namenode}/{RUN_ARTIFACTS}/{prefix}", engine=engine)


@pytest.fixture(scope="session")
def logged(namenode: str, datasets: dict[str, Path]) -> dict[str, str]:
    """Each dataset logged once under ``<run artifacts>/logged/<name>``, to download from."""
    prefixes = {}
    for name, source in datasets.items():
        prefixes[name] = f"logged/{name}"
        store = _store(namenode, prefixes[name], "hdfs-native")
        if source.is_dir():
            store.log_artifacts(str(source))
        else:
            store.log_artifact(str(source))
    return prefixes


@pytest.fixture(scope="session")
def mlflow_hdfs(
    namenode: str, datasets: dict[str, Path], logged: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, float]:
    """Median seconds of MLflow's HdfsArtifactRepository per scenario, timed inside MLflow's venv."""
    return mlflow_repository_timings(
        "mlflow.store.artifact.hdfs_artifact_repo:HdfsArtifactRepository",
        f"{namenode}/{RUN_ARTIFACTS}",
        {},
        {
            name: {"source": str(source), "logged": logged[name], "files": len(file_sizes(source))}
            for name, source in datasets.items()
        },
        scratch=tmp_path_factory.mktemp("mlflow-hdfs-scratch"),
        rounds=ROUNDS,
        warmup_rounds=WARMUP_ROUNDS,
    )


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_artifact_fs_hdfs(
    benchmark: Any, request: pytest.FixtureRequest, tmp_path: Path, scenario: str, engine: str
) -> None:
    mlflow_hdfs: dict[str, float] = request.getfixturevalue("mlflow_hdfs")  # timed before ours
    namenode: str = request.getfixturevalue("namenode")
    datasets: dict[str, Path] = request.getfixturevalue("datasets")
    logged: dict[str, str] = request.getfixturevalue("logged")
    name, operation = scenario.split("-")
    source = datasets[name]
    counter = itertools.count()

    if operation == "upload":
        prefixes: list[str] = []

        def upload(prefix: str) -> None:
            store = _store(namenode, prefix, engine)
            if source.is_dir():
                store.log_artifacts(str(source))
            else:
                store.log_artifact(str(source))

        def upload_round() -> tuple[tuple[str], dict[str, Any]]:
            prefixes.append(f"upload/{engine}/{name}-{next(counter)}")
            return (prefixes[-1],), {}

        benchmark.pedantic(
            upload, setup=upload_round, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
        )
        check = tmp_path / "check"
        check.mkdir()
        _store(namenode, prefixes[-1], engine).download_artifacts("", str(check))
        assert file_sizes(check) == file_sizes(source)
        for prefix in prefixes:
            _store(namenode, prefix, engine).delete_artifacts()
    else:
        destinations: list[Path] = []

        def download(destination: Path) -> None:
            _store(namenode, logged[name], engine).download_artifacts("", str(destination))

        def download_round() -> tuple[tuple[Path], dict[str, Any]]:
            for old in destinations:
                shutil.rmtree(old, ignore_errors=True)
            destinations.append(Path(tempfile.mkdtemp(dir=tmp_path)))
            return (destinations[-1],), {}

        benchmark.pedantic(
            download, setup=download_round, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
        )
        assert file_sizes(destinations[-1]) == file_sizes(source)

    ours = benchmark.stats.stats.median
    theirs = mlflow_hdfs[scenario]
    benchmark.extra_info.update(
        {
            "scenario": scenario,
            "engine": engine,
            "median_s": ours,
            "mlflow_median_s": theirs,
            "ratio_vs_mlflow": ours / theirs,
        }
    )
