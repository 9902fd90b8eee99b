"""Differential: MLflow's ``FTPArtifactRepository`` and artifact_fs on the same pyftpdlib server.

What one side writes, the other lists and reads identically (paths, directory flags, sizes, bytes),
including an empty directory, which both keep. MLflow's FTP repository lists in server order, so
both listings are compared sorted. MLflow speaks plain FTP only, so FTPS has no peer.
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

pytestmark = [pytest.mark.ftp, pytest.mark.mlflow]

Tree = dict[str, Any]

MLFLOW_SCRIPT = r"""
import hashlib, json, os, sys, tempfile
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

mode, uri, local = sys.argv[1], sys.argv[2], sys.argv[3]
repo = get_artifact_repository(uri)
print("repository", type(repo).__name__, file=sys.stderr)
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
digests, folders = {}, []
for folder, dirs, files in os.walk(dst):
    folders += [os.path.relpath(os.path.join(folder, d), dst) for d in dirs]
    for name in files:
        full = os.path.join(folder, name)
        digests[os.path.relpath(full, dst)] = hashlib.sha256(open(full, "rb").read()).hexdigest()
print(json.dumps({"listing": sorted(listing), "digests": digests, "folders": sorted(folders)}))
"""

FILES = {
    "top.txt": b"top level",
    "empty.txt": b"",
    "dir/with space.txt": b"spaces survive",
    "dir/nested/deeper/model.bin": os.urandom(1024 * 1024 + 17),
    "dir/nested/config.json": b'{"alpha": 1}',
}
EMPTY_DIRECTORY = "dir/empty"


def run_mlflow(mode: str, uri: str, environ: dict[str, str], local: str = "-") -> Tree:
    arguments = f"import sys\nsys.argv = {json.dumps(['mlflow-peer', mode, uri, local])}\n"
    completed = run_mlflow_python(arguments + MLFLOW_SCRIPT, env=environ)
    result: Tree = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def make_local_tree(root: Path) -> None:
    for relative, data in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / EMPTY_DIRECTORY).mkdir(parents=True)


def our_view(fs: AbstractFileSystem, root: str) -> Tree:
    """What MLflow's script prints, computed through artifact_fs."""
    fs.invalidate_cache()
    listing: list[list[Any]] = []

    def walk(path: str) -> None:
        for entry in fs.ls(path, detail=True):
            name = entry["name"].rstrip("/")
            is_dir = entry["type"] == "directory"
            listing.append([name[len(root) + 1 :], is_dir, None if is_dir else entry["size"]])
            if is_dir:
                walk(name)

    walk(root)
    digests = {
        relative: hashlib.sha256(fs.cat_file(f"{root}/{relative}")).hexdigest()
        for relative, is_dir, _ in listing
        if not is_dir
    }
    folders = sorted(relative for relative, is_dir, _ in listing if is_dir)
    return {"listing": sorted(listing), "digests": digests, "folders": folders}


def expected_digests() -> dict[str, str]:
    every = {**FILES, "copies/top.txt": FILES["top.txt"]}
    return {path: hashlib.sha256(data).hexdigest() for path, data in every.items()}


def check_both_ways(
    backend: BackendUnderTest, mlflow_url: str, environ: dict[str, str], tmp_path: Path
) -> None:
    """``mlflow_url`` is the backend's root as an MLflow user writes it (credentials in the URI)."""
    local = tmp_path / "tree"
    make_local_tree(local)
    fs, _ = artifact_fs.url_to_fs(backend.root_url, **backend.storage_options)

    # artifact_fs writes, MLflow reads.
    name = os.urandom(6).hex()
    _, ours = artifact_fs.url_to_fs(f"{backend.root_url}/{name}", **backend.storage_options)
    for relative in FILES:
        fs.put_file(str(local / relative), f"{ours}/{relative}")
    fs.put_file(str(local / "top.txt"), f"{ours}/copies/top.txt")
    fs.makedirs(f"{ours}/{EMPTY_DIRECTORY}", exist_ok=True)
    written_by_us = our_view(fs, ours)
    seen_by_mlflow = run_mlflow("read", f"{mlflow_url}/{name}", environ)
    assert seen_by_mlflow == written_by_us
    assert written_by_us["digests"] == expected_digests()
    assert EMPTY_DIRECTORY in written_by_us["folders"]

    # MLflow writes, artifact_fs reads.
    name = os.urandom(6).hex()
    run_mlflow("log", f"{mlflow_url}/{name}", environ, str(local))
    _, theirs = artifact_fs.url_to_fs(f"{backend.root_url}/{name}", **backend.storage_options)
    seen_by_us = our_view(fs, theirs)
    assert seen_by_us == run_mlflow("read", f"{mlflow_url}/{name}", environ)
    assert seen_by_us == written_by_us


def test_mlflow_and_artifact_fs_agree_on_ftp(backend_ftp: BackendUnderTest, tmp_path: Path) -> None:
    check_both_ways(backend_ftp, backend_ftp.details["url_with_password"], {}, tmp_path)
