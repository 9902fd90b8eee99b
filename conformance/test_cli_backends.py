"""The ``artifact-fs`` command on every backend, configured only by MLflow's variables."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from artifact_fs.cli import main
from conformance.harness import Target


def _options(target: Target) -> list[str]:
    """The backend's explicit storage options as ``-o key=<json>`` (credentials some fixtures keep there)."""
    arguments = []
    for key, value in target.backend.storage_options.items():
        arguments += ["-o", f"{key}={json.dumps(value)}"]
    return arguments


def _cat(target: Target, path: str) -> tuple[int, bytes, str]:
    runner = CliRunner(env=target.backend.environ)
    result = runner.invoke(main, ["cat", target.url, path, *_options(target)], catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


def test_store_file_info_tells_files_directories_and_missing_paths_apart(target: Target) -> None:
    target.fs.pipe_file(target.path("d", "f.bin"), b"12345")
    store = target.store()
    assert store.file_info("d/f.bin")["size"] == 5
    with pytest.raises(IsADirectoryError, match="refers to a directory"):
        store.file_info("d")
    with pytest.raises(FileNotFoundError, match="No such artifact"):
        store.file_info("d/missing.bin")


def test_cli_cat_of_a_file_writes_its_bytes(target: Target) -> None:
    target.fs.pipe_file(target.path("d", "f.bin"), b"12345")
    assert _cat(target, "d/f.bin")[:2] == (0, b"12345")


def test_cli_cat_of_a_directory_is_an_error(target: Target) -> None:
    target.fs.pipe_file(target.path("d", "f.bin"), b"12345")
    code, out, err = _cat(target, "d")
    assert code == 1 and out == b""
    assert "IsADirectoryError" in err and len(err.strip().splitlines()) == 1


def test_cli_cat_of_a_missing_file_is_an_error(target: Target) -> None:
    code, out, err = _cat(target, "missing.bin")
    assert code == 1 and out == b""
    assert "FileNotFoundError" in err and len(err.strip().splitlines()) == 1
