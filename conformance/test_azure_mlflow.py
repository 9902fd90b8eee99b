"""Differential: MLflow's ``AzureBlobArtifactRepository`` and artifact_fs on the same Azurite.

What one side writes, the other lists and reads identically (paths, directory flags, sizes, bytes).
MLflow runs in its own virtual environment as a subprocess. (MLflow's ADLS repository talks to the
``dfs`` endpoint, which Azurite does not have, so only ``wasbs`` has a peer here.)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fsspec import AbstractFileSystem

import artifact_fs
from conformance.harness import BackendUnderTest
from conformance.servers.mlflow_env import run_mlflow_python

pytestmark = [pytest.mark.azure, pytest.mark.mlflow]

Tree = dict[str, Any]

MLFLOW_SCRIPT = r"""
import hashlib, json, os, sys, tempfile
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

mode, uri, local = sys.argv[1], sys.argv[2], sys.argv[3]
repo = get_artifact_repository(uri)
if mode == "log":
    repo.log_artifacts(local)
    repo.log_artifact(os.path.join(local, "top.txt"), "copies")
    print(json.dumps({}))
    sys.exit(0)

listing = []
def walk(path):
    for info in repo.list_artifacts(path):
        listing.append([info.path, info.is_dir, info.file_size])
        if info.is_dir:
            walk(info.path)
walk(None)
dst = tempfile.mkdtemp()
repo.download_artifacts("", dst)
digests = {}
for folder, _, files in os.walk(dst):
    for name in files:
        full = os.path.join(folder, name)
        digests[os.path.relpath(full, dst)] = hashlib.sha256(open(full, "rb").read()).hexdigest()
print(json.dumps({"listing": listing, "digests": digests}))
"""


def run_mlflow(mode: str, uri: str, environ: dict[str, str], local: str = "-") -> Tree:
    arguments = f"import sys\nsys.argv = {json.dumps(['mlflow-peer', mode, uri, local])}\n"
    completed = run_mlflow_python(arguments + MLFLOW_SCRIPT, env=environ)
    result: Tree = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def make_local_tree(root: Path) -> dict[str, bytes]:
    """A small artifact tree: nested folders, an empty file, a name with a space, a 1 MiB blob."""
    files = {
        "top.txt": b"top level",
        "empty.txt": b"",
        "dir/with space.txt": b"spaces survive",
        "dir/nested/deeper/model.bin": os.urandom(1024 * 1024 + 17),
        "dir/nested/config.json": b'{"alpha": 1}',
    }
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def our_view(fs: AbstractFileSystem, root: str) -> Tree:
    """The same shape MLflow prints: a recursive listing (MLflow's order) and per-file digests."""
    fs.invalidate_cache()
    listing: list[list[Any]] = []

    def walk(path: str) -> None:
        entries = sorted(fs.ls(path, detail=True), key=lambda entry: entry["name"])
        for entry in entries:
            name = entry["name"].rstrip("/")
            relative = name[len(root) + 1 :]
            if not relative:
                continue
            is_dir = entry["type"] == "directory"
            listing.append([relative, is_dir, None if is_dir else entry["size"]])
            if is_dir:
                walk(name)

    walk(root)
    digests = {
        relative: hashlib.sha256(fs.cat_file(f"{root}/{relative}")).hexdigest()
        for relative, is_dir, _ in listing
        if not is_dir
    }
    return {"listing": listing, "digests": digests}


def digests_of(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def check_both_ways(backend: BackendUnderTest, environ: dict[str, str], tmp_path: Path) -> None:
    local = tmp_path / "tree"
    files = make_local_tree(local)

    # artifact_fs writes, MLflow reads.
    ours_url = backend.fresh_url()
    fs, root = artifact_fs.url_to_fs(ours_url, **backend.storage_options)
    for relative in files:
        fs.put_file(str(local / relative), f"{root}/{relative}")
    fs.put_file(str(local / "top.txt"), f"{root}/copies/top.txt")
    written_by_us = our_view(fs, root)
    seen_by_mlflow = run_mlflow("read", ours_url, environ)
    assert seen_by_mlflow["listing"] == written_by_us["listing"]
    assert seen_by_mlflow["digests"] == written_by_us["digests"]
    assert written_by_us["digests"] == digests_of({**files, "copies/top.txt": files["top.txt"]})

    # MLflow writes, artifact_fs reads.
    theirs_url = backend.fresh_url()
    run_mlflow("log", theirs_url, environ, str(local))
    seen_by_us = our_view(fs, artifact_fs.url_to_fs(theirs_url, **backend.storage_options)[1])
    listed_by_mlflow = run_mlflow("read", theirs_url, environ)
    assert seen_by_us["listing"] == listed_by_mlflow["listing"]
    assert seen_by_us["digests"] == listed_by_mlflow["digests"] == written_by_us["digests"]


def test_mlflow_and_artifact_fs_agree_on_wasbs(backend_azure_wasbs: BackendUnderTest, tmp_path: Path) -> None:
    check_both_ways(backend_azure_wasbs, dict(backend_azure_wasbs.environ), tmp_path)
