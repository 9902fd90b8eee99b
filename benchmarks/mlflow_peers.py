"""MLflow's own artifact repository as the peer of a store benchmark, timed inside MLflow's venv.

One subprocess runs every scenario, so MLflow's import is paid once; the repository is configured
only by the URI and the environment, exactly as a user's process would be. Each round constructs
the repository inside the timing (as a user would); uploads go to fresh prefixes that are deleted
afterwards, and each download is checked for the expected number of files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import IO, Any

MLFLOW_REPOSITORY_TIMER = r"""
import importlib, json, os, shutil, statistics, tempfile, time

args = json.loads(os.environ["AF_BENCH_ARGS"])
module, _, name = args["repository"].partition(":")
Repository = getattr(importlib.import_module(module), name)
root = args["root"]
out = {}
for name, data in args["datasets"].items():
    timings = []
    for index in range(args["warmup_rounds"] + args["rounds"]):
        start = time.perf_counter()
        repo = Repository(f"{root}/upload/mlflow/{name}-{index}")
        if os.path.isdir(data["source"]):
            repo.log_artifacts(data["source"])
        else:
            repo.log_artifact(data["source"])
        elapsed = time.perf_counter() - start
        repo.delete_artifacts()
        if index >= args["warmup_rounds"]:
            timings.append(elapsed)
    out[f"{name}-upload"] = statistics.median(timings)

    timings = []
    for index in range(args["warmup_rounds"] + args["rounds"]):
        destination = tempfile.mkdtemp(dir=args["scratch"])
        start = time.perf_counter()
        repo = Repository(f"{root}/{data['logged']}")
        repo.download_artifacts("", destination)
        elapsed = time.perf_counter() - start
        count = sum(len(files) for _, _, files in os.walk(destination))
        if count != data["files"]:
            raise SystemExit(f"MLflow downloaded {count} files of {name}, expected {data['files']}")
        shutil.rmtree(destination)
        if index >= args["warmup_rounds"]:
            timings.append(elapsed)
    out[f"{name}-download"] = statistics.median(timings)
print(json.dumps(out))
"""


def mlflow_repository_timings(
    repository: str,
    root: str,
    environ: dict[str, str],
    datasets: dict[str, dict[str, Any]],
    *,
    scratch: Path,
    rounds: int,
    warmup_rounds: int = 1,
) -> dict[str, float]:
    """Median seconds of MLflow's ``repository`` (``module:Class``) per ``<dataset>-upload|download``.

    Uploads go to ``<root>/upload/mlflow/<dataset>-<n>``; ``datasets`` maps a name to
    ``{"source": local path, "logged": path under root to download, "files": count}``.
    """
    from conformance.servers.mlflow_env import run_mlflow_python

    scratch.mkdir(parents=True, exist_ok=True)
    args = {
        "repository": repository,
        "root": root,
        "rounds": rounds,
        "warmup_rounds": warmup_rounds,
        "scratch": str(scratch),
        "datasets": datasets,
    }
    completed = run_mlflow_python(
        MLFLOW_REPOSITORY_TIMER, env={**environ, "AF_BENCH_ARGS": json.dumps(args)}, timeout=1500
    )
    timings: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return timings


class MlflowRounds:
    """One round of an MLflow operation at a time, on request, in a process of MLflow's venv kept
    for the session: so MLflow's rounds can be interleaved with artifact_fs's (one of each in
    turn) like the other peers', where :func:`mlflow_repository_timings` runs them in a block.

    ``code`` reads one JSON job per line from stdin and answers each with the seconds it took (a
    JSON number on one line), timed inside MLflow's process; its stderr goes to ``log``.
    """

    def __init__(self, code: str, log: Path, env: dict[str, str] | None = None) -> None:
        from conformance.servers.mlflow_env import mlflow_python

        self.log = log
        self._stderr: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            [mlflow_python(), "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )

    def run(self, **job: Any) -> float:
        """Seconds MLflow took for ``job``; an AssertionError with its stderr if it failed."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self.close()
            raise AssertionError(f"MLflow's process ended on {job}:\n{self.log.read_text()[-6000:]}")
        return float(json.loads(answer))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()
