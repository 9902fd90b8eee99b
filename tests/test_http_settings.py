"""MLflow's HTTP client rules: credentials order, TLS exclusivity, retry policy, error translation."""

from __future__ import annotations

import base64
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import urllib3

from artifact_fs import errors
from artifact_fs import http as af_http
from artifact_fs.errors import MultipartUnsupportedError
from artifact_fs.policy import TransferPolicy


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_defaults_are_mlflows() -> None:
    options = af_http.HttpSettings.from_environ({"HOME": "/nonexistent"})
    assert (options.timeout, options.max_retries, options.backoff_factor, options.backoff_jitter) == (
        120.0,
        7,
        2.0,
        1.0,
    )
    assert options.respect_retry_after and options.verify is True and options.auth_header is None


def test_basic_auth_wins_over_the_token() -> None:
    environ = {
        "HOME": "/nonexistent",
        "MLFLOW_TRACKING_USERNAME": "ann",
        "MLFLOW_TRACKING_PASSWORD": "pw",
        "MLFLOW_TRACKING_TOKEN": "tok",
    }
    assert af_http.HttpSettings.from_environ(environ).auth_header == _basic("ann", "pw")


def test_a_token_is_used_when_user_and_password_are_not_both_set() -> None:
    environ = {"HOME": "/nonexistent", "MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_TOKEN": "tok"}
    assert af_http.HttpSettings.from_environ(environ).auth_header == "Bearer tok"


def test_the_credentials_file_fills_what_the_environment_lacks(tmp_path: Path) -> None:
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = filed\nmlflow_tracking_password = filepw\n"
    )
    from_file = af_http.HttpSettings.from_environ({"HOME": str(tmp_path)})
    assert from_file.auth_header == _basic("filed", "filepw")
    mixed = af_http.HttpSettings.from_environ({"HOME": str(tmp_path), "MLFLOW_TRACKING_USERNAME": "env"})
    assert mixed.auth_header == _basic("env", "filepw")


def test_insecure_tls_and_a_ca_bundle_are_mutually_exclusive() -> None:
    environ = {"MLFLOW_TRACKING_INSECURE_TLS": "true", "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}
    with pytest.raises(ValueError, match="cannot both be set"):
        af_http.HttpSettings.from_environ(environ)


def test_tls_settings_reach_the_session() -> None:
    environ = {
        "HOME": "/nonexistent",
        "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem",
        "MLFLOW_TRACKING_CLIENT_CERT_PATH": "/client.pem",
        "MLFLOW_S3_IGNORE_TLS": "true",
    }
    options = af_http.HttpSettings.from_environ(environ)
    session = af_http.tracking_session(options)
    assert session.verify == "/ca.pem" and session.cert == "/client.pem"
    presigned = af_http.presigned_session(options)
    assert presigned.verify is False and "Authorization" not in presigned.headers


def test_presigned_sessions_never_carry_credentials() -> None:
    options = af_http.HttpSettings.from_environ({"HOME": "/x", "MLFLOW_TRACKING_TOKEN": "tok"})
    assert af_http.tracking_session(options).headers["Authorization"] == "Bearer tok"
    assert "Authorization" not in af_http.presigned_session(options).headers


def test_retry_policy_follows_the_variables() -> None:
    environ = {
        "HOME": "/x",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "5",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
        "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "9",
    }
    options = af_http.HttpSettings.from_environ(environ)
    session = af_http.tracking_session(options)
    retry = session.get_adapter("http://x").max_retries  # type: ignore[attr-defined]
    assert (retry.total, retry.backoff_factor, retry.backoff_jitter) == (3, 5.0, 0.5)
    assert retry.respect_retry_after_header is False
    assert set(retry.status_forcelist) == {408, 429, 500, 502, 503, 504}
    assert session.default_timeout == (9.0, 9.0)  # type: ignore[attr-defined]  # (connect, read)


def test_the_settings_hold_the_transfer_policy_and_overrides_change_it() -> None:
    policy = TransferPolicy(request_timeout=30.0, connect_timeout=4.0, max_retries=1, backoff_factor=0.5)
    options = af_http.HttpSettings.from_environ({"HOME": "/x"}, policy=policy, max_retries=3)
    assert options.policy == replace(policy, max_retries=3)
    assert (options.timeout, options.max_retries, options.backoff_factor) == (30.0, 3, 0.5)
    session = af_http.tracking_session(options)
    assert session.default_timeout == (4.0, 30.0)  # type: ignore[attr-defined]
    retry = session.get_adapter("http://x").max_retries  # type: ignore[attr-defined]
    assert (retry.total, retry.backoff_factor) == (3, 0.5)


def test_presigned_sessions_use_mlflows_cloud_retries_and_the_transfer_timeout() -> None:
    policy = TransferPolicy(max_retries=0, transfer_timeout=600.0, transfer_timeout_set=True, max_workers=3)
    presigned = af_http.presigned_session(af_http.HttpSettings.from_environ({"HOME": "/x"}, policy=policy))
    retry = presigned.get_adapter("https://x").max_retries  # type: ignore[attr-defined]
    assert (retry.total, retry.backoff_factor, retry.backoff_jitter) == (5, 2.0, 1.0)
    assert presigned.default_timeout == (policy.connect_timeout, 600.0)  # type: ignore[attr-defined]
    assert presigned.get_adapter("https://x")._pool_maxsize == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "variable", ["MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]
)
def test_values_above_mlflows_caps_are_refused(variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        af_http.HttpSettings.from_environ({variable: "1000"})


def test_explicit_overrides_win_and_unknown_ones_are_named() -> None:
    assert af_http.HttpSettings.from_environ({"MLFLOW_HTTP_REQUEST_TIMEOUT": "9"}, timeout=1).timeout == 1
    with pytest.raises(ValueError, match="timout"):
        af_http.HttpSettings.from_environ({}, timout=1)


def _response(status: int, body: bytes, url: str = "http://u:secret@h/api/x") -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.url = status, body, url  # type: ignore[attr-defined]
    response.request = requests.Request("GET", url).prepare()
    return response


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "gone"}', FileNotFoundError, False),
        (403, b'{"error_code": "PERMISSION_DENIED", "message": "no"}', PermissionError, False),
        (401, b"unauthorised", PermissionError, False),
        (400, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "x"}', FileNotFoundError, False),
        (400, b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}', OSError, False),
        (503, b'{"detail": "Artifact serving is disabled"}', OSError, True),
        (503, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}', OSError, True),
        (500, b"oops", OSError, True),
        (501, b'{"error_code": "NOT_IMPLEMENTED", "message": "no mpu"}', MultipartUnsupportedError, False),
    ],
)
def test_failed_responses_become_builtin_errors_marked_retryable_or_not(
    status: int, body: bytes, error: type[Exception], retryable: bool
) -> None:
    with pytest.raises(error) as raised:
        af_http.raise_for_status(_response(status, body), "a/b")
    assert "secret" not in str(raised.value)
    assert f"HTTP {status}" in str(raised.value)
    assert errors.is_retryable(raised.value) is retryable


