"""``artifact-fs serve --tls-cert/--tls-key``: https through uvicorn, for artifact_fs's and MLflow's clients.

The certificate comes from a throwaway CA (``conformance/servers/tls.py``) that nothing trusts, so:

* artifact_fs's ``mlflow-artifacts`` client writes, lists and reads with
  ``MLFLOW_TRACKING_SERVER_CERT_PATH=<CA>``, and with ``MLFLOW_TRACKING_INSECURE_TLS=true``, even
  when ``REQUESTS_CA_BUNDLE`` is set (requests would otherwise let it replace both settings);
* with default verification it fails at once with a ``ConnectionError`` naming the fix, instead of
  retrying a certificate that will never verify through minutes of backoff;
* MLflow's own client (``mlflow artifacts`` CLI, in its venv) logs, lists and downloads over https
  through a real tracking server whose artifact root is this server;
* ``--tls-cert`` without ``--tls-key`` (and the reverse) is a usage error.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

import artifact_fs
from conformance.servers.artifact_server import ArtifactServer, artifact_fs_command, start_artifact_server
from conformance.servers.launcher import free_port
from conformance.servers.mlflow_env import run_mlflow_cli, run_mlflow_python
from conformance.servers.mlflow_server import MlflowServer, start_mlflow_server
from conformance.servers.tls import TestCertificates, make_certificates

pytestmark = [pytest.mark.server, pytest.mark.mlflow]

CLIENT_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "GIT_PYTHON_REFRESH": "quiet"}
TLS_VARIABLES = (
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("server-tls-certs"))


@pytest.fixture(scope="module")
def tls_server(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory, certificates: TestCertificates
) -> Iterator[ArtifactServer]:
    destination = tmp_path_factory.mktemp("artifact-server-tls-destination")
    server = start_artifact_server(
        server_log_dir,
        str(destination),
        tls=(str(certificates.cert_file), str(certificates.key_file), str(certificates.ca_file)),
        name="artifact-server-tls",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No TLS or retry settings from the outer environment; a system bundle in REQUESTS_CA_BUNDLE.

    The bundle is what CI images and distributions commonly export; it must neither replace the
    client's own CA path / insecure setting nor make the test CA trusted.
    """
    for name in (*TLS_VARIABLES, "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    return monkeypatch


def _url(server: ArtifactServer, name: str) -> str:
    return f"{server.artifacts_url}/tls/{name}"


def _round_trip(url: str) -> None:
    # The environment is read when a filesystem is made; fsspec would hand back the instance made
    # under another test's variables, so each test makes its own.
    fs, root = artifact_fs.url_to_fs(url, skip_instance_cache=True)
    assert root == "tls/" + url.rsplit("/", 1)[1]
    payload = os.urandom(3 * 1024 * 1024 + 17)
    fs.pipe_file(f"{root}/small.txt", b"over https")
    with fs.open(f"{root}/sub/blob.bin", "wb") as f:
        f.write(payload)
    assert fs.ls(root, detail=False) == [f"{root}/small.txt", f"{root}/sub"]
    assert fs.info(f"{root}/sub/blob.bin")["size"] == len(payload)
    assert fs.cat_file(f"{root}/small.txt") == b"over https"
    assert fs.cat_file(f"{root}/sub/blob.bin", start=1000, end=2000) == payload[1000:2000]
    with fs.open(f"{root}/sub/blob.bin", "rb") as f:
        assert f.read() == payload


def test_client_trusts_the_server_through_mlflow_tracking_server_cert_path(
    tls_server: ArtifactServer, certificates: TestCertificates, tls_environ: pytest.MonkeyPatch
) -> None:
    assert tls_server.url.startswith("https://")
    tls_environ.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(certificates.ca_file))
    _round_trip(_url(tls_server, "ca-path"))
    stored = Path(tls_server.destination) / "tls" / "ca-path" / "small.txt"
    assert stored.read_bytes() == b"over https"
    assert "GET /api/2.0/mlflow-artifacts/artifacts/tls/ca-path/small.txt" in tls_server.log_text()


def test_default_verification_fails_fast_with_a_clear_error(
    tls_server: ArtifactServer, tls_environ: pytest.MonkeyPatch
) -> None:
    fs, root = artifact_fs.url_to_fs(_url(tls_server, "untrusted"), skip_instance_cache=True)
    assert fs.http_settings.max_retries == 7  # MLflow's default policy is in force, not a test setting
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="TLS verification failed") as caught:
        fs.pipe_file(f"{root}/a.txt", b"never stored")
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"a certificate that cannot verify took {elapsed:.1f}s to fail (retried?)"
    assert isinstance(caught.value, OSError)
    message = str(caught.value)
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in message and "MLFLOW_TRACKING_INSECURE_TLS" in message
    with pytest.raises(ConnectionError, match="TLS verification failed"):
        fs.ls(root)
    assert not (Path(tls_server.destination) / "tls" / "untrusted").exists()


