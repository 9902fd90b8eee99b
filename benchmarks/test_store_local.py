"""ArtifactStore on the local backend against ``cp`` and MLflow's LocalArtifactRepository.

Scenarios, on the shared data of ``conftest.py`` (sizes in ``sizes.py``): 1,000 x 16 KiB files
(log_artifacts / download_artifacts of a tree) and one 256 MiB file (log_artifact / download of the
root). Before each of artifact_fs's rounds, one round of ``cp`` (a process, its start included, as
a user sees it) and one of MLflow's repository (in a process of MLflow's venv kept for the session,
timed inside it), each into a fresh directory of its own: a local disk's state (dirty pages being
written back, the journal) changes during a run, and peers timed in a block at the start of the
session ran on a quieter disk than ours (2.9x MLflow's time in a block, 1.3x ``cp``'s interleaved,
in the same run). Each copy starts after ``sync``, so none pays for writing back another's files.
Every implementation constructs its repository (or store) inside the timing. Each benchmark stores
the peers' medians and ``ratio_vs_cp`` / ``ratio_vs_mlflow`` (our median divided by theirs; below 1
is faster) in ``extra_info``, and checks every copy's files and sizes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Dataset, Scratch, cp_command, file_sizes
from mlflow_peers import MlflowRounds
from s3_peers import PeerRounds
from sizes import ROUNDS, WARMUP_ROUNDS

from artifact_fs.store import ArtifactStore

pytestmark = pytest.mark.benchmark(group="store-local")
SCENARIOS = ["small-upload", "small-download", "large-upload", "large-download"]

MLFLOW_LOCAL_ROUNDS = r"""
import json, sys, time
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

for line in sys.stdin:
    job = json.loads(line)
    start = time.perf_counter()
    if job["operation"] == "upload":
        repo = LocalArtifactRepository(job["destination"])
        if job["directory"]:
            repo.log_artifacts(job["source"])
        else:
            repo.log_artifact(job["source"])
    else:
        LocalArtifactRepository(job["source"]).download_artifacts("", job["destination"])
    print(json.dumps(time.perf_counter() - start), flush=True)
"""


@pytest.fixture(scope="session")
def mlflow_local(workdir: Path) -> Iterator[MlflowRounds]:
    rounds = MlflowRounds(MLFLOW_LOCAL_ROUNDS, workdir / "mlflow-local.log")
    yield rounds
    rounds.close()


def _ours(operation: str, dataset: Dataset, destination: Path) -> None:
    if operation == "download":
        ArtifactStore(str(dataset.logged)).download_artifacts("", destination)
    elif dataset.source.is_dir():
        ArtifactStore(str(destination)).log_artifacts(dataset.source)
    else:
        ArtifactStore(str(destination)).log_artifact(dataset.source)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_artifact_fs(
    benchmark: Any,
    request: pytest.FixtureRequest,
    workdir: Path,
    mlflow_local: MlflowRounds,
    scenario: str,
) -> None:
    dataset_name, operation = scenario.split("-")
    dataset: Dataset = request.getfixturevalue(dataset_name)
    source = dataset.source if operation == "upload" else dataset.logged
    scratches = {who: Scratch(workdir) for who in ("artifact_fs", "cp", "mlflow")}
    peers = {"cp": PeerRounds(WARMUP_ROUNDS), "mlflow": PeerRounds(WARMUP_ROUNDS)}

    def peers_then_ours() -> tuple[tuple[str, Dataset, Path], dict[str, Any]]:
        destination = scratches["cp"].fresh()
        peers["cp"].run(lambda: subprocess.run(cp_command(source, destination), check=True))
        job = {"operation": operation, "source": str(source), "directory": source.is_dir()}
        destination = scratches["mlflow"].fresh()
        os.sync()
        peers["mlflow"].record(mlflow_local.run(**job, destination=str(destination)))
        destination = scratches["artifact_fs"].fresh()
        os.sync()
        return (operation, dataset, destination), {}

    try:
        benchmark.pedantic(
            _ours, setup=peers_then_ours, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
        )
        for who, scratch in scratches.items():
            assert file_sizes(scratch.current or Path()) == file_sizes(source), who
    finally:
        for scratch in scratches.values():
            scratch.clear()

    ours = benchmark.stats.stats.median
    info = benchmark.extra_info
    info["scenario"] = f"local-{scenario}"
    info["median_s"] = ours
    for peer, rounds in peers.items():
        theirs = rounds.median()
        info[f"{peer}_median_s"] = theirs
        info[f"ratio_vs_{peer}"] = ours / theirs