def test_a_read_timeout_after_urllib3s_retries_is_a_timeout_naming_the_variable() -> None:
    reason = urllib3.exceptions.ReadTimeoutError(None, "http://h/x", "read timed out")  # type: ignore[arg-type]
    wrapped = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "http://h/x", reason))  # type: ignore[arg-type]
    with (
        pytest.raises(TimeoutError, match="MLFLOW_HTTP_REQUEST_TIMEOUT") as raised,
        af_http.translating_requests("http://u:secret@h/x", "x"),
    ):
        raise wrapped
    assert "secret" not in str(raised.value)
    assert raised.value.__cause__ is wrapped and errors.is_retryable(raised.value)


def test_a_refused_connection_is_a_retryable_connection_error() -> None:
    reason = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    wrapped = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "http://h/x", reason))  # type: ignore[arg-type]
    with (
        pytest.raises(ConnectionError, match="cannot reach") as raised,
        af_http.translating_requests("http://h/x"),
    ):
        raise wrapped
    assert errors.is_retryable(raised.value)


def test_an_untrusted_certificate_names_the_variables_and_is_not_retried() -> None:
    reason = urllib3.exceptions.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    wrapped = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "https://h/x", reason))  # type: ignore[arg-type]
    with (
        pytest.raises(ConnectionError, match="MLFLOW_TRACKING_SERVER_CERT_PATH") as raised,
        af_http.translating_requests("https://h/x"),
    ):
        raise wrapped
    assert errors.is_retryable(raised.value) is False


def test_mlflow_workspace_is_sent_as_mlflow_s_workspace_header() -> None:
    from artifact_fs.http import WORKSPACE_HEADER, HttpSettings, tracking_session

    scoped = tracking_session(HttpSettings.from_environ({"MLFLOW_WORKSPACE": "team-a"}))
    assert scoped.headers[WORKSPACE_HEADER] == "team-a" == scoped.headers["X-MLFLOW-WORKSPACE"]
    assert WORKSPACE_HEADER not in tracking_session(HttpSettings.from_environ({})).headers
