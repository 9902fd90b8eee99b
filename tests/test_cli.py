"""The ``artifact-fs`` command on the local backend: round trips, output formats and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import artifact_fs
from artifact_fs.cli import main

FILES = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 8, "sub/deep/c.json": b"{}"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    for relative, data in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_log_ls_download_rm_round_trip_a_directory(runner: CliRunner, source: Path, tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    assert invoke(runner, "log", str(source), uri, "--artifact-path", "outputs")[0] == 0

    code, out, _ = invoke(runner, "ls", uri, "--recursive", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"path": "outputs", "is_dir": True, "file_size": None},
        {"path": "outputs/a.txt", "is_dir": False, "file_size": 6},
        {"path": "outputs/sub", "is_dir": True, "file_size": None},
        {"path": "outputs/sub/b.bin", "is_dir": False, "file_size": 2048},
        {"path": "outputs/sub/deep", "is_dir": True, "file_size": None},
        {"path": "outputs/sub/deep/c.json", "is_dir": False, "file_size": 2},
    ]

    dst = tmp_path / "dst"
    dst.mkdir()
    code, out, _ = invoke(runner, "download", uri, "outputs", "--dst", str(dst))
    assert (code, out.strip()) == (0, str(dst / "outputs"))
    downloaded = {
        p.relative_to(dst / "outputs").as_posix(): p.read_bytes() for p in dst.rglob("*") if p.is_file()
    }
    assert downloaded == FILES

    assert invoke(runner, "rm", uri, "outputs/sub")[0] == 0
    assert invoke(runner, "ls", uri, "outputs")[1].split() == ["6", "outputs/a.txt"]
    assert invoke(runner, "rm", uri, "--yes")[0] == 0
    assert not (tmp_path / "store").exists()


def test_log_of_a_file_uses_its_name(runner: CliRunner, source: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert invoke(runner, "log", str(source / "sub" / "b.bin"), store, "-p", "m")[0] == 0
    code, out, _ = invoke(runner, "ls", store, "m")
    assert (code, out.split()) == (0, ["2048", "m/b.bin"])


def test_ls_text_output_marks_directories(runner: CliRunner, source: Path) -> None:
    code, out, _ = invoke(runner, "ls", str(source))
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [["6", "a.txt"], ["-", "sub/"]]


def test_cat_streams_the_exact_bytes(runner: CliRunner, source: Path) -> None:
    result = runner.invoke(main, ["cat", str(source), "sub/b.bin"])
    assert result.exit_code == 0
    assert result.stdout_bytes == FILES["sub/b.bin"]


def test_download_without_dst_prints_a_path_with_the_artifact(runner: CliRunner, source: Path) -> None:
    code, out, _ = invoke(runner, "download", str(source), "a.txt")
    assert code == 0
    assert Path(out.strip()).read_bytes() == FILES["a.txt"]


def test_a_failed_operation_exits_1_with_one_line_naming_the_redacted_uri(
    runner: CliRunner, tmp_path: Path
) -> None:
    code, out, err = invoke(runner, "cat", f"{tmp_path}/store", "missing.txt")
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"artifact-fs: error: {tmp_path}/store: FileNotFoundError:")


def test_an_aggregated_download_failure_is_still_one_line(
    runner: CliRunner, source: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    code, _, err = invoke(runner, "download", str(source), "nope", "--dst", str(dst))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "##### File nope #####" in err


def test_credentials_in_the_uri_are_redacted_in_errors(runner: CliRunner) -> None:
    code, _, err = invoke(runner, "ls", "ftp://user:s3cret@127.0.0.1:1/x#fragment")
    assert code == 2
    assert "s3cret" not in err
    assert "user:***@" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ls", "foo://bucket/x"], "unknown scheme 'foo'"),
        (["ls", "/tmp", "../etc"], "'..' segments are not allowed"),
        (["log", "/no/such/path", "/tmp/x"], "does not exist"),
        (["ls", "/tmp", "-o", "novalue"], "key=value"),
        (["rm", "/tmp/some/root"], "add --yes"),
        (["cat", "/tmp"], "Missing argument"),
    ],
)
def test_bad_input_exits_2_with_the_reason(runner: CliRunner, args: list[str], expected: str) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr


def test_storage_options_are_typed_and_passed_to_the_backend(runner: CliRunner, source: Path) -> None:
    # auto_mkdir is the local filesystem's own option: a typed false reaches it (and ls still works).
    code, out, _ = invoke(runner, "ls", str(source), "-o", "auto_mkdir=false", "--json")
    assert code == 0
    assert [entry["path"] for entry in json.loads(out)] == ["a.txt", "sub"]


def test_help_lists_every_command_with_examples(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "--help")
    assert code == 0
    for command in ("ls", "log", "download", "rm", "cat", "serve"):
        assert f"  {command} " in out
    assert "Examples:" in out
    code, out, _ = invoke(runner, "download", "--help")
    assert code == 0
    assert "--dst" in out


def test_version(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "--version")
    assert (code, out.strip()) == (0, f"artifact-fs, version {artifact_fs.__version__}")


def test_the_installed_command_runs_as_a_real_process(source: Path, tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "artifact-fs"
    store = tmp_path / "store"
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    logged = subprocess.run(
        [str(executable), "log", str(source), str(store)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert logged.returncode == 0, logged.stderr
    listed = subprocess.run(
        [str(executable), "ls", str(store), "-r", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert {entry["path"] for entry in json.loads(listed.stdout) if not entry["is_dir"]} == set(FILES)
    missing = subprocess.run(
        [str(executable), "cat", str(store), "nope"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("artifact-fs: error:")


def test_a_missing_serve_module_keeps_help_working_and_explains(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        type(main), "LAZY", {"serve": ("artifact_fs.no_such_server_module", "serve", "Run the server.")}
    )
    code, out, _ = invoke(runner, "--help")
    assert code == 0
    assert "serve     Run the server. (unavailable" in out
    result = runner.invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "unavailable" in result.stderr


def test_serve_comes_from_the_server_package_when_it_loads(runner: CliRunner) -> None:
    import click

    command = main.get_command(click.Context(main), "serve")
    assert isinstance(command, click.Command)
    assert command.name == "serve"


def test_a_bad_environment_value_is_one_line_and_exit_2_before_any_work(tmp_path: Path) -> None:
    target = tmp_path / "never-created"
    completed = subprocess.run(
        [sys.executable, "-m", "artifact_fs.cli", "log", __file__, str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_HTTP_REQUEST_TIMEOUT": "soon"},
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "artifact-fs: error: Invalid value 'soon' for environment variable MLFLOW_HTTP_REQUEST_TIMEOUT: "
        "expected an integer"
    ]
    assert not target.exists()


def test_unknown_storage_options_are_refused_with_the_valid_ones(runner: CliRunner, tmp_path: Path) -> None:
    code, _, err = invoke(runner, "ls", str(tmp_path), "-o", "auto_mkdri=true")
    assert code == 2
    assert "unknown storage option auto_mkdri for the local backend" in err
    assert "valid options: auto_mkdir," in err


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    for index in range(3000):
        (tmp_path / f"file-{index:05d}.txt").write_bytes(b"x")
    process = subprocess.Popen(
        [sys.executable, "-m", "artifact_fs.cli", "ls", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141  # 128 + SIGPIPE, as a command killed by the signal
    assert b"file-00000.txt" in first
    assert stderr == b""
