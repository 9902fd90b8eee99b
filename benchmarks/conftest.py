"""Shared data and peers for the benchmarks: the same files, timed in the same run.

Run everything with ``.venv/bin/python benchmarks/run.py`` (a ratio table at the end; ``--quick``
for reduced sizes), or one suite with ``.venv/bin/pytest benchmarks/test_s3.py --benchmark-only``.
Sizes are in ``sizes.py``. Each suite times its peers (``cp -r``, MLflow's own repository in its
virtual environment, boto3, s3fs) in the same run, so each artifact_fs benchmark can report its
ratio to them in ``extra_info``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from sizes import LARGE_SIZE, SMALL_FILES, SMALL_SIZE


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
        self.clear()
        self.current = Path(tempfile.mkdtemp(dir=self.base))
        return self.current

    def clear(self) -> None:
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
            self.current = None


def file_sizes(path: Path) -> dict[str, int]:
    """``{relative POSIX path: size}`` of every file under a directory, or ``{name: size}`` of one file:
    what a copy of ``path`` must hold, and what it holds."""
    if path.is_file():
        return {path.name: path.stat().st_size}
    return {p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*") if p.is_file()}


def cp_command(source: Path, destination: Path) -> list[str]:
    """``cp -r`` of a directory's contents, or ``cp`` of one file, into ``destination``."""
    if source.is_dir():
        return ["cp", "-r", f"{source}/.", str(destination)]
    return ["cp", str(source), str(destination)]
