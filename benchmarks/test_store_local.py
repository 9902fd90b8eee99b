"""ArtifactStore on the local backend against ``cp`` and MLflow's LocalArtifactRepository.

Scenarios: 200 x 64 KiB files (log_artifacts / download_artifacts of a tree) and one 64 MiB file
(log_artifact / download of the root). Each artifact_fs benchmark stores the peers' medians and
``ratio_vs_cp`` / ``ratio_vs_mlflow`` (our median divided by theirs; below 1 is faster) in
``extra_info``, so ``--benchmark-json`` keeps the comparison.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from artifact_fs.store import ArtifactStore

pytestmark = pytest.mark.benchmark(group="store-local")
SCENARIOS = ["small-upload", "small-download", "large-upload", "large-download"]


@pytest.fixture
def peers(cp_timings: dict[str, float], mlflow_timings: dict[str, float]) -> dict[str, dict[str, float]]:
    return {"cp": cp_timings, "mlflow": mlflow_timings}


def _upload(dataset: Any, destination: Path) -> None:
    store = ArtifactStore(str(destination))
    if dataset.source.is_dir():
        store.log_artifacts(dataset.source)
    else:
        store.log_artifact(dataset.source)


def _download(dataset: Any, destination: Path) -> None:
    ArtifactStore(str(dataset.logged)).download_artifacts("", destination)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_artifact_fs(
    benchmark: Any,
    request: pytest.FixtureRequest,
    scratch: Any,
    peers: dict[str, dict[str, float]],
    scenario: str,
) -> None:
    dataset_name, operation = scenario.split("-")
    dataset = request.getfixturevalue(dataset_name)
    function = _upload if operation == "upload" else _download
    rounds = request.getfixturevalue("rounds")
    benchmark.pedantic(
        function, setup=lambda: ((dataset, scratch.fresh()), {}), rounds=rounds, iterations=1, warmup_rounds=1
    )
    ours = benchmark.stats.stats.median
    benchmark.extra_info["scenario"] = f"local-{scenario}"
    benchmark.extra_info["median_s"] = ours
    for peer, timings in peers.items():
        benchmark.extra_info[f"{peer}_median_s"] = timings[scenario]
        benchmark.extra_info[f"ratio_vs_{peer}"] = ours / timings[scenario]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cp(
    benchmark: Any, request: pytest.FixtureRequest, scratch: Any, copy_command: Any, scenario: str
) -> None:
    dataset_name, operation = scenario.split("-")
    dataset = request.getfixturevalue(dataset_name)
    source = dataset.source if operation == "upload" else dataset.logged
    benchmark.pedantic(
        lambda destination: subprocess.run(copy_command(source, destination), check=True),
        setup=lambda: ((scratch.fresh(),), {}),
        rounds=request.getfixturevalue("rounds"),
        iterations=1,
    )