def test_insecure_tls_skips_verification(tls_server: ArtifactServer, tls_environ: pytest.MonkeyPatch) -> None:
    tls_environ.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    _round_trip(_url(tls_server, "insecure"))


def test_cert_path_and_insecure_together_are_refused(
    tls_server: ArtifactServer, certificates: TestCertificates, tls_environ: pytest.MonkeyPatch
) -> None:
    tls_environ.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    tls_environ.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(certificates.ca_file))
    with pytest.raises(ValueError, match="cannot both be set"):
        artifact_fs.url_to_fs(_url(tls_server, "both"), skip_instance_cache=True)


# -- MLflow's own client over https ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracking_server(
    server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory, tls_server: ArtifactServer
) -> Iterator[MlflowServer]:
    """A plain-http tracking server whose runs' artifacts live on the https artifact server."""
    server = start_mlflow_server(
        server_log_dir,
        tmp_path_factory.mktemp("tracking-for-tls"),
        artifacts_destination="",
        serve_artifacts=False,
        extra_args=["--default-artifact-root", f"{tls_server.artifacts_url}/mlflow-client"],
        name="mlflow-tracking-tls",
    )
    try:
        yield server
    finally:
        server.stop()


def test_mlflow_cli_logs_lists_and_downloads_over_https(
    tracking_server: MlflowServer,
    tls_server: ArtifactServer,
    certificates: TestCertificates,
    tmp_path: Path,
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in TLS_VARIABLES},
        **CLIENT_ENV,
        "MLFLOW_TRACKING_URI": tracking_server.url,
        "MLFLOW_TRACKING_SERVER_CERT_PATH": str(certificates.ca_file),
        "REQUESTS_CA_BUNDLE": certifi.where(),
    }
    run_id = (
        run_mlflow_python(
            "import mlflow; run = mlflow.start_run(); mlflow.end_run(); "
            "print(run.info.run_id); print(run.info.artifact_uri)",
            env=env,
        )
        .stdout.strip()
        .splitlines()
    )
    run_id, artifact_uri = run_id[-2], run_id[-1]
    assert artifact_uri.startswith(f"{tls_server.artifacts_url}/mlflow-client/")

    def cli(*args: str) -> str:
        return run_mlflow_cli("artifacts", *args, env=env)

    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    weights = tmp_path / "model" / "weights.bin"
    weights.parent.mkdir()
    weights.write_bytes(os.urandom(2 * 1024 * 1024))
    cli("log-artifact", "-l", str(table), "-r", run_id, "-a", "tables")
    cli("log-artifacts", "-l", str(weights.parent), "-r", run_id, "-a", "model")
    listing = json.loads(cli("list", "-r", run_id))
    assert [(entry["path"], entry["is_dir"]) for entry in listing] == [("model", True), ("tables", True)]
    assert json.loads(cli("list", "-r", run_id, "-a", "model")) == [
        {"path": "model/weights.bin", "is_dir": False, "file_size": weights.stat().st_size}
    ]
    destination = tmp_path / "download"
    destination.mkdir()
    cli("download", "-r", run_id, "-d", str(destination))
    assert (destination / "tables" / "table.csv").read_text() == "a,b\n1,2\n"
    assert (destination / "model" / "weights.bin").read_bytes() == weights.read_bytes()
    run_path = artifact_uri.removeprefix(f"{tls_server.artifacts_url}/")
    assert f"PUT /api/2.0/mlflow-artifacts/artifacts/{run_path}/tables/table.csv" in tls_server.log_text()


# -- usage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["--tls-cert", "--tls-key"])
def test_half_a_tls_configuration_is_a_usage_error(
    given: str, certificates: TestCertificates, tmp_path: Path
) -> None:
    path = certificates.cert_file if given == "--tls-cert" else certificates.key_file
    done = subprocess.run(
        [
            *artifact_fs_command(),
            "serve",
            "--artifacts-destination",
            str(tmp_path / "destination"),
            "--port",
            str(free_port()),
            given,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--tls-cert and --tls-key go together" in done.stderr
    assert "Uvicorn running" not in done.stdout + done.stderr
