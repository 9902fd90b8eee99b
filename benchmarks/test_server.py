"""``artifact-fs serve`` against MLflow's own ``mlflow server --serve-artifacts``, both on local disk.

The session starts both servers on 127.0.0.1 with the conformance launchers (one worker each, a local
``--artifacts-destination`` each) and drives them with the same client: MLflow's
``HttpArtifactRepository`` in MLflow's virtual environment, one long-lived process that times each
operation in-process with ``time.perf_counter`` (repository constructed inside the timing) and
answers over a pipe. Scenarios: one 256 MiB file (``log_artifact`` / ``download_artifacts``) and a
tree of 100 x 64 KiB files (``log_artifacts`` / ``download_artifacts``).

Rounds alternate: ``benchmark.pedantic``'s ``setup`` runs one round against MLflow's server, then
pytest-benchmark times one against ours, so a busy machine's load changes stay out of the ratio. The
ratio ``ratio_vs_mlflow_server`` is our in-process median over MLflow's (below 1: faster); the pipe's
round trip is left out of both. During the large-file scenarios a thread samples each server's RSS
with psutil every 10 ms and reports the peaks in ``extra_info``: ``peak_rss_mib`` of the process
that serves HTTP, ``peak_rss_tree_mib`` of everything the server command started (see
:class:`RssSampler`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import pytest
from conftest import file_sizes
from sizes import LARGE_SIZE, ROUNDS, SMALL_FILES, SMALL_SIZE, WARMUP_ROUNDS

from artifact_fs.store import ArtifactStore
from conformance.servers.artifact_server import start_artifact_server
from conformance.servers.mlflow_env import mlflow_python
from conformance.servers.mlflow_server import start_mlflow_server

pytestmark = [pytest.mark.benchmark(group="server-local"), pytest.mark.timeout(900)]
MIB = 1024 * 1024
SCENARIOS = ["large-upload", "large-download", "small-upload", "small-download"]
SAMPLE_SECONDS = 0.01

CLIENT = r"""
import json, os, sys, time, traceback
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

