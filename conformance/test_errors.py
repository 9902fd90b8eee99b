"""The error contract: builtin ``OSError`` subclasses naming the path, the SDK's error kept as cause."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fsspec import AbstractFileSystem

from artifact_fs import errors
from conformance.harness import Target


def assert_contract(exc: BaseException, name: str) -> None:
    """Builtin (or artifact_fs) class, the path in the message, a foreign original kept as cause."""
    assert isinstance(exc, OSError)
    assert type(exc).__module__ in {"builtins", errors.__name__}, f"{type(exc)!r} is not a builtin error"
    assert name in str(exc), f"{exc!s} does not name {name!r}"
    context = exc.__context__
    if context is not None and type(context).__module__ not in {"builtins", errors.__name__}:
        assert exc.__cause__ is context, "the library's original error must be kept as __cause__"


MISSING_OPERATIONS: dict[str, Callable[[AbstractFileSystem, str, Path], Any]] = {
    "cat_file": lambda fs, path, local: fs.cat_file(path),
    "cat_file_range": lambda fs, path, local: fs.cat_file(path, start=0, end=10),
    "open": lambda fs, path, local: fs.open(path, "rb").read(),
    "info": lambda fs, path, local: fs.info(path),
    "ls": lambda fs, path, local: fs.ls(path),
    "size": lambda fs, path, local: fs.size(path),
    "get_file": lambda fs, path, local: fs.get_file(path, str(local / "download.bin")),
}


@pytest.mark.parametrize("operation", sorted(MISSING_OPERATIONS))
def test_a_missing_path_raises_file_not_found(target: Target, operation: str, tmp_path: Path) -> None:
    target.fs.pipe_file(target.path("present"), b"x")  # the parent exists; only the leaf is missing
    with pytest.raises(FileNotFoundError) as caught:
        MISSING_OPERATIONS[operation](target.fs, target.path("no-such-file.bin"), tmp_path)
    assert_contract(caught.value, "no-such-file.bin")


@pytest.mark.need_capability("delete")
def test_deleting_a_missing_path_raises_file_not_found(target: Target) -> None:
    target.fs.pipe_file(target.path("present"), b"x")
    with pytest.raises(FileNotFoundError) as caught:
        target.fs.rm_file(target.path("no-such-file.bin"))
    assert_contract(caught.value, "no-such-file.bin")


@pytest.mark.need_capability("exclusive_create")
def test_exclusive_create_of_an_existing_file_raises_file_exists(target: Target) -> None:
    path = target.path("exists.bin")
    target.fs.pipe_file(path, b"original")
    with pytest.raises(FileExistsError) as caught, target.fs.open(path, "xb") as f:
        f.write(b"replacement")
    assert_contract(caught.value, "exists.bin")
    with pytest.raises(FileExistsError):
        target.fs.pipe_file(path, b"replacement", mode="create")
    assert target.fs.cat_file(path) == b"original"


@pytest.mark.need_capability("exclusive_create")
def test_exclusive_create_of_a_new_file_succeeds(target: Target) -> None:
    path = target.path("fresh.bin")
    with target.fs.open(path, "xb") as f:
        f.write(b"fresh")
    assert target.fs.cat_file(path) == b"fresh"


def test_reading_a_directory_is_an_error(target: Target) -> None:
    """A real directory answers ``IsADirectoryError``; on object stores the key simply is not there."""
    target.fs.pipe_file(target.path("dir", "inside.bin"), b"x")
    expected: tuple[type[OSError], ...] = (
        (IsADirectoryError,)
        if target.backend.capabilities.empty_directories
        else (IsADirectoryError, FileNotFoundError)
    )
    with pytest.raises(expected) as caught:
        target.fs.cat_file(target.path("dir"))
    assert_contract(caught.value, "dir")
