"""``artifact-fs serve`` refuses to start with one line on stderr: bad variables, a busy port.

Each case runs the real command in a subprocess and checks that nothing was done first (the
destination directory is never created) and that uvicorn never got to log anything.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from artifact_fs import settings
from artifact_fs.server import create_app

pytestmark = pytest.mark.server


def _serve(destination: Path, port: int, environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "artifact-fs"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "artifact_fs.cli"]
    arguments = ["--artifacts-destination", str(destination), "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.run(
        [*command, "serve", *arguments],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "soon", "expected an integer"),
        ("MLFLOW_ARTIFACTS_PRESIGNED_ONLY", "yes", "expected one of true, false, 1, 0"),
        ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "[1]", "expected a JSON object"),
        ("ARTIFACT_FS_SFTP_CHECK_HOST_KEY", "no", "expected one of true, false, 1, 0"),
    ],
)
def test_a_bad_variable_is_one_line_and_exit_2_before_any_work(
    variable: str, value: str, expected: str, tmp_path: Path, free_port: int
) -> None:
    destination = tmp_path / "destination"
    done = _serve(destination, free_port, {variable: value})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    assert repr(value) in lines[0]
    assert expected in lines[0]
    assert re.match(r"artifact-fs( serve)?: error: Invalid value ", lines[0])  # the group may check first
    assert not destination.exists()
    assert "serving" not in done.stdout


def test_a_credential_variable_is_named_but_its_value_not_shown(tmp_path: Path, free_port: int) -> None:
    done = _serve(tmp_path / "destination", free_port, {"ARTIFACT_FS_SERVER_USERS": "alice:s3cret,bob"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ARTIFACT_FS_SERVER_USERS" in done.stderr
    assert "s3cret" not in done.stderr


def test_a_busy_port_is_one_line_and_a_failure_exit(tmp_path: Path, listening: int) -> None:
    destination = tmp_path / "destination"
    done = _serve(destination, listening, {})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"127.0.0.1:{listening}" in lines[0]
    assert "address already in use" in lines[0]
    assert "Uvicorn" not in done.stdout + done.stderr
    assert not destination.exists()


def test_the_app_factory_validates_the_environment_it_is_given(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MLFLOW_S3_IGNORE_TLS") as info:
        create_app(str(tmp_path), environ={"MLFLOW_S3_IGNORE_TLS": "yes"})
    assert "\n" not in str(info.value)


def test_validation_reports_every_bad_variable_on_one_line() -> None:
    environ = {
        "MLFLOW_S3_IGNORE_TLS": "yes",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "1\n2",
        "MLFLOW_TRACKING_INSECURE_TLS": "true",
        "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem",
    }
    with pytest.raises(ValueError) as info:
        settings.validate_environment(environ)
    message = str(info.value)
    assert "\n" not in message
    for name in environ:
        assert name in message
    assert message.count("MLFLOW_S3_IGNORE_TLS") == 1  # each problem once


def test_command_line_entry_points_exit_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        settings.exit_if_environment_is_invalid("artifact-fs", {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "11"})
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("artifact-fs: error: Invalid value '11' for environment variable ")
    settings.exit_if_environment_is_invalid("artifact-fs", {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"})
