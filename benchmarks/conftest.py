"""Shared data and peers for the benchmarks: the same files, timed in the same run.

Run everything with ``.venv/bin/python benchmarks/run.py`` (a ratio table at the end; ``--quick``
for reduced sizes), or one suite with ``.venv/bin/pytest benchmarks/test_s3.py --benchmark-only``.
Sizes are in ``sizes.py``. Peers (``cp -r``, MLflow's own
repository in its virtual environment) are timed here with ``time.perf_counter`` over the same
number of rounds, so each artifact_fs benchmark can report its ratio to them in ``extra_info``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sizes import LARGE_SIZE, ROUNDS, SMALL_FILES, SMALL_SIZE


@dataclass(frozen=True)
class Dataset:
    name: str
    source: Path
    """A directory (``small``) or a single file (``large``)."""
    logged: Path
    """The same data already logged as an artifact root, to download from."""


def _write_small(root: Path) -> None:
    for index in range(SMALL_FILES):
        directory = root / f"part-{index % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file-{index:04d}.bin").write_bytes(os.urandom(SMALL_SIZE))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="session")
def small(workdir: Path) -> Dataset:
    source = workdir / "small-source"
    _write_small(source)
    logged = workdir / "small-logged"
    shutil.copytree(source, logged)
    return Dataset("small", source, logged)


@pytest.fixture(scope="session")
def large(workdir: Path) -> Dataset:
    source = workdir / "large-source" / "large.bin"
    source.parent.mkdir()
    with source.open("wb") as f:
        for _ in range(LARGE_SIZE // (1024 * 1024)):
            f.write(os.urandom(1024 * 1024))
    logged = workdir / "large-logged"
    logged.mkdir()
    shutil.copy(source, logged / "large.bin")
    return Dataset("large", source, logged)


class Scratch:
    """Fresh destination directories, each removed when the next one is made (bounded disk use)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.current: Path | None = None

    def fresh(self) -> Path:
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
        self.current = Path(tempfile.mkdtemp(dir=self.base))
        return self.current


@pytest.fixture
def scratch(workdir: Path) -> Iterator[Scratch]:
    holder = Scratch(workdir)
    yield holder
    holder.fresh()


def time_rounds(operation: Callable[[Path], Any], scratch: Scratch, rounds: int = ROUNDS) -> float:
    """Median seconds of ``operation(fresh_destination)`` (destination made outside the timing)."""
    timings = []
    for _ in range(rounds):
        destination = scratch.fresh()
        start = time.perf_counter()
        operation(destination)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


MLFLOW_TIMER = r"""
import json, os, shutil, statistics, tempfile, time
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

args = json.loads(os.environ["AF_BENCH_ARGS"])
out = {}
for name, data in args["datasets"].items():
    for operation in ("upload", "download"):
        timings = []
        for _ in range(args["rounds"]):
            destination = tempfile.mkdtemp(dir=args["scratch"])
            if operation == "upload":
                repo = LocalArtifactRepository(destination)
                start = time.perf_counter()
                if os.path.isdir(data["source"]):
                    repo.log_artifacts(data["source"])
                else:
                    repo.log_artifact(data["source"])
            else:
                repo = LocalArtifactRepository(data["logged"])
                start = time.perf_counter()
                repo.download_artifacts("", destination)
            timings.append(time.perf_counter() - start)
            shutil.rmtree(destination)
        out[f"{name}-{operation}"] = statistics.median(timings)
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def mlflow_timings(small: Dataset, large: Dataset, workdir: Path) -> dict[str, float]:
    """Median seconds of MLflow's LocalArtifactRepository, timed in-process in MLflow's venv."""
    from conformance.servers.mlflow_env import run_mlflow_python

    scratch = workdir / "mlflow-scratch"
    scratch.mkdir()
    args = {
        "rounds": ROUNDS,
        "scratch": str(scratch),
        "datasets": {d.name: {"source": str(d.source), "logged": str(d.logged)} for d in (small, large)},
    }
    completed = run_mlflow_python(MLFLOW_TIMER, env={"AF_BENCH_ARGS": json.dumps(args)}, timeout=900)
    timings: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return timings


def cp_command(source: Path, destination: Path) -> list[str]:
    """``cp -r`` of a directory's contents, or ``cp`` of one file, into ``destination``."""
    if source.is_dir():
        return ["cp", "-r", f"{source}/.", str(destination)]
    return ["cp", str(source), str(destination)]


@pytest.fixture(scope="session")
def rounds() -> int:
    return ROUNDS


@pytest.fixture(scope="session")
def copy_command() -> Callable[[Path, Path], list[str]]:
    return cp_command


@pytest.fixture(scope="session")
def cp_timings(small: Dataset, large: Dataset, workdir: Path) -> dict[str, float]:
    """Median seconds of ``cp`` for each scenario (process start included, as a user would see it)."""
    scratch = Scratch(workdir)
    timings = {}
    for dataset in (small, large):
        timings[f"{dataset.name}-upload"] = time_rounds(
            lambda dst, d=dataset: subprocess.run(cp_command(d.source, dst), check=True), scratch
        )
        timings[f"{dataset.name}-download"] = time_rounds(
            lambda dst, d=dataset: subprocess.run(cp_command(d.logged, dst), check=True), scratch
        )
    scratch.fresh()
    return timings