replies = os.fdopen(int(sys.argv[1]), "w")  # stdout stays free for MLflow's own output
for line in sys.stdin:
    command = json.loads(line)
    try:
        start = time.perf_counter()
        if command["op"] == "upload":
            repo = HttpArtifactRepository(command["url"])
            if os.path.isdir(command["source"]):
                repo.log_artifacts(command["source"])
            else:
                repo.log_artifact(command["source"])
        elif command["op"] == "download":
            HttpArtifactRepository(command["url"]).download_artifacts("", command["destination"])
        reply = {"seconds": time.perf_counter() - start}
    except Exception:
        reply = {"error": traceback.format_exc()}
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
"""


class MlflowClient:
    """MLflow's ``HttpArtifactRepository`` in one long-lived process of MLflow's venv."""

    def __init__(self, log_path: Path) -> None:
        read_end, write_end = os.pipe()
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [mlflow_python(), "-c", CLIENT, str(write_end)],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            env={
                **os.environ,
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                "GIT_PYTHON_REFRESH": "quiet",
                "NO_PROXY": "127.0.0.1,localhost",
            },
            text=True,
        )
        os.close(write_end)
        self.replies: IO[str] = os.fdopen(read_end)
        self.log_path = log_path

    def call(self, **command: str) -> float:
        """Seconds the operation took inside MLflow's process."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.replies.readline()
        if not line:
            raise AssertionError(
                f"MLflow's client died:\n{self.log_path.read_text(errors='replace')[-4000:]}"
            )
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"MLflow's client failed on {command}:\n{reply['error']}")
        return float(reply["seconds"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.replies.close()
        self.log.close()


@dataclass
class Served:
    """A running server as the benchmark sees it: where the client points, where files land."""

    name: str
    artifacts_url: str
    destination: Path
    pid: int
    timings: list[float] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    last_prefix: str = ""

    def fresh_prefix(self) -> str:
        """A new upload prefix; earlier uploads are removed from disk first (outside any timing)."""
        shutil.rmtree(self.destination / "upload", ignore_errors=True)
        self.last_prefix = f"upload/{next(self.counter)}"
        return self.last_prefix

    def median(self) -> float:
        return statistics.median(self.timings[WARMUP_ROUNDS:])


class RssSampler:
    """Peak RSS (MiB) of each server, sampled by a thread while it runs.

    ``serving`` is the process that answers HTTP: ``artifact-fs serve`` itself (one worker), and the
    ``uvicorn`` child of ``mlflow server``. ``tree`` adds every other process the server command
    started (MLflow 3's launcher, job runner and huey consumers), which stay idle here.
    """

    def __init__(self, servers: list[Served]) -> None:
        self.members: dict[str, list[psutil.Process]] = {}
        self.serving: dict[str, psutil.Process] = {}
        for server in servers:
            root = psutil.Process(server.pid)
            self.members[server.name] = [root, *root.children(recursive=True)]
            uvicorn = [m for m in self.members[server.name][1:] if "uvicorn" in " ".join(m.cmdline())]
            self.serving[server.name] = uvicorn[0] if uvicorn else root
        self.at_rest = {name: self._rss(process) for name, process in self.serving.items()}
        self.peak_serving: dict[str, float] = {}
        self.peak_tree: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def _rss(process: psutil.Process) -> float:
        try:
            return float(process.memory_info().rss) / MIB
        except psutil.NoSuchProcess:
            return 0.0

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            for name, members in self.members.items():
                sizes = {m.pid: self._rss(m) for m in members}
                serving = sizes[self.serving[name].pid]
                self.peak_serving[name] = max(self.peak_serving.get(name, 0.0), serving)
                self.peak_tree[name] = max(self.peak_tree.get(name, 0.0), sum(sizes.values()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Bench:
    ours: Served
    mlflow: Served
    client: MlflowClient
    datasets: dict[str, Path]
    """``large`` (one file) and ``small`` (a directory), also logged on both servers under ``logged/``."""


def _write_datasets(base: Path) -> dict[str, Path]:
    large = base / "large" / "large.bin"
    large.parent.mkdir(parents=True)
    with large.open("wb") as f:
        for _ in range(LARGE_SIZE // MIB):
            f.write(os.urandom(MIB))
    small = base / "small"
    for index in range(SMALL_FILES):
        directory = small / f"part-{index % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file-{index:03d}.bin").write_bytes(os.urandom(SMALL_SIZE))
    return {"large": large, "small": small}


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    base = tmp_path_factory.mktemp("server-bench")
    logs = base / "logs"
    logs.mkdir()
    datasets = _write_datasets(base / "data")
    with contextlib.ExitStack() as stack:
        ours_destination = base / "artifact-fs-destination"
        ours_server = start_artifact_server(logs, str(ours_destination))
        stack.callback(ours_server.stop)
        mlflow_destination = base / "mlflow-destination"
        mlflow_server = start_mlflow_server(logs, base / "mlflow", str(mlflow_destination))
        stack.callback(mlflow_server.stop)
        client = MlflowClient(logs / "mlflow-client.log")
        stack.callback(client.close)
        assert ours_server.process.process is not None and mlflow_server.process.process is not None
        served = [
            Served(
                "artifact_fs", ours_server.artifacts_url, ours_destination, ours_server.process.process.pid
            ),
            Served(
                "mlflow_server",
                f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts",
                mlflow_destination,
                mlflow_server.process.process.pid,
            ),
        ]
        for server in served:
            for name, source in datasets.items():
                client.call(op="upload", url=f"{server.artifacts_url}/logged/{name}", source=str(source))
                assert file_sizes(server.destination / "logged" / name) == file_sizes(source)
        yield Bench(served[0], served[1], client, datasets)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_artifact_server(benchmark: Any, bench: Bench, scenario: str, tmp_path: Path) -> None:
    dataset, operation = scenario.split("-")
    source = bench.datasets[dataset]
    ours, theirs = bench.ours, bench.mlflow
    for server in (ours, theirs):
        server.timings.clear()
    local = {server.name: tmp_path / server.name for server in (ours, theirs)}
    client = bench.client

    def one_round(server: Served) -> Callable[[], None]:
        """Prepare a round on ``server`` (outside the timing) and return the operation to time."""
        if operation == "upload":
            url = f"{server.artifacts_url}/{server.fresh_prefix()}"
            return lambda: server.timings.append(client.call(op="upload", url=url, source=str(source)))
        shutil.rmtree(local[server.name], ignore_errors=True)
        local[server.name].mkdir()
        url = f"{server.artifacts_url}/logged/{dataset}"
        destination = str(local[server.name])
        return lambda: server.timings.append(client.call(op="download", url=url, destination=destination))

    def setup() -> tuple[tuple[Callable[[], None]], dict[str, Any]]:
        one_round(theirs)()  # MLflow's server first, then ours, round after round
        return (one_round(ours),), {}

    sampler = RssSampler([ours, theirs]) if dataset == "large" else None
    with sampler or contextlib.nullcontext():
        benchmark.pedantic(
            lambda operation: operation(),
            setup=setup,
            rounds=ROUNDS,
            iterations=1,
            warmup_rounds=WARMUP_ROUNDS,
        )
    assert len(ours.timings) == len(theirs.timings) == ROUNDS + WARMUP_ROUNDS

    for server in (ours, theirs):
        if operation == "upload":
            stored = server.destination / server.last_prefix
            assert file_sizes(stored) == file_sizes(source), server.name
            shutil.rmtree(server.destination / "upload")
        else:
            assert file_sizes(local[server.name]) == file_sizes(source), server.name

    ours_median, theirs_median = ours.median(), theirs.median()
    size = sum(file_sizes(source).values())
    info = benchmark.extra_info
    info["scenario"] = f"server-{scenario}"
    info["bytes"] = size
    info["median_s"] = ours_median
    info["mlflow_server_median_s"] = theirs_median
    info["ratio_vs_mlflow_server"] = ours_median / theirs_median
    info["mib_per_s"] = size / MIB / ours_median
    info["mlflow_server_mib_per_s"] = size / MIB / theirs_median
    if sampler is not None:
        for server in (ours, theirs):
            prefix = "" if server is ours else "mlflow_server_"
            info[f"{prefix}rss_at_rest_mib"] = round(sampler.at_rest[server.name], 1)
            info[f"{prefix}peak_rss_mib"] = round(sampler.peak_serving[server.name], 1)
            info[f"{prefix}peak_rss_tree_mib"] = round(sampler.peak_tree[server.name], 1)
            info[f"{prefix}processes"] = len(sampler.members[server.name])


# -- artifact_fs's own client through both servers, against MLflow's client through MLflow's server ----
@pytest.mark.parametrize("scenario", ["small-upload", "small-download", "large-upload", "large-download"])
def test_artifact_fs_client(benchmark: Any, bench: Bench, scenario: str, tmp_path: Path) -> None:
    """``ArtifactStore(<server URL>)`` in this process through ``artifact-fs serve`` (timed) and through
    ``mlflow server``, against MLflow's ``HttpArtifactRepository`` through ``mlflow server`` (the
    proxied path a user has today); rounds interleaved."""
    dataset, operation = scenario.split("-")
    source = bench.datasets[dataset]
    ours, theirs = bench.ours, bench.mlflow
    theirs.timings.clear()
    ours_through_mlflow: list[float] = []
    local = tmp_path / "ours"

    def ours_round(server: Served) -> Callable[[], None]:
        if operation == "upload":
            store = ArtifactStore(f"{server.artifacts_url}/{server.fresh_prefix()}")
            if source.is_dir():
                return lambda: store.log_artifacts(source)
            return lambda: store.log_artifact(source)
        shutil.rmtree(local, ignore_errors=True)
        local.mkdir()
        return lambda: ArtifactStore(f"{server.artifacts_url}/logged/{dataset}").download_artifacts("", local)

    def setup() -> tuple[tuple[Callable[[], None]], dict[str, Any]]:
        if operation == "upload":
            url = f"{theirs.artifacts_url}/{theirs.fresh_prefix()}"
            theirs.timings.append(bench.client.call(op="upload", url=url, source=str(source)))
        else:
            destination = tmp_path / "mlflow"
            shutil.rmtree(destination, ignore_errors=True)
            destination.mkdir()
            url = f"{theirs.artifacts_url}/logged/{dataset}"
            theirs.timings.append(bench.client.call(op="download", url=url, destination=str(destination)))
        operation_through_mlflow = ours_round(theirs)
        start = time.perf_counter()
        operation_through_mlflow()
        ours_through_mlflow.append(time.perf_counter() - start)
        return (ours_round(ours),), {}

    benchmark.pedantic(
        lambda run: run(), setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS
    )
    if operation == "download":
        assert file_sizes(local) == file_sizes(source)
    median = benchmark.stats.stats.median
    mlflow_proxied = theirs.median()
    through_mlflow = statistics.median(ours_through_mlflow[WARMUP_ROUNDS:])
    benchmark.extra_info.update(
        {
            "scenario": f"client-{scenario}",
            "median_s": median,
            "mlflow_proxied_median_s": mlflow_proxied,
            "ratio_vs_mlflow_proxied": median / mlflow_proxied,
            "through_mlflow_server_median_s": through_mlflow,
            "ratio_through_mlflow_server_vs_mlflow_proxied": through_mlflow / mlflow_proxied,
        }
    )
