"""MLflow's mlflow-artifacts resolution table (reference §2.13), and the paths inside the filesystem."""

from __future__ import annotations

import pytest

from artifact_fs.backends import mlflow_artifacts
from artifact_fs.backends.mlflow_artifacts.resolve import artifact_path_of, deployment_root, service_url
from artifact_fs.policy import TransferPolicy
from artifact_fs.uris import parse

API = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.mark.parametrize(
    ("artifact_uri", "tracking_uri", "resolved"),
    [
        (
            "mlflow-artifacts:/0/abc/artifacts",
            "http://localhost:5000",
            f"http://localhost:5000{API}/0/abc/artifacts",
        ),
        (
            "mlflow-artifacts:/0/abc/artifacts",
            "https://host/prefix/",
            f"https://host/prefix{API}/0/abc/artifacts",
        ),
        (
            "mlflow-artifacts://other:8080/0/abc/artifacts",
            "https://host:5000",
            f"https://other:8080{API}/0/abc/artifacts",
        ),
        ("mlflow-artifacts:/", "http://localhost:5000", f"http://localhost:5000{API}"),
        (f"mlflow-artifacts:{API}", "http://localhost:5000", f"http://localhost:5000{API}"),
        ("mlflow-artifacts:///0/x", "http://h:1//a//b/", f"http://h:1/a/b{API}/0/x"),
        (f"http://h:1/p{API}/0/x", None, f"http://h:1/p{API}/0/x"),
        (
            "https://h/ajax-api/2.0/mlflow-artifacts/artifacts/0/x",
            None,
            "https://h/ajax-api/2.0/mlflow-artifacts/artifacts/0/x",
        ),
    ],
)
def test_resolution_matches_mlflow(artifact_uri: str, tracking_uri: str | None, resolved: str) -> None:
    service = service_url(artifact_uri, tracking_uri, environ={})
    path = artifact_path_of(artifact_uri)
    assert (f"{service}/mlflow-artifacts/artifacts/{path}").rstrip("/") == resolved


def test_the_tracking_uri_comes_from_the_environment() -> None:
    environ = {"MLFLOW_TRACKING_URI": "http://tracker:5000/"}
    assert service_url("mlflow-artifacts:/x", environ=environ) == "http://tracker:5000/api/2.0"


@pytest.mark.parametrize("tracking_uri", [None, "sqlite:///mlflow.db", "databricks", "file:///tmp/mlruns"])
def test_a_non_http_tracking_uri_is_refused_with_the_fix(tracking_uri: str | None) -> None:
    with pytest.raises(ValueError, match="must be a valid http or https URI.*MLFLOW_TRACKING_URI"):
        service_url("mlflow-artifacts:/0/x", tracking_uri, environ={})


def test_credentials_in_the_tracking_uri_are_redacted_in_errors() -> None:
    with pytest.raises(ValueError) as raised:
        service_url("mlflow-artifacts:/0/x", "ftp://user:secret@host/", environ={})
    assert "secret" not in str(raised.value)


def test_a_port_without_a_host_is_refused() -> None:
    with pytest.raises(ValueError, match="port number: 5000, but no host"):
        service_url("mlflow-artifacts://5000/x", "http://localhost", environ={})


def test_an_http_url_must_name_the_artifacts_api() -> None:
    with pytest.raises(ValueError, match="/api/2.0/mlflow-artifacts/artifacts"):
        service_url("http://host:5000/some/file.txt", environ={})


def test_deployment_root_strips_the_api_prefix() -> None:
    assert deployment_root("http://h/p/api/2.0") == "http://h/p"
    assert deployment_root("http://h/ajax-api/2.0") == "http://h"


def test_backend_options_and_path() -> None:
    uri = parse("mlflow-artifacts:/0/run/artifacts/model")
    options = mlflow_artifacts.options(uri, {"MLFLOW_TRACKING_URI": "http://t:1"})
    assert options["service_url"] == "http://t:1/api/2.0"
    assert mlflow_artifacts.fs_path(uri, options) == "0/run/artifacts/model"
    explicit = mlflow_artifacts.options(uri, {}, tracking_uri="https://x")
    assert explicit["service_url"] == "https://x/api/2.0"


def test_the_transfer_policy_reaches_the_http_client_and_explicit_options_win() -> None:
    uri = parse("mlflow-artifacts:/0/run/artifacts")
    policy = TransferPolicy(request_timeout=33.0, max_retries=1, max_workers=3)
    options = mlflow_artifacts.options(uri, {"MLFLOW_TRACKING_URI": "http://t:1"}, policy=policy)
    fs = mlflow_artifacts.MlflowArtifactsFileSystem(**options, skip_instance_cache=True)
    assert fs.policy == policy and fs.max_workers == 3
    assert (fs.http_settings.timeout, fs.http_settings.max_retries) == (33.0, 1)
    options["http_options"], options["max_workers"] = {"max_retries": 4}, 2
    explicit = mlflow_artifacts.MlflowArtifactsFileSystem(**options, skip_instance_cache=True)
    assert (explicit.http_settings.max_retries, explicit.http_settings.timeout) == (4, 33.0)
    assert explicit.max_workers == 2


def test_without_a_policy_the_filesystem_reads_mlflows_variables() -> None:
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "17", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    fs = mlflow_artifacts.MlflowArtifactsFileSystem(
        "http://h/api/2.0", environ=environ, skip_instance_cache=True
    )
    assert (fs.policy.request_timeout, fs.policy.max_retries) == (17.0, 2)


def test_strip_protocol_and_url_kwargs_serve_plain_fsspec() -> None:
    cls = mlflow_artifacts.MlflowArtifactsFileSystem
    assert cls._strip_protocol("mlflow-artifacts:/0/a/b/") == "0/a/b"
    assert cls._strip_protocol("mlflow-artifacts://h:1/0/a") == "0/a"
    assert cls._strip_protocol(f"http://h{API}/0/a") == "0/a"
    assert cls._get_kwargs_from_urls("mlflow-artifacts://h:1/0/a") == {"authority": "h:1"}
    assert cls._get_kwargs_from_urls(f"https://h/p{API}/0") == {"service_url": "https://h/p/api/2.0"}
    assert cls._get_kwargs_from_urls("mlflow-artifacts:/0/a") == {}


@pytest.mark.parametrize("bad", ["a/../../etc/passwd", "a/%2e%2e/b", "a/%252e%252e/b", "a\\b", "a/b#c"])
def test_unsafe_paths_are_refused_before_any_request(bad: str) -> None:
    # Port 9 (discard) is never contacted: the check happens before any request is made.
    fs = mlflow_artifacts.MlflowArtifactsFileSystem("http://127.0.0.1:9/api/2.0", skip_instance_cache=True)
    with pytest.raises(PermissionError, match="Invalid artifact path"):
        fs.info(bad)
