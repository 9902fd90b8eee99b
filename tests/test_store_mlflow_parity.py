"""Differential test: MLflow's LocalArtifactRepository and ArtifactStore read each other's trees.

MLflow runs in its own virtual environment (conformance/servers/mlflow_env.py). One subprocess logs,
lists and downloads with MLflow; the same operations run here with ArtifactStore; listings
(path, is_dir, file_size), download return values and downloaded bytes must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from artifact_fs.store import ArtifactStore
from conformance.servers.mlflow_env import run_mlflow_python

pytestmark = pytest.mark.mlflow

FILES = {
    "MLmodel": b"flavors: {}\n",
    "empty.txt": b"",
    "data/part-0.parquet": bytes(range(256)) * 40,
    "data/nested/deeper/x.bin": b"\x00\x01" * 500,
    "data/with space.txt": b"spaces",
    "data/ünïcode-名前.txt": "naïve".encode(),
}
EMPTY_DIRS = ("data/empty", "logs/empty-too")
QUERIES = [
    "",
    "model",
    "model/",
    "model/data",
    "model/data/nested",
    "model/data/empty",
    "model/logs",
    "model/MLmodel",
    "model/data/part-0.parquet",
    "single/MLmodel",
    "missing",
    "model/missing/",
]

MLFLOW_SIDE = r"""
import json, os, tempfile
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

args = json.loads(os.environ["AF_PARITY_ARGS"])

def walk(repo, path=None):
    out = []
    for info in repo.list_artifacts(path):
        out.append([info.path, info.is_dir, info.file_size])
        if info.is_dir:
            out.extend(walk(repo, info.path))
    return out

if args["log_into"]:
    repo = LocalArtifactRepository(args["log_into"])
    repo.log_artifacts(args["source"], "model")
    repo.log_artifact(os.path.join(args["source"], "MLmodel"), "single")

result = {}
for root in args["read"]:
    repo = LocalArtifactRepository(root)
    entry = {"walk": walk(repo), "listings": {}, "downloads": {}}
    for query in args["queries"]:
        entry["listings"][query] = [[i.path, i.is_dir, i.file_size] for i in repo.list_artifacts(query)]
        dst = tempfile.mkdtemp(dir=args["scratch"])
        try:
            entry["downloads"][query] = [dst, repo.download_artifacts(query, dst)]
        except Exception as exc:
            entry["downloads"][query] = [dst, "error: " + type(exc).__name__]
    full = os.path.join(args["scratch"], "full-" + str(len(result)))
    os.mkdir(full)
    entry["full"] = repo.download_artifacts("", full)
    result[root] = entry
print(json.dumps(result))
"""


def make_source(root: Path) -> Path:
    for relative, data in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for relative in EMPTY_DIRS:
        (root / relative).mkdir(parents=True)
    return root


def walk(store: ArtifactStore, path: str | None = None) -> list[list[Any]]:
    out: list[list[Any]] = []
    for info in store.list_artifacts(path):
        out.append([info.path, info.is_dir, info.file_size])
        if info.is_dir:
            out.extend(walk(store, info.path))
    return out


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and directory (None) under ``root``."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def run_mlflow(tmp_path: Path, log_into: str | None, read: list[str]) -> dict[str, Any]:
    scratch = tmp_path / "mlflow-scratch"
    scratch.mkdir(exist_ok=True)
    args = {
        "log_into": log_into,
        "source": str(tmp_path / "source"),
        "read": read,
        "queries": QUERIES,
        "scratch": str(scratch),
    }
    completed = run_mlflow_python(MLFLOW_SIDE, env={"AF_PARITY_ARGS": json.dumps(args)})
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def ours(store: ArtifactStore, tmp_path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"walk": walk(store), "listings": {}, "downloads": {}}
    for index, query in enumerate(QUERIES):
        entry["listings"][query] = [[i.path, i.is_dir, i.file_size] for i in store.list_artifacts(query)]
        dst = tmp_path / f"ours-{index}"
        dst.mkdir()
        try:
            entry["downloads"][query] = [str(dst), store.download_artifacts(query, dst)]
        except OSError as exc:
            entry["downloads"][query] = [str(dst), "error: " + type(exc).__name__]
    return entry


def assert_same(mlflow_entry: dict[str, Any], our_entry: dict[str, Any]) -> None:
    assert our_entry["walk"] == mlflow_entry["walk"]
    assert our_entry["listings"] == mlflow_entry["listings"]
    for query in QUERIES:
        mlflow_dst, mlflow_result = mlflow_entry["downloads"][query]
        our_dst, our_result = our_entry["downloads"][query]
        if mlflow_result.startswith("error: "):
            assert our_result.startswith("error: "), query
            continue
        assert our_result.replace(our_dst, "<dst>") == mlflow_result.replace(mlflow_dst, "<dst>"), query
        assert snapshot(Path(our_dst)) == snapshot(Path(mlflow_dst)), query


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One MLflow subprocess: it logs tree A, and lists/downloads A and tree B (logged by the store)."""
    tmp_path = tmp_path_factory.mktemp("parity")
    source = make_source(tmp_path / "source")
    by_mlflow, by_store = str(tmp_path / "logged-by-mlflow"), str(tmp_path / "logged-by-store")
    store = ArtifactStore(by_store)
    store.log_artifacts(source, "model")
    store.log_artifact(source / "MLmodel", "single")
    result = run_mlflow(tmp_path, log_into=by_mlflow, read=[by_mlflow, by_store])
    return {"tmp": tmp_path, "source": source, "by_mlflow": by_mlflow, "by_store": by_store, "mlflow": result}


def test_store_reads_what_mlflow_logged_exactly_as_mlflow_does(
    parity: dict[str, Any], tmp_path: Path
) -> None:
    mlflow_result = parity["mlflow"][parity["by_mlflow"]]
    assert ["model/data/empty", True, None] in mlflow_result["walk"]  # the tree is the interesting one
    assert sum(not r.startswith("error") for _, r in mlflow_result["downloads"].values()) == len(QUERIES) - 2
    store = ArtifactStore(parity["by_mlflow"])
    assert_same(mlflow_result, ours(store, tmp_path))
    full = tmp_path / "ours-full"
    full.mkdir()
    store.download_artifacts("", full)
    assert snapshot(full) == snapshot(Path(mlflow_result["full"]))


def test_mlflow_reads_what_the_store_logged_exactly_as_the_store_does(
    parity: dict[str, Any], tmp_path: Path
) -> None:
    mlflow_result = parity["mlflow"][parity["by_store"]]
    assert_same(mlflow_result, ours(ArtifactStore(parity["by_store"]), tmp_path))
    assert snapshot(Path(mlflow_result["full"]) / "model") == snapshot(parity["source"])
